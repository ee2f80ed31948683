"""What unlocks a vault: a passphrase stretched with scrypt, or a raw 256-bit key.

The cryptography package is imported only when a key is derived, so loading settings without a vault
never pays for it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import unicodedata
from dataclasses import dataclass

from core.settings.vault_errors import WeakPassphrase

KEY_BYTES = 32
SALT_BYTES = 16
MIN_PASSPHRASE_LENGTH = 12

KDF_RAW = 0
KDF_SCRYPT = 1


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
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt  # loaded only when a vault is opened

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
class Keying:
    """The vault key and how it was obtained (what the header records)."""

    kdf: int
    scrypt: ScryptParams | None
    salt: bytes
    key: bytes

    @classmethod
    def new(cls, credential: Credential, scrypt: ScryptParams) -> Keying:
        if isinstance(credential, RawKey):
            return cls(KDF_RAW, None, bytes(SALT_BYTES), credential.key)
        if len(credential.value) < MIN_PASSPHRASE_LENGTH:
            raise WeakPassphrase(f"a vault passphrase needs at least {MIN_PASSPHRASE_LENGTH} characters")
        salt = os.urandom(SALT_BYTES)
        return cls(KDF_SCRYPT, scrypt, salt, scrypt.derive(credential.value, salt))
