"""An encrypted vault file for exchange keys and bot tokens.

Each secret is encrypted on its own with AES-256-GCM under the vault key, with a fresh random 96-bit
nonce for every encryption. The associated data of an entry is ``b"tradectl-vault:v1:entry:" + name``,
so a ciphertext moved to another name (or to another format version) fails authentication. The
vault key is either derived from a passphrase with scrypt (parameters and salt stored in the file)
or supplied directly as 32 random bytes.

File format, version 1 (integers big-endian; docs/security.md has the same table)::

    preamble  magic "TCTLVLT\\0" (8) | format version u16 | body length u32 |
              first 4 bytes of SHA-256 over the preceding 14 bytes
    body      kdf u8 (0 raw key, 1 scrypt) | log2(n) u8 | r u8 | p u8 | salt (16) | vault id (16) |
              key check: nonce (12) + AES-GCM("tradectl-vault-1", aad "tradectl-vault:v1:check") (32) |
              entry count u16 | entries sorted by name, each:
                  name length u8 | name (ASCII) | nonce (12) | ciphertext length u32 | ciphertext+tag |
              seal: nonce (12) + GCM tag (16) over an empty plaintext with associated data
                  "tradectl-vault:v1:seal:" + every byte before the seal
    trailer   SHA-256 over everything before it (32)

Checks on opening, in order, each with its own exception: the file mode
(:class:`VaultPermissionError`), the magic (:class:`VaultCorrupt`), the
length (:class:`VaultTruncated`), the preamble check and the trailing SHA-256 (:class:`VaultTampered`:
any flipped byte stops here), the structure and scrypt bounds (:class:`VaultCorrupt`), the key check
(:class:`WrongKey`), every entry's GCM tag (:class:`VaultTampered` naming the entry) and the seal
(:class:`VaultTampered`: entries added, removed or copied from another vault). A vault is returned
only when all of them pass, so no caller ever sees partial data.

The code is split by concern: :mod:`core.settings.vault_format` encodes and verifies the bytes,
:mod:`core.settings.vault_keys` holds what unlocks a vault, :mod:`core.settings.vault_errors` the
exceptions; this module reads and writes the file and re-exports all of their public names.

Not done: no protection against rolling the whole file back to an older copy, and Python cannot
wipe decrypted values from memory. Linux/POSIX only (file modes, ``fcntl`` locking).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

from core.settings.vault_errors import (
    InvalidSecretName,
    InvalidSecretValue,
    SecretNotFound,
    VaultConflict,
    VaultCorrupt,
    VaultError,
    VaultExists,
    VaultNotFound,
    VaultPermissionError,
    VaultTampered,
    VaultTruncated,
    WeakPassphrase,
    WrongKey,
)
from core.settings.vault_format import (
    CHECKSUM_BYTES,
    FORMAT_VERSION,
    MAGIC,
    MAX_NAME_LENGTH,
    MAX_VALUE_BYTES,
    NONCE_BYTES,
    TAG_BYTES,
    VAULT_ID_BYTES,
    decrypt_values,
    derive_keying,
    encode_file,
    parse_file,
    sha256,
    validate_name,
)
from core.settings.vault_keys import (
    DEFAULT_SCRYPT,
    KDF_RAW,
    KDF_SCRYPT,
    KEY_BYTES,
    MIN_PASSPHRASE_LENGTH,
    SALT_BYTES,
    Credential,
    Keying,
    Passphrase,
    RawKey,
    ScryptParams,
)
from persistence.files import atomic_write

__all__ = [
    "CHECKSUM_BYTES", "DEFAULT_SCRYPT", "FORMAT_VERSION", "KDF_RAW", "KDF_SCRYPT", "KEY_BYTES", "MAGIC",
    "MAX_ENTRIES", "MAX_FILE_BYTES", "MAX_NAME_LENGTH", "MAX_VALUE_BYTES", "MIN_PASSPHRASE_LENGTH", "NONCE_BYTES",
    "SALT_BYTES", "TAG_BYTES", "VAULT_ID_BYTES", "Credential", "InvalidSecretName", "InvalidSecretValue",
    "Passphrase", "RawKey", "ScryptParams", "SecretNotFound", "Vault", "VaultConflict", "VaultCorrupt", "VaultError",
    "VaultExists", "VaultNotFound", "VaultPermissionError", "VaultTampered", "VaultTruncated", "WeakPassphrase",
    "WrongKey", "validate_name",
]

MAX_ENTRIES = 4096
MAX_FILE_BYTES = 16 * 1024 * 1024


def _read(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise VaultNotFound(f"no vault at {path}: create one with `tradectl vault init`") from None
    except PermissionError:
        raise VaultPermissionError(f"cannot read the vault {path}: permission denied") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise VaultCorrupt(f"{path} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise VaultPermissionError(
                f"refusing to use the vault {path}: it is accessible by group or others "
                f"(mode {mode:04o}); fix it with: chmod 600 {path}"
            )
        if st.st_size > MAX_FILE_BYTES:
            raise VaultCorrupt(f"{path} is too large to be a vault ({st.st_size} bytes)")
        return handle.read(MAX_FILE_BYTES + 1)


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """Serialise writers of vaults in one directory (flock on the directory itself, no lock file)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _check_value(name: str, value: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidSecretValue(f"the value for {name!r} must be text")
    encoded = value.encode("utf-8")
    if not encoded:
        raise InvalidSecretValue(f"refusing an empty value for {name!r}")
    if len(encoded) > MAX_VALUE_BYTES:
        raise InvalidSecretValue(f"the value for {name!r} is longer than {MAX_VALUE_BYTES} bytes")
    return encoded


class Vault:
    """An unlocked vault: every entry decrypted and verified. Use :meth:`create` or :meth:`open`.

    Each change (:meth:`set`, :meth:`delete`, :meth:`rotate`) re-encrypts every entry with fresh
    nonces and atomically replaces the file; it raises :class:`VaultConflict` and writes nothing if
    another process changed the file since this object read it.
    """

    def __init__(self, path: Path, keying: Keying, vault_id: bytes, values: dict[str, bytes],
                 digest: bytes | None) -> None:
        self._path = path
        self._keying = keying
        self._vault_id = vault_id
        self._values = values
        self._digest = digest

    @classmethod
    def create(cls, path: Path | str, credential: Credential, *, scrypt: ScryptParams = DEFAULT_SCRYPT,
               values: Mapping[str, str] | None = None) -> Vault:
        """Write a new vault (mode 0600). Raises :class:`VaultExists` rather than overwrite one."""
        path = Path(path)
        initial = {validate_name(name): _check_value(name, value) for name, value in (values or {}).items()}
        vault = cls(path, Keying.new(credential, scrypt), os.urandom(VAULT_ID_BYTES), {}, digest=None)
        if not path.parent.exists():
            path.parent.mkdir(parents=True, mode=0o700)
        vault._save(initial)
        return vault

    @classmethod
    def open(cls, path: Path | str, credential: Credential) -> Vault:
        """Read, verify and decrypt the whole vault, or raise without returning any of it."""
        path = Path(path)
        data = _read(path)
        image = parse_file(data, str(path))
        keying = derive_keying(credential, image, str(path))
        values = decrypt_values(image, keying.key, str(path), credential)
        return cls(path, keying, image.vault_id, values, digest=sha256(data))

    @property
    def path(self) -> Path:
        return self._path

    @property
    def kdf_description(self) -> str:
        return str(self._keying.scrypt) if self._keying.scrypt else "raw 256-bit key"

    def names(self) -> list[str]:
        return sorted(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __repr__(self) -> str:
        return f"Vault({str(self._path)!r}, {len(self._values)} secrets)"

    def get(self, name: str) -> str:
        try:
            return self._values[name].decode("utf-8")
        except KeyError:
            raise SecretNotFound(f"the vault {self._path} holds no secret {name!r}") from None
        except UnicodeDecodeError:
            raise VaultCorrupt(f"the secret {name!r} in {self._path} is not UTF-8 text") from None

    def set(self, name: str, value: str) -> None:
        self.set_many({name: value})

    def set_many(self, values: Mapping[str, str]) -> None:
        """Add or replace several secrets in one atomic write."""
        updated = dict(self._values)
        for name, value in values.items():
            updated[validate_name(name)] = _check_value(name, value)
        if len(updated) > MAX_ENTRIES:
            raise VaultError(f"a vault holds at most {MAX_ENTRIES} secrets")
        self._save(updated)

    def delete(self, name: str) -> None:
        if name not in self._values:
            raise SecretNotFound(f"the vault {self._path} holds no secret {name!r}")
        updated = dict(self._values)
        del updated[name]
        self._save(updated)

    def rotate(self, new_credential: Credential, *, scrypt: ScryptParams | None = None) -> None:
        """Re-encrypt everything under a new key (new salt for a passphrase) in one atomic replace.

        Copies of the old file (backups) stay readable with the old passphrase or key.
        """
        keying = Keying.new(new_credential, scrypt or self._keying.scrypt or DEFAULT_SCRYPT)
        self._save(dict(self._values), keying)

    def _save(self, values: dict[str, bytes], keying: Keying | None = None) -> None:
        keying = keying or self._keying
        data = encode_file(keying, self._vault_id, values)
        target = Path(os.path.realpath(self._path))
        with _directory_lock(target.parent):
            try:
                current: bytes | None = sha256(target.read_bytes())
            except FileNotFoundError:
                current = None
            if self._digest is None and current is not None:
                raise VaultExists(f"a vault already exists at {self._path}; "
                                  "use `tradectl vault rotate` to change its key")
            if current != self._digest:
                raise VaultConflict(f"the vault {self._path} changed on disk since it was opened; "
                                    "nothing was written, open it again")
            atomic_write(target, data)
        self._values, self._keying, self._digest = values, keying, sha256(data)
