"""The settings models, one per area. Each forbids unknown keys and is frozen.

The models live beside this module by area (:mod:`core.settings.models_trading`,
:mod:`core.settings.models_chat`, :mod:`core.settings.models_ops`, on the common base
:mod:`core.settings.models_base`); this module is where the rest of the code imports them from, so a
model can move between those files without any import changing.

Every field here is documented in docs/configuration.md and .env.example (a test checks).
"""

from core.settings.models_base import Section
from core.settings.models_chat import (
    CHAT_EXAMPLES,
    CHAT_ID_FORMATS,
    CHAT_PLATFORMS,
    COMMAND_NAME_RE,
    DEFAULT_EVENT_LEVELS,
    ID_EXAMPLES,
    USER_ID_FORMATS,
    ChatSettings,
    CommandNames,
    Destination,
    DiscordSettings,
    Level,
    NotifySettings,
    Severity,
    SlackSettings,
    TelegramSettings,
)
from core.settings.models_ops import (
    WEEKDAYS,
    DatabaseSettings,
    LeaderSettings,
    LoggingSettings,
    MetricsSettings,
    ScheduleSettings,
    ServiceSettings,
    VaultSettings,
)
from core.settings.models_trading import (
    FEED_NAMES,
    LIVE_FEEDS,
    NATIVE_VENUES,
    TIMEFRAMES,
    BacktestSettings,
    CcxtSettings,
    ExternalStrategy,
    PaperSettings,
    ReplaySettings,
    RiskSettings,
    StrategySettings,
    TradingSettings,
    VenueSettings,
    check_feed,
    check_venue,
)

__all__ = [
    "CHAT_EXAMPLES",
    "CHAT_ID_FORMATS",
    "CHAT_PLATFORMS",
    "COMMAND_NAME_RE",
    "DEFAULT_EVENT_LEVELS",
    "FEED_NAMES",
    "ID_EXAMPLES",
    "LIVE_FEEDS",
    "NATIVE_VENUES",
    "TIMEFRAMES",
    "USER_ID_FORMATS",
    "WEEKDAYS",
    "BacktestSettings",
    "CcxtSettings",
    "ChatSettings",
    "CommandNames",
    "DatabaseSettings",
    "Destination",
    "DiscordSettings",
    "ExternalStrategy",
    "LeaderSettings",
    "Level",
    "LoggingSettings",
    "MetricsSettings",
    "NotifySettings",
    "PaperSettings",
    "ReplaySettings",
    "RiskSettings",
    "ScheduleSettings",
    "Section",
    "ServiceSettings",
    "Severity",
    "SlackSettings",
    "StrategySettings",
    "TelegramSettings",
    "TradingSettings",
    "VaultSettings",
    "VenueSettings",
    "check_feed",
    "check_venue",
]
