"""Settings of the people side: who may command (ids per platform), chat behaviour, alert routing and the
Telegram, Discord and Slack connections.

Command names are checked against the command registry at start-up, not here (it lives in ``bot/``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator

from core.settings.models_base import Section

CHAT_PLATFORMS = ("telegram", "discord", "slack")

# Stable ids per platform, as the settings name users and chats. Telegram users are positive
# integers and chats may be negative (groups); Discord users and channels are snowflakes (64-bit
# integers, 17-20 digits since 2015); Slack users are U... or W..., channels C..., G... (private,
# older workspaces) or D... (direct messages). A display name, a handle or a typo never matches.
USER_ID_FORMATS: dict[str, re.Pattern[str]] = {
    "telegram": re.compile(r"^[1-9][0-9]{0,19}$"),
    "discord": re.compile(r"^[1-9][0-9]{16,19}$"),
    "slack": re.compile(r"^[UW][A-Z0-9]{2,30}$"),
}
CHAT_ID_FORMATS: dict[str, re.Pattern[str]] = {
    "telegram": re.compile(r"^-?[1-9][0-9]{0,19}$"),
    "discord": re.compile(r"^[1-9][0-9]{16,19}$"),
    "slack": re.compile(r"^[CGD][A-Z0-9]{2,30}$"),
}
ID_EXAMPLES = {"telegram": "123456789", "discord": "80351110224678912", "slack": "U024BE7LH"}
CHAT_EXAMPLES = {"telegram": "-1001234567890", "discord": "381870553235193857", "slack": "C0123ABCD"}
COMMAND_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _command_names(value: tuple[str, ...]) -> tuple[str, ...]:
    """``/KILL`` and ``kill`` name the same command: a leading slash and case are not meaningful.

    The names are checked against the command registry when the service starts (and by ``tradectl
    config check``): the registry is in ``bot/``, which the settings cannot import.
    """
    names: list[str] = []
    for raw in value:
        name = raw.strip().removeprefix("/").casefold()
        if not COMMAND_NAME_RE.match(name):
            raise ValueError(f"{raw!r} is not a command name (write it as in chat, e.g. 'kill')")
        if name not in names:
            names.append(name)
    return tuple(names)


# A list of chat command names. Every field of this type is checked against the registry at start-up.
CommandNames = Annotated[tuple[str, ...], AfterValidator(_command_names)]


class ChatSettings(Section):
    console: Literal["auto", "on", "off"] = Field("auto", description=(
        "Console chat on the terminal: `auto` (when stdin is readable), `on`, `off`."))
    unauthorized_reply: Literal["reply", "silent"] = Field("reply", description=(
        "`reply` with a short \"not authorized\", or stay `silent`."))
    confirm_ttl_s: int = Field(60, ge=5, le=3600, description="Seconds a confirmation button stays valid.")
    stale_command_s: int = Field(120, ge=5, description=(
        "Commands listed in stale_commands sent longer ago than this are refused."))
    stale_commands: CommandNames = Field(
        ("pause", "resume", "rearm", "grant", "revoke", "close", "closeall", "kill", "report"), description=(
            "Commands refused when their message is older than stale_command_s (a delayed or replayed update). "
            "Each must be a command (a leading / and case are ignored)."))
    rate_limit_per_minute: int = Field(30, ge=1, description="Commands one actor may send per minute.")
    confirm_commands: CommandNames = Field((), description=(
        "Commands that ask for confirmation in addition to close, closeall and kill. Each must be a command (a "
        "leading / and case are ignored); an unknown name stops start-up."))
    two_person_commands: CommandNames = Field((), description=(
        "Commands that a second admin must confirm (self-approval refused). Each must be a command (a leading / and "
        "case are ignored); an unknown name stops start-up."))
    trader_pairs: dict[str, tuple[str, ...]] = Field(default_factory=dict, description=(
        "Per-trader pair limits for /close: `platform:user_id` (e.g. `telegram:123456789`) -> pairs, each one of "
        "trading.pairs."))
    admins: dict[str, tuple[str, ...]] = Field(default_factory=dict, description=(
        "Bootstrap admins per platform (telegram, discord, slack -> stable user ids); they cannot be revoked from "
        "chat."))
    traders: dict[str, tuple[str, ...]] = Field(default_factory=dict, description=(
        "Bootstrap traders per platform (platform -> stable user ids)."))
    viewers: dict[str, tuple[str, ...]] = Field(default_factory=dict, description=(
        "Bootstrap viewers per platform (platform -> stable user ids)."))
    allowed_chats: dict[str, tuple[str, ...]] = Field(default_factory=dict, description=(
        "Group chats and channels per platform where commands are accepted (platform -> chat ids); private chats "
        "need only a role."))

    @field_validator("admins", "traders", "viewers")
    @classmethod
    def _user_ids(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return _check_ids(value, USER_ID_FORMATS, ID_EXAMPLES, "user")

    @field_validator("allowed_chats")
    @classmethod
    def _chat_ids(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return _check_ids(value, CHAT_ID_FORMATS, CHAT_EXAMPLES, "chat")

    @field_validator("trader_pairs")
    @classmethod
    def _trader_keys(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        # A key the dispatcher never looks up would leave that trader unrestricted: fail closed here.
        for key in value:
            platform, _, user_id = key.partition(":")
            if platform not in CHAT_PLATFORMS or not USER_ID_FORMATS[platform].match(user_id):
                raise ValueError(f"key {key!r} must be platform:user_id with platform one of "
                                 f"{', '.join(CHAT_PLATFORMS)}, e.g. 'telegram:{ID_EXAMPLES['telegram']}'")
        return value


def _check_ids(value: dict[str, tuple[str, ...]], formats: dict[str, re.Pattern[str]], examples: dict[str, str],
               what: str) -> dict[str, tuple[str, ...]]:
    """Deny by default only works when every listed id can match: a handle or a typo grants nothing
    and hides the mistake, so it is refused, naming the value."""
    for platform, ids in value.items():
        if platform not in CHAT_PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}: use one of {', '.join(CHAT_PLATFORMS)}"
                             + (" (the console operator is always an admin)" if platform == "console" else ""))
        for item in ids:
            if not formats[platform].match(item):
                raise ValueError(f"{platform} {what} id {item!r} is not a stable {platform} {what} id, "
                                 f"such as {examples[platform]!r}")
    return value


Level = Literal["on", "silent", "off"]
DEFAULT_EVENT_LEVELS: dict[str, Level] = {"order_placed": "off", "order_filled": "silent"}
Severity = Literal["info", "warning", "error", "critical"]


class Destination(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="Destination name (unique).")
    platform: Literal["telegram", "discord", "slack", "console"] = Field(description="Where it goes.")
    target: str = Field("", description=(
        "Telegram chat id, Discord channel id, Slack channel id (or empty for console)."))
    min_severity: Severity = Field("info", description="Events below this severity are not sent here.")
    events: dict[str, Level] = Field(default_factory=dict, description=(
        "Per event kind: on, silent or off (overrides notify.events)."))


class NotifySettings(Section):
    destinations: tuple[Destination, ...] = Field((), description=(
        "Alert destinations; see docs/alerts.md. Empty = console only."))
    events: dict[str, Level] = Field(default_factory=lambda: dict(DEFAULT_EVENT_LEVELS), description=(
        "Default level per event kind for every destination (on, silent, off); kinds not listed are on."))
    digest_after: int = Field(5, ge=2, le=1000, description=(
        "When more than this many alerts wait for one destination, they go out as digests."))
    digest_lines: int = Field(40, ge=5, le=200, description="Alerts per digest message.")
    per_destination_rate: float = Field(1.0, gt=0, le=50, description=(
        "Messages per second per destination (burst of 3)."))
    max_backoff_s: float = Field(300.0, gt=0, description="Longest wait between retries to a failing destination.")
    failing_warn_after: int = Field(5, ge=1, description=(
        "Consecutive failures before the other destinations are warned."))
    verbose: bool = Field(False, description=(
        "Show strategy internals in alerts (a signal's reasoning, stop trigger arithmetic, order ids, leadership "
        "terms); off: what happened, in plain words."))


class TelegramSettings(Section):
    """The Telegram bot: commands (polled by the leader only) and alerts (sent by any replica).

    Who may use it is decided by ``chat.admins`` / ``chat.traders`` / ``chat.viewers`` (numeric user
    ids under ``telegram``) and ``chat.allowed_chats`` (group ids); nothing here grants access.
    """

    enabled: bool = Field(False, description=(
        "Accept commands over Telegram (the leader polls the bot; followers never do). Needs telegram.token."))
    token: SecretStr | None = Field(None, description=(
        "Bot token from @BotFather (secret). Also used for alerts to telegram destinations, even with enabled = "
        "false."))
    base_url: str | None = Field(None, description=(
        "Bot API base URL override, e.g. a local Bot API server (`http://host:8081/bot`); default: Telegram's."))
    poll_timeout_s: int = Field(10, ge=0, le=50, description="Long-poll timeout of getUpdates, seconds.")
    chat_rate_per_s: float = Field(1.0, gt=0, le=30, description=(
        "Messages per second the bot sends into one chat (Telegram allows about 1)."))
    chat_burst: int = Field(3, ge=1, le=20, description=(
        "Messages one chat may receive in a quick burst before chat_rate_per_s applies."))
    overall_rate_per_s: float = Field(30.0, gt=0, le=1000, description=(
        "Messages per second the bot sends in total (Telegram allows about 30)."))
    group_rate_per_min: int = Field(20, ge=1, le=600, description=(
        "Messages per minute the bot sends into one group (Telegram allows about 20)."))
    conflict_backoff_s: float = Field(5.0, gt=0, le=300, description=(
        "After a 409 Conflict from Telegram (another process polls the bot) polling stops and the lease is "
        "re-checked; the first conflict in a while resumes at once if the lease is still ours, repeated ones wait "
        "this long (doubling, up to 60 s)."))
    stop_timeout_s: float = Field(5.0, gt=0, le=60, description=(
        "On stop, seconds allowed for replies still waiting to be sent."))
    set_commands: bool = Field(True, description=(
        "Publish the command list (the / menu) with setMyCommands when polling starts."))
    reply_keyboard: bool = Field(False, description=(
        "In private chats, show a persistent keyboard of read-only commands (/status /positions /pnl /trades /help) "
        "under the message box, so a phone user taps instead of typing. It is sent with every reply that has no "
        "inline buttons (Telegram keeps showing the last one). Groups never get it."))


_GUILD_RE = re.compile(r"^[1-9][0-9]{16,19}$")  # a snowflake, as every Discord id
_TEAM_RE = re.compile(r"^[TE][A-Z0-9]{2,30}$")


class DiscordSettings(Section):
    """The Discord bot: slash commands and buttons (gateway on the leader only) and alerts to channels.

    Who may use it is decided by ``chat.admins`` / ``chat.traders`` / ``chat.viewers`` (user ids under
    ``discord``) and ``chat.allowed_chats.discord`` (channel ids); ``guilds`` only says which servers
    the bot serves at all.
    """

    enabled: bool = Field(False, description=(
        "Accept commands from Discord (slash commands and buttons). The gateway connection runs on the leader only. "
        "Needs discord.token."))
    token: SecretStr | None = Field(None, description=(
        "Bot token from the Discord developer portal (secret). Also used for alerts to discord channel ids, even "
        "with enabled = false."))
    guilds: tuple[str, ...] = Field((), description=(
        "Server (guild) ids where commands are accepted and registered; commands from any other server are refused."))
    allow_dms: bool = Field(False, description=(
        "Also accept commands in direct messages with the bot (registers the commands globally for DMs)."))
    defer_after_s: float = Field(1.5, gt=0, le=2.5, description=(
        "A command still running after this long is deferred (\"thinking...\") and answered with a follow-up, inside "
        "Discord's 3-second limit."))
    request_timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of one REST request when posting alerts.")
    api_base: str = Field("https://discord.com/api/v10", description="REST API base URL (override for testing).")
    gateway_url: str | None = Field(None, description="Gateway WebSocket URL override (testing); default: Discord's.")

    @field_validator("guilds")
    @classmethod
    def _guild_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for guild in value:
            if not _GUILD_RE.match(guild):
                raise ValueError(f"guild id {guild!r} must be the numeric server id (Developer Mode: Copy Server ID)")
        return value


class SlackSettings(Section):
    """The Slack app: a slash command and Block Kit buttons (on every replica) and alerts to channels.

    Socket Mode needs no public endpoint; HTTP mode serves ``http_path`` and verifies Slack's request
    signatures. Users and channels are allowed as for every platform (``chat.*`` roles, ids under
    ``slack``; ``chat.allowed_chats.slack``); ``workspaces`` says which Slack workspaces are served.
    """

    enabled: bool = Field(False, description=(
        "Accept commands from Slack. Runs on every replica: Slack delivers each event to one connection. Needs "
        "slack.bot_token and, per mode, app_token or signing_secret."))
    mode: Literal["socket", "http"] = Field("socket", description=(
        "`socket` (Socket Mode: an outgoing WebSocket, no public endpoint) or `http` (Slack posts to http_path; "
        "signatures verified)."))
    bot_token: SecretStr | None = Field(None, description=(
        "Bot token xoxb-... (secret): replies and alerts. Alerts to slack channel ids use it even with enabled = "
        "false."))
    app_token: SecretStr | None = Field(None, description=(
        "App-level token xapp-... with connections:write (secret): needed in socket mode."))
    signing_secret: SecretStr | None = Field(None, description=(
        "Signing secret (secret): needed in http mode to verify that requests come from Slack."))
    workspaces: tuple[str, ...] = Field((), description=(
        "Workspace (team) ids whose commands are accepted, e.g. T0123ABCD; commands from any other workspace are "
        "refused."))
    command: str = Field("/tradectl", pattern=r"^/[a-z0-9_-]{1,31}$", description=(
        "The slash command configured in the Slack app (`/tradectl status`)."))
    http_host: str = Field("0.0.0.0", description="Address the http mode endpoint listens on.")
    http_port: int = Field(3000, ge=0, le=65535, description="Port of the http mode endpoint (0 = any free port).")
    http_path: str = Field("/slack/events", pattern=r"^/[A-Za-z0-9/_-]*$", description=(
        "Path of the http mode endpoint (the Request URL of the slash command and of interactivity)."))
    request_timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of one Web API request.")
    api_base: str = Field("https://slack.com/api/", description="Web API base URL (override for testing).")

    @field_validator("workspaces")
    @classmethod
    def _team_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for team in value:
            if not _TEAM_RE.match(team):
                raise ValueError(f"workspace id {team!r} must look like T0123ABCD")
        return value

    def missing_secrets(self) -> list[str]:
        """The secrets this mode needs that are not set (empty counts as not set), by setting name."""
        needed = {"slack.bot_token": self.bot_token}
        if self.mode == "socket":
            needed["slack.app_token"] = self.app_token
        else:
            needed["slack.signing_secret"] = self.signing_secret
        return [name for name, value in needed.items() if value is None or not value.get_secret_value()]
