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

Not done: no protection against rolling the whole file back to an older copy, and Python cannot
wipe decrypted values from memory. Linux/POSIX only (file modes, ``fcntl`` locking).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import os
import re
import stat
import struct
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"TCTLVLT\x00"
FORMAT_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SALT_BYTES = 16
VAULT_ID_BYTES = 16
CHECKSUM_BYTES = 32
MAX_NAME_LENGTH = 100
MAX_VALUE_BYTES = 64 * 1024
MAX_ENTRIES = 4096
MAX_FILE_BYTES = 16 * 1024 * 1024
MIN_PASSPHRASE_LENGTH = 12

KDF_RAW = 0
KDF_SCRYPT = 1

_PREAMBLE = struct.Struct(">8sHI4s")
_KDF = struct.Struct(">BBBB16s")
_KEY_CHECK_PLAINTEXT = b"tradectl-vault-1"
_AAD_CHECK = b"tradectl-vault:v1:check"
_AAD_ENTRY = b"tradectl-vault:v1:entry:"
_AAD_SEAL = b"tradectl-vault:v1:seal:"
_SEAL_BYTES = NONCE_BYTES + TAG_BYTES

# Dot-separated segments of lower-case words joined by single underscores. The grammar keeps the
# mapping to environment variable names one-to-one ("." <-> "__", see core.secrets).
_NAME = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*(?:\.[a-z0-9]+(?:_[a-z0-9]+)*)*")


class VaultError(Exception):
    """Base of every vault failure. Messages name files and secrets, never secret values."""


class VaultNotFound(VaultError):
    """There is no vault file at the path."""


class VaultExists(VaultError):
    """A vault already exists where a new one was to be created."""


class VaultPermissionError(VaultError):
    """The vault file is accessible by group or others, or cannot be read."""


class VaultCorrupt(VaultError):
    """Not a vault, an unsupported format version, or a malformed structure."""


class VaultTruncated(VaultCorrupt):
    """The file ends before the length its header declares."""


class VaultTampered(VaultError):
    """Bytes changed after the vault was written; ``entry`` names the secret when one is to blame."""

    def __init__(self, message: str, entry: str | None = None) -> None:
        super().__init__(message)
        self.entry = entry


class WrongKey(VaultError):
    """The passphrase or key does not unlock this vault."""


class VaultConflict(VaultError):
    """The file changed on disk after this vault object read it; nothing was written."""


