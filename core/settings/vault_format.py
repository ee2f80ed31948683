"""The vault file format, version 1: encoding a vault and verifying and decrypting one, in memory.

The layout and the order of the checks are documented in :mod:`core.settings.vault` (and docs/security.md);
reading and writing the file itself (modes, locking, atomic replace) is done there too.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from core.settings.vault_errors import InvalidSecretName, VaultCorrupt, VaultTampered, VaultTruncated, WrongKey
from core.settings.vault_keys import KDF_RAW, KDF_SCRYPT, Credential, Keying, Passphrase, RawKey, ScryptParams

MAGIC = b"TCTLVLT\x00"
FORMAT_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
VAULT_ID_BYTES = 16
CHECKSUM_BYTES = 32
MAX_NAME_LENGTH = 100
MAX_VALUE_BYTES = 64 * 1024

_PREAMBLE = struct.Struct(">8sHI4s")
_KDF = struct.Struct(">BBBB16s")
_KEY_CHECK_PLAINTEXT = b"tradectl-vault-1"
_AAD_CHECK = b"tradectl-vault:v1:check"
_AAD_ENTRY = b"tradectl-vault:v1:entry:"
_AAD_SEAL = b"tradectl-vault:v1:seal:"
_SEAL_BYTES = NONCE_BYTES + TAG_BYTES

# Dot-separated segments of lower-case words joined by single underscores. The grammar keeps the
# mapping to environment variable names one-to-one ("." <-> "__", see core.settings.secrets).
_NAME = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*(?:\.[a-z0-9]+(?:_[a-z0-9]+)*)*")


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
class _Entry:
    name: str
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class Image:
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


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def parse_file(data: bytes, where: str) -> Image:
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
    if sha256(data[: _PREAMBLE.size - 4])[:4] != check:
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
    if sha256(data[:-CHECKSUM_BYTES]) != data[-CHECKSUM_BYTES:]:
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
    return Image(kdf, scrypt, salt, vault_id, key_check, tuple(entries), sealed, seal)


def encode_file(keying: Keying, vault_id: bytes, values: Mapping[str, bytes]) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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
    sealed = head + sha256(head)[:4] + bytes(body)
    nonce = os.urandom(NONCE_BYTES)
    out = sealed + nonce + aes.encrypt(nonce, b"", _AAD_SEAL + sealed)
    return out + sha256(out)


def derive_keying(credential: Credential, image: Image, where: str) -> Keying:
    if isinstance(credential, RawKey):
        if image.kdf != KDF_RAW:
            raise WrongKey(f"{where} is locked with a passphrase, but a raw key was supplied")
        return Keying(KDF_RAW, None, image.salt, credential.key)
    if image.scrypt is None:
        raise WrongKey(f"{where} is locked with a raw key, but a passphrase was supplied")
    return Keying(KDF_SCRYPT, image.scrypt, image.salt, image.scrypt.derive(credential.value, image.salt))


def decrypt_values(image: Image, key: bytes, where: str, credential: Credential) -> dict[str, bytes]:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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
