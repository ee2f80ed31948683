"""Settings: the typed, frozen models per area, loading them from the file, the environment and secret
sources (files, the encrypted vault), and the tuned-parameter overlay. Imports nothing else in ``core``
except :mod:`core.runtime`.
"""

from core.settings.settings_models import (
    CHAT_PLATFORMS,
    ChatSettings,
    Destination,
    DiscordSettings,
    NotifySettings,
    SlackSettings,
    TelegramSettings,
)

__all__ = [
    "CHAT_PLATFORMS", "ChatSettings", "Destination", "DiscordSettings", "NotifySettings", "SlackSettings",
    "TelegramSettings",
]
