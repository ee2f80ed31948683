"""The vault's exceptions, one per way opening or changing a vault can fail (the checks and their order are
in :mod:`core.settings.vault`). Every message names files and secrets, never a secret value."""

from __future__ import annotations

from exchanges.errors import TradectlError


class VaultError(TradectlError):
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