class SecretNotFound(VaultError, KeyError):
    """The vault holds no secret of that name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidSecretName(VaultError, ValueError):
    """A name outside the documented grammar."""


class InvalidSecretValue(VaultError, ValueError):
    """An empty, oversized or otherwise unusable value (the message never includes it)."""


class WeakPassphrase(VaultError, ValueError):
    """A new passphrase shorter than MIN_PASSPHRASE_LENGTH."""


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid secret name, else raise :class:`InvalidSecretName`.

    Valid: ``kraken.api_secret``, ``telegram.bot_token``. Names ending in ``_file`` are refused
    because that suffix names the file source of another secret.
    """
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise InvalidSecretName(
            f"invalid secret name {name!r}: use lower-case words joined by '_' in dot-separated "
            f"segments, at most {MAX_NAME_LENGTH} characters (e.g. kraken.api_secret)"
        )
    if name.endswith("_file"):
        raise InvalidSecretName(f"invalid secret name {name!r}: the suffix '_file' is reserved")
    return name


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost. The default (n=2**17, r=8, p=1: 128 MiB, about half a second on a desktop) is
    meant for a key at rest; 2**14 is the interactive minimum and the lowest accepted. The same
    bounds apply to parameters read from a file, so a crafted header cannot ask for unbounded work."""

    log2_n: int = 17
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if not 14 <= self.log2_n <= 20:
            raise ValueError(f"scrypt log2(n) must be between 14 and 20, not {self.log2_n}")
        if not 1 <= self.r <= 16 or not 1 <= self.p <= 4:
            raise ValueError(f"scrypt r must be 1..16 and p 1..4, not r={self.r} p={self.p}")
        if self.memory_bytes > 1 << 30:
            raise ValueError(f"scrypt n=2^{self.log2_n} r={self.r} needs more than 1 GiB of memory")

    @property
    def n(self) -> int:
        return 1 << self.log2_n

    @property
    def memory_bytes(self) -> int:
        return 128 * self.r * self.n

    def derive(self, passphrase: str, salt: bytes) -> bytes:
        secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
        return Scrypt(salt=salt, length=KEY_BYTES, n=self.n, r=self.r, p=self.p).derive(secret)

    def __str__(self) -> str:
        return f"scrypt n=2^{self.log2_n} r={self.r} p={self.p}"


DEFAULT_SCRYPT = ScryptParams()


@dataclass(frozen=True, repr=False)
class Passphrase:
    """A passphrase, normalised to Unicode NFC before scrypt so it matches across keyboards."""

    value: str

    def __repr__(self) -> str:
        return "Passphrase('***')"


@dataclass(frozen=True, repr=False)
class RawKey:
    """A 256-bit vault key. Text form: base64 (standard or URL-safe, padding optional) or 64 hex digits."""

    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise ValueError(f"a vault key is {KEY_BYTES} bytes, not {len(self.key)}")

    def __repr__(self) -> str:
        return "RawKey('***')"

    @classmethod
    def generate(cls) -> RawKey:
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def parse(cls, text: str) -> RawKey:
        text = "".join(text.split())
        if re.fullmatch(r"[0-9a-fA-F]{64}", text):
            return cls(bytes.fromhex(text))
        try:
            raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != KEY_BYTES:
            raise ValueError("a vault key must be 32 bytes written as base64 or 64 hex digits")
        return cls(raw)

    def encode(self) -> str:
        return base64.b64encode(self.key).decode("ascii")


Credential = Passphrase | RawKey


@dataclass(frozen=True, repr=False)
class _Keying:
    """The vault key and how it was obtained (what the header records)."""

    kdf: int
    scrypt: ScryptParams | None
    salt: bytes
    key: bytes

    @classmethod
    def new(cls, credential: Credential, scrypt: ScryptParams) -> _Keying:
        if isinstance(credential, RawKey):
            return cls(KDF_RAW, None, bytes(SALT_BYTES), credential.key)
        if len(credential.value) < MIN_PASSPHRASE_LENGTH:
            raise WeakPassphrase(f"a vault passphrase needs at least {MIN_PASSPHRASE_LENGTH} characters")
        salt = os.urandom(SALT_BYTES)
        return cls(KDF_SCRYPT, scrypt, salt, scrypt.derive(credential.value, salt))


@dataclass(frozen=True)
class _Entry:
    name: str
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class _Image:
    """A file whose framing and checksum are verified, not yet decrypted."""

    kdf: int
    scrypt: ScryptParams | None
    salt: bytes
    vault_id: bytes
    key_check: bytes
    entries: tuple[_Entry, ...]
    sealed: bytes
    seal: bytes


class _Reader:
    def __init__(self, data: bytes, where: str) -> None:
        self._data = data
        self._pos = 0
        self._where = where

    def take(self, n: int) -> bytes:
        if self._pos + n > len(self._data):
            raise VaultCorrupt(f"{self._where}: malformed vault body (a field runs past its end)")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def unpack(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        return int(struct.unpack(fmt, self.take(size))[0])

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _parse(data: bytes, where: str) -> _Image:
    size = len(data)
    if size < len(MAGIC):
        if MAGIC.startswith(data):
            raise VaultTruncated(f"{where} is truncated ({size} bytes)" if size else f"{where} is empty")
        raise VaultCorrupt(f"{where} is not a tradectl vault file")
    if data[: len(MAGIC)] != MAGIC:
        raise VaultCorrupt(f"{where} is not a tradectl vault file")
    if size < _PREAMBLE.size:
        raise VaultTruncated(f"{where} is truncated ({size} bytes, the header alone is {_PREAMBLE.size})")
    _, version, body_len, check = _PREAMBLE.unpack_from(data)
    if _sha256(data[: _PREAMBLE.size - 4])[:4] != check:
        raise VaultTampered(f"{where} was modified or damaged: the header checksum does not match")
    if version != FORMAT_VERSION:
        raise VaultCorrupt(
            f"{where} uses vault format version {version}; this tradectl reads version {FORMAT_VERSION}"
        )
    expected = _PREAMBLE.size + body_len + CHECKSUM_BYTES
    if size < expected:
        raise VaultTruncated(f"{where} is truncated: {size} of {expected} bytes")
    if size > expected:
        raise VaultTampered(f"{where} was modified: {size - expected} unexpected bytes after the end")
    if _sha256(data[:-CHECKSUM_BYTES]) != data[-CHECKSUM_BYTES:]:
        raise VaultTampered(f"{where} was modified or damaged: the file checksum does not match")

    body = _Reader(data[_PREAMBLE.size : -CHECKSUM_BYTES], where)
    kdf, log2_n, r, p, salt = _KDF.unpack(body.take(_KDF.size))
    scrypt: ScryptParams | None = None
    if kdf == KDF_SCRYPT:
        try:
            scrypt = ScryptParams(log2_n, r, p)
        except ValueError as exc:
            raise VaultCorrupt(f"{where}: refusing the key derivation parameters: {exc}") from None
    elif kdf != KDF_RAW:
        raise VaultCorrupt(f"{where}: unknown key derivation {kdf}")
    vault_id = body.take(VAULT_ID_BYTES)
    key_check = body.take(NONCE_BYTES + len(_KEY_CHECK_PLAINTEXT) + TAG_BYTES)
    count = body.unpack(">H")
    entries: list[_Entry] = []
    for _ in range(count):
        raw_name = body.take(body.unpack(">B"))
        try:
            name = validate_name(raw_name.decode("ascii"))
        except (UnicodeDecodeError, InvalidSecretName):
            raise VaultCorrupt(f"{where}: an entry has an invalid name") from None
        nonce = body.take(NONCE_BYTES)
        length = body.unpack(">I")
        if not TAG_BYTES < length <= MAX_VALUE_BYTES + TAG_BYTES:
            raise VaultCorrupt(f"{where}: entry {name!r} has an impossible length")
        entries.append(_Entry(name, nonce, body.take(length)))
    if [e.name for e in entries] != sorted({e.name for e in entries}):
        raise VaultCorrupt(f"{where}: entries are duplicated or out of order")
    if body.remaining != _SEAL_BYTES:
        raise VaultCorrupt(f"{where}: malformed vault body ({body.remaining} bytes where the seal should be)")
    seal = body.take(_SEAL_BYTES)
    sealed = data[: -CHECKSUM_BYTES - _SEAL_BYTES]
    return _Image(kdf, scrypt, salt, vault_id, key_check, tuple(entries), sealed, seal)


def _encode(keying: _Keying, vault_id: bytes, values: Mapping[str, bytes]) -> bytes:
    aes = AESGCM(keying.key)
    cost = keying.scrypt
    body = bytearray(_KDF.pack(keying.kdf, cost.log2_n if cost else 0, cost.r if cost else 0,
                               cost.p if cost else 0, keying.salt))
    body += vault_id
    nonce = os.urandom(NONCE_BYTES)
    body += nonce + aes.encrypt(nonce, _KEY_CHECK_PLAINTEXT, _AAD_CHECK)
    body += struct.pack(">H", len(values))
    for name in sorted(values):
        encoded = name.encode("ascii")
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = aes.encrypt(nonce, values[name], _AAD_ENTRY + encoded)
        body += struct.pack(">B", len(encoded)) + encoded + nonce + struct.pack(">I", len(ciphertext)) + ciphertext
    head = struct.pack(">8sHI", MAGIC, FORMAT_VERSION, len(body) + _SEAL_BYTES)
    sealed = head + _sha256(head)[:4] + bytes(body)
    nonce = os.urandom(NONCE_BYTES)
    out = sealed + nonce + aes.encrypt(nonce, b"", _AAD_SEAL + sealed)
    return out + _sha256(out)


def _derive(credential: Credential, image: _Image, where: str) -> _Keying:
    if isinstance(credential, RawKey):
        if image.kdf != KDF_RAW:
            raise WrongKey(f"{where} is locked with a passphrase, but a raw key was supplied")
        return _Keying(KDF_RAW, None, image.salt, credential.key)
    if image.scrypt is None:
        raise WrongKey(f"{where} is locked with a raw key, but a passphrase was supplied")
    return _Keying(KDF_SCRYPT, image.scrypt, image.salt, image.scrypt.derive(credential.value, image.salt))


def _decrypt(image: _Image, key: bytes, where: str, credential: Credential) -> dict[str, bytes]:
    aes = AESGCM(key)
    try:
        check = image.key_check
        ok = aes.decrypt(check[:NONCE_BYTES], check[NONCE_BYTES:], _AAD_CHECK) == _KEY_CHECK_PLAINTEXT
    except InvalidTag:
        ok = False
    if not ok:
        what = "passphrase" if isinstance(credential, Passphrase) else "key"
        raise WrongKey(f"wrong {what} for the vault {where}")
    values: dict[str, bytes] = {}
    for entry in image.entries:
        try:
            values[entry.name] = aes.decrypt(entry.nonce, entry.ciphertext, _AAD_ENTRY + entry.name.encode("ascii"))
        except InvalidTag:
            raise VaultTampered(
                f"{where} was tampered with: the secret {entry.name!r} does not authenticate "
                "(its ciphertext was altered or moved from another name)",
                entry=entry.name,
            ) from None
    try:
        aes.decrypt(image.seal[:NONCE_BYTES], image.seal[NONCE_BYTES:], _AAD_SEAL + image.sealed)
    except InvalidTag:
        raise VaultTampered(
            f"{where} was tampered with: its list of secrets or header was changed after it was written"
        ) from None
    return values


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


def _atomic_write(path: Path, data: bytes) -> None:
    """Temp file (mode 0600) in the same directory, write, fsync, rename over ``path``, fsync the directory.

    When root rewrites a vault owned by another user (``sudo tradectl vault set``), the new file keeps
    the old owner so the service can still read it.
    """
    try:
        previous: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        previous = None
    tmp = path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            if previous is not None and os.geteuid() == 0:
                os.fchown(fd, previous.st_uid, previous.st_gid)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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

    def __init__(self, path: Path, keying: _Keying, vault_id: bytes, values: dict[str, bytes],
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
        vault = cls(path, _Keying.new(credential, scrypt), os.urandom(VAULT_ID_BYTES), {}, digest=None)
        if not path.parent.exists():
            path.parent.mkdir(parents=True, mode=0o700)
        vault._save(initial)
        return vault

    @classmethod
    def open(cls, path: Path | str, credential: Credential) -> Vault:
        """Read, verify and decrypt the whole vault, or raise without returning any of it."""
        path = Path(path)
        data = _read(path)
        image = _parse(data, str(path))
        keying = _derive(credential, image, str(path))
        values = _decrypt(image, keying.key, str(path), credential)
        return cls(path, keying, image.vault_id, values, digest=_sha256(data))

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
        keying = _Keying.new(new_credential, scrypt or self._keying.scrypt or DEFAULT_SCRYPT)
        self._save(dict(self._values), keying)

    def _save(self, values: dict[str, bytes], keying: _Keying | None = None) -> None:
        keying = keying or self._keying
        data = _encode(keying, self._vault_id, values)
        target = Path(os.path.realpath(self._path))
        with _directory_lock(target.parent):
            try:
                current: bytes | None = _sha256(target.read_bytes())
            except FileNotFoundError:
                current = None
            if self._digest is None and current is not None:
                raise VaultExists(f"a vault already exists at {self._path}; "
                                  "use `tradectl vault rotate` to change its key")
            if current != self._digest:
                raise VaultConflict(f"the vault {self._path} changed on disk since it was opened; "
                                    "nothing was written, open it again")
            _atomic_write(target, data)
        self._values, self._keying, self._digest = values, keying, _sha256(data)
