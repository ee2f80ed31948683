"""The settings models, one per area. Each forbids unknown keys and is frozen.

Every field here is documented in docs/configuration.md and .env.example (a test checks).
"""

from __future__ import annotations

import re
import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_PAIR_RE = re.compile(r"^[A-Z0-9]{2,10}/[A-Z0-9]{2,10}$")
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
TIMEFRAMES = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400}


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_tz(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class ServiceSettings(Section):
    group: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Deployment group: replicas sharing a database and bot token use the same group (one leader per group).")
    data_dir: Path = Field(Path("data"), description="Directory for the embedded database, the vault and other local files.")
    timezone: str = Field("UTC", description="IANA time zone for day/week/month boundaries (PnL periods, daily loss limit, reports).")
    heartbeat_interval_s: float = Field(5.0, gt=0, le=60, description="Seconds between heartbeat writes.")
    heartbeat_stale_s: float = Field(30.0, gt=0, le=600, description="A heartbeat older than this makes `tradectl health` fail.")
    shutdown_timeout_s: float = Field(10.0, gt=0, le=120, description="Seconds each component gets to stop on SIGINT/SIGTERM.")

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _check_tz(v)))


class DatabaseSettings(Section):
    url: str = Field("sqlite:///data/tradectl.db", description="Database URL: sqlite:///path (embedded) or postgresql://user:pass@host/db. DATABASE_URL is accepted too.")
    auto_upgrade: Literal["embedded", "always", "never"] = Field("embedded", description="`embedded`: `tradectl run` upgrades the schema itself on SQLite only; `always`; `never` (run `tradectl db upgrade`).")
    echo: bool = Field(False, description="Log every SQL statement (debugging only).")


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["auto", "text", "json"] = Field("auto", description="`text`, `json`, or `auto` (text on a terminal, JSON otherwise).")
    file: Path | None = Field(None, description="Also write logs to this file, rotated by size.")
    max_bytes: int = Field(10_000_000, ge=10_000, description="Rotate the log file at this size.")
    backups: int = Field(5, ge=0, le=100, description="Rotated log files to keep.")


class TradingSettings(Section):
    mode: Literal["paper", "live"] = Field("paper", description="`paper` (default) or `live`. Live trades real money and needs a live venue and its credentials.")
    venue: Literal["paper", "kraken", "coinbase"] = Field("paper", description="`paper`, `kraken` or `coinbase`. A live venue needs mode = live.")
    pairs: tuple[str, ...] = Field(("BTC/USD",), description="Pairs to trade, written BASE/QUOTE.")
    timeframe: str = Field("1h", description="Candle timeframe the strategies scan on (1m, 5m, 15m, 30m, 1h, 4h, 1d).")
    quote: str = Field("USD", description="Quote currency equity and PnL are measured in.")
    protection_interval_s: float = Field(1.0, gt=0, le=60, description="Seconds between protection-loop passes (stops, take-profits, trailing stops, fills).")
    scan_timeout_s: float = Field(5.0, gt=0, le=120, description="Time budget for one pair's strategy scan; a slower scan is abandoned and counted.")
    stale_data_s: float = Field(0, ge=0, description="Auto-pause entries when a pair's data is older than this (seconds; 0 = off in paper, two candles plus 60 s in live mode).")
    feed_down_s: float = Field(60.0, gt=0, description="Auto-pause entries when the market-data feed stays disconnected this long.")
    error_burst: int = Field(5, ge=1, description="Auto-pause entries after this many exchange errors within error_window_s.")
    error_window_s: float = Field(60.0, gt=0, description="Window for error_burst.")
    outlier_max_move: Decimal = Field(Decimal("0.5"), gt=0, description="Reject a candle whose close moved more than this fraction from the previous close (counted).")
    history_bars: int = Field(500, ge=50, le=100_000, description="Candles kept per pair and handed to the strategies.")

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one pair is needed")
        for pair in value:
            if not _PAIR_RE.match(pair):
                raise ValueError(f"pair {pair!r} must look like BASE/QUOTE, e.g. BTC/USD")
        return value

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str) -> str:
        if value not in TIMEFRAMES:
            raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAMES)}")
        return value

    @property
    def timeframe_s(self) -> int:
        return TIMEFRAMES[self.timeframe]


class PaperSettings(Section):
    starting_balances: dict[str, Decimal] = Field(default_factory=lambda: {"USD": Decimal("10000")}, description="Paper balances seeded on first start (currency -> amount).")
    maker_fee: Decimal = Field(Decimal("0.0016"), ge=0, lt=1, description="Paper maker fee rate (limit orders).")
    taker_fee: Decimal = Field(Decimal("0.0026"), ge=0, lt=1, description="Paper taker fee rate (market orders).")
    slippage_bps: Decimal = Field(Decimal("5"), ge=0, le=1000, description="Paper slippage on market orders, basis points.")
    impact_bps: Decimal = Field(Decimal("50"), ge=0, le=10000, description="Extra paper slippage in bps per 100% of the candle volume taken (grows with order size).")
    volume_share: Decimal = Field(Decimal("0.1"), gt=0, le=1, description="Largest share of one candle's volume a paper order may fill; larger orders fill partially across candles.")
    latency_ms: int = Field(0, ge=0, le=10_000, description="Simulated latency per paper venue call.")
    min_qty: Decimal = Field(Decimal("0.0001"), gt=0, description="Paper minimum order quantity.")
    qty_step: Decimal = Field(Decimal("0.00000001"), gt=0, description="Paper quantity step.")
    price_tick: Decimal = Field(Decimal("0.01"), gt=0, description="Paper price tick.")
    min_notional: Decimal = Field(Decimal("5"), ge=0, description="Paper minimum order value in the quote currency.")


class ReplaySettings(Section):
    csv: Path | None = Field(None, description="Candles CSV to replay (timestamp,open,high,low,close,volume); default: the bundled Coinbase BTC/USD 1h file.")
    speed: float = Field(50.0, gt=0, le=1_000_000, description="Replay pace in candles per second.")


class RiskSettings(Section):
    risk_per_trade: Decimal = Field(Decimal("0.01"), gt=0, le=Decimal("0.2"), description="Share of equity risked between entry and stop on one trade (fixed-fractional sizing).")
    default_stop_pct: Decimal = Field(Decimal("0.03"), gt=0, lt=1, description="Stop distance used when a strategy suggests none.")
    trailing_stop_pct: Decimal | None = Field(None, gt=0, lt=1, description="Trailing stop distance below the highest price since entry (unset = off).")
    kelly_min_trades: int = Field(30, ge=5, description="Closed trades needed before the Kelly cap applies.")
    kelly_fraction: Decimal = Field(Decimal("0.5"), gt=0, le=1, description="Fraction of the Kelly bet used as a size cap.")
    max_open_positions: int = Field(3, ge=1, le=500, description="Most positions open at once.")
    max_pair_exposure: Decimal = Field(Decimal("0.3"), gt=0, le=1, description="Largest position value in one pair as a share of equity.")
    max_total_exposure: Decimal = Field(Decimal("0.9"), gt=0, le=1, description="Largest total position value as a share of equity.")
    cooldown_after_loss_s: int = Field(3600, ge=0, description="No new entry in a pair for this long after a losing exit (market time).")
    daily_loss_limit: Decimal = Field(Decimal("0.05"), gt=0, le=1, description="Auto-pause entries when equity falls this share below the start of the day.")
    max_drawdown: Decimal = Field(Decimal("0.2"), gt=0, le=1, description="Auto-pause entries when equity falls this share below its peak.")


class ExternalStrategy(Section):
    name: str
    path: Path
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    weight: float = 1.0


class StrategySettings(Section):
    enabled: tuple[str, ...] = Field(("trend", "mean_reversion", "momentum", "breakout", "candles"), description="Built-in strategies combined by the confluence layer.")
    weights: dict[str, float] = Field(default_factory=dict, description="Confluence weight per strategy (finite, non-negative, not all zero); default 1 each.")
    params: dict[str, dict[str, float | int | bool | str]] = Field(default_factory=dict, description="Per-strategy parameters, e.g. {trend = {fast = 12, slow = 26}}.")
    entry_threshold: float = Field(0.2, gt=0, le=1, description="Confluence score needed to enter.")
    exit_threshold: float = Field(0.2, gt=0, le=1, description="Confluence score (negative) needed to exit.")
    higher_timeframe: str | None = Field(None, description="Optional higher timeframe that must confirm entries (e.g. 4h).")
    external: tuple[ExternalStrategy, ...] = Field((), description="External strategy modules; each loads only if its file matches the listed SHA-256.")

    @field_validator("higher_timeframe")
    @classmethod
    def _higher_timeframe(cls, value: str | None) -> str | None:
        if value is not None and value not in TIMEFRAMES:
            raise ValueError(f"{value!r} is not a timeframe: use one of {', '.join(TIMEFRAMES)}")
        return value


class ChatSettings(Section):
    console: Literal["auto", "on", "off"] = Field("auto", description="Console chat on the terminal: `auto` (when stdin is readable), `on`, `off`.")
    unauthorized_reply: Literal["reply", "silent"] = Field("reply", description="`reply` with a short \"not authorized\", or stay `silent`.")
    confirm_ttl_s: int = Field(60, ge=5, le=3600, description="Seconds a confirmation button stays valid.")
    stale_command_s: int = Field(120, ge=5, description="Commands listed in stale_commands sent longer ago than this are refused.")
    stale_commands: CommandNames = Field(("pause", "resume", "rearm", "grant", "revoke", "close", "closeall", "kill", "report"), description="Commands refused when their message is older than stale_command_s (a delayed or replayed update). Each must be a command (a leading / and case are ignored).")
    rate_limit_per_minute: int = Field(30, ge=1, description="Commands one actor may send per minute.")
    confirm_commands: CommandNames = Field((), description="Commands that ask for confirmation in addition to close, closeall and kill. Each must be a command (a leading / and case are ignored); an unknown name stops start-up.")
    two_person_commands: CommandNames = Field((), description="Commands that a second admin must confirm (self-approval refused). Each must be a command (a leading / and case are ignored); an unknown name stops start-up.")
    trader_pairs: dict[str, tuple[str, ...]] = Field(default_factory=dict, description="Per-trader pair limits for /close: `platform:user_id` (e.g. `telegram:123456789`) -> pairs, each one of trading.pairs.")
    admins: dict[str, tuple[str, ...]] = Field(default_factory=dict, description="Bootstrap admins per platform (telegram, discord, slack -> stable user ids); they cannot be revoked from chat.")
    traders: dict[str, tuple[str, ...]] = Field(default_factory=dict, description="Bootstrap traders per platform (platform -> stable user ids).")
    viewers: dict[str, tuple[str, ...]] = Field(default_factory=dict, description="Bootstrap viewers per platform (platform -> stable user ids).")
    allowed_chats: dict[str, tuple[str, ...]] = Field(default_factory=dict, description="Group chats and channels per platform where commands are accepted (platform -> chat ids); private chats need only a role.")

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


class VenueSettings(Section):
    api_key: SecretStr | None = Field(None, description="API key (secret).")
    api_secret: SecretStr | None = Field(None, description="API secret or private key (secret).")
    rest_url: str | None = Field(None, description="REST base URL override (testing).")
    ws_url: str | None = Field(None, description="WebSocket URL override (testing).")
    allow_withdraw_keys: bool = Field(False, description="Accept API keys that can withdraw funds (refused by default).")


Level = Literal["on", "silent", "off"]
Severity = Literal["info", "warning", "error", "critical"]


class Destination(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="Destination name (unique).")
    platform: Literal["telegram", "discord", "slack", "console"] = Field(description="Where it goes.")
    target: str = Field("", description="Telegram chat id, Discord channel id, Slack channel id (or empty for console).")
    min_severity: Severity = Field("info", description="Events below this severity are not sent here.")
    events: dict[str, Level] = Field(default_factory=dict, description="Per event kind: on, silent or off (overrides notify.events).")


class NotifySettings(Section):
    destinations: tuple[Destination, ...] = Field((), description="Alert destinations; see docs/alerts.md. Empty = console only.")
    events: dict[str, Level] = Field(default_factory=lambda: {"order_placed": "off", "order_filled": "silent"},
                                     description="Default level per event kind for every destination (on, silent, off); kinds not listed are on.")
    digest_after: int = Field(5, ge=2, le=1000, description="When more than this many alerts wait for one destination, they go out as digests.")
    digest_lines: int = Field(40, ge=5, le=200, description="Alerts per digest message.")
    per_destination_rate: float = Field(1.0, gt=0, le=50, description="Messages per second per destination (burst of 3).")
    max_backoff_s: float = Field(300.0, gt=0, description="Longest wait between retries to a failing destination.")
    failing_warn_after: int = Field(5, ge=1, description="Consecutive failures before the other destinations are warned.")
    verbose: bool = Field(False, description="Show strategy internals in alerts (a signal's reasoning, stop trigger arithmetic, order ids, leadership terms); off: what happened, in plain words.")


class VaultSettings(Section):
    path: Path = Field(Path("data/vault.bin"), description="Encrypted secrets vault; unlocked at start-up by TRADECTL_VAULT_PASSPHRASE or TRADECTL_VAULT_KEY (or their _FILE forms).")
    secrets_dir: Path = Field(Path("/run/secrets"), description="Directory of secret files (Docker/Kubernetes secrets), one file per secret name.")


_HHMM_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_hhmm(value: str) -> tuple[int, int]:
    match = _HHMM_RE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a time of day written HH:MM (00:00-23:59)")
    return int(match.group(1)), int(match.group(2))


def _split_day_time(value: str) -> tuple[str, tuple[int, int]]:
    parts = value.split()
    if len(parts) != 2:
        raise ValueError(f"{value!r} must be a day and a time, e.g. 'mon 08:00' or '1 08:00'")
    return parts[0].lower(), _parse_hhmm(parts[1])


class ScheduleSettings(Section):
    """Leader-only scheduled jobs. Every time of day is local to ``timezone``, never the host's."""

    enabled: bool = Field(True, description="Run the scheduled jobs (check-ins, reports, reconciliation, retention) on the leader.")
    timezone: str = Field("UTC", description="IANA time zone of the report times below and of the report periods (e.g. Europe/Berlin).")
    checkin_minutes: int = Field(30, ge=0, le=1440, description="Minutes between check-ins proving the bot is alive (0 = off).")
    daily_report_at: str = Field("08:00", description="Local time HH:MM of the daily PnL report for the previous day (empty = off).")
    weekly_report: str = Field("mon 08:00", description="Weekday and local time of the weekly PnL report for the previous week, e.g. `mon 08:00` (empty = off).")
    monthly_report: str = Field("1 08:00", description="Day of month (1-28 or `last`) and local time of the monthly PnL report for the previous month, e.g. `1 08:00` (empty = off).")
    reconcile_minutes: int = Field(15, ge=0, le=1440, description="Minutes between reconciliations of venue balances and open orders with the database (0 = off).")
    retention_days: int = Field(30, ge=1, le=3650, description="Heartbeats, delivered alerts, processed chat updates and job runs older than this many days are deleted (never trades, orders, fills, ledger or audit).")
    retention_at: str = Field("03:30", description="Local time HH:MM of the daily retention clean-up (empty = off).")
    misfire_grace_s: int = Field(300, ge=1, le=86400, description="A run missed by at most this many seconds (e.g. during a leader failover) still runs, once.")
    chart_days: int = Field(30, ge=1, le=3650, description="Days of equity curve in report charts, and the default of /chart.")

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _check_tz(v)))

    @field_validator("daily_report_at", "retention_at")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        if value:
            _parse_hhmm(value)
        return value

    @field_validator("weekly_report")
    @classmethod
    def _weekly(cls, value: str) -> str:
        if value:
            day, _ = _split_day_time(value)
            if day not in WEEKDAYS:
                raise ValueError(f"weekday {day!r} must be one of {', '.join(WEEKDAYS)}")
        return value

    @field_validator("monthly_report")
    @classmethod
    def _monthly(cls, value: str) -> str:
        if value:
            day, _ = _split_day_time(value)
            if day != "last" and not (day.isdigit() and 1 <= int(day) <= 28):
                raise ValueError(f"day of month {day!r} must be 1-28 or 'last' (29-31 would skip short months)")
        return value

    @property
    def daily_time(self) -> tuple[int, int] | None:
        return _parse_hhmm(self.daily_report_at) if self.daily_report_at else None

    @property
    def retention_time(self) -> tuple[int, int] | None:
        return _parse_hhmm(self.retention_at) if self.retention_at else None

    @property
    def weekly_time(self) -> tuple[str, tuple[int, int]] | None:
        return _split_day_time(self.weekly_report) if self.weekly_report else None

    @property
    def monthly_time(self) -> tuple[str, tuple[int, int]] | None:
        return _split_day_time(self.monthly_report) if self.monthly_report else None


class BacktestSettings(Section):
    """`tradectl backtest` and `tradectl tune`. Fees, slippage and volume share come from [paper]."""

    mode: Literal["auto", "engine", "fast"] = Field("auto", description="`engine` replays candles through the trading engine itself; `fast` runs the same rules over precomputed signals (one strategy, sizing fixed or fraction); `auto` picks fast when it gives the same trades, else engine.")
    sizing: Literal["risk", "fixed", "fraction"] = Field("risk", description="Entry sizing in backtests: `risk` (the live risk manager: stop-distance sizing, Kelly and exposure caps, default stop), `fixed` (`qty` units per entry), `fraction` (`fraction` of equity per entry). `fixed` and `fraction` use only stops a strategy suggests.")
    qty: Decimal = Field(Decimal("1"), gt=0, description="Units bought per entry with sizing = fixed (1 = one whole coin).")
    fraction: Decimal = Field(Decimal("0.95"), gt=0, le=1, description="Share of equity per entry with sizing = fraction (capped by cash after fees).")
    fill_on: Literal["next_open", "last_close"] = Field("next_open", description="Fill convention: `next_open` (a signal on a candle's close fills at the next candle's open) or `last_close` (at the signal candle's close).")
    resume_after_pause: Literal["next_day", "never"] = Field("next_day", description="When a breaker (daily loss, drawdown) pauses entries during a backtest: resume at the next day's first candle, as an operator would, or `never`.")
    output_dir: Path = Field(Path("data/backtests"), description="Where `tradectl backtest` writes its trades CSV and equity chart.")
    overlay: Path = Field(Path("data/tuned.toml"), description="Tuned-parameter file written by `tradectl tune` and merged over the config file at start-up (environment variables still win). Your own config file is never written.")
    metric: Literal["sharpe", "return", "profit_factor", "expectancy", "win_rate", "max_drawdown", "trades"] = Field("sharpe", description="What `tradectl tune` ranks parameter sets by (max_drawdown: smaller is better).")
    min_trades: int = Field(10, ge=1, description="`tradectl tune` ranks a parameter set with fewer closed trades last.")
    seed: int = Field(0, ge=0, description="Seed for random grid sampling in `tradectl tune --samples` (the backtest itself has no randomness).")


class LeaderSettings(Section):
    """The lease that picks the one replica running leader work (trading core, Telegram polling)."""

    ttl_s: float = Field(15.0, gt=0, le=600, description="Lease time: a crashed leader is replaced at most this long (plus renew_s) after its last renewal.")
    renew_s: float = Field(5.0, gt=0, le=300, description="Seconds between lease renewals by the leader (about ttl_s / 3).")
    step_down_s: float = Field(10.0, gt=0, le=600, description="A leader that has not renewed for this long stops its leader work, before the lease can expire; must be between renew_s and ttl_s.")
    follower_poll_s: float = Field(1.0, gt=0, le=60, description="Seconds between a follower's attempts to take the lease (bounds the handover time after a graceful stop).")

    @model_validator(mode="after")
    def _ordered(self) -> "LeaderSettings":
        if not self.renew_s < self.step_down_s < self.ttl_s:
            raise ValueError("leader timings must satisfy renew_s < step_down_s < ttl_s")
        return self


class TelegramSettings(Section):
    """The Telegram bot: commands (polled by the leader only) and alerts (sent by any replica).

    Who may use it is decided by ``chat.admins`` / ``chat.traders`` / ``chat.viewers`` (numeric user
    ids under ``telegram``) and ``chat.allowed_chats`` (group ids); nothing here grants access.
    """

    enabled: bool = Field(False, description="Accept commands over Telegram (the leader polls the bot; followers never do). Needs telegram.token.")
    token: SecretStr | None = Field(None, description="Bot token from @BotFather (secret). Also used for alerts to telegram destinations, even with enabled = false.")
    base_url: str | None = Field(None, description="Bot API base URL override, e.g. a local Bot API server (`http://host:8081/bot`); default: Telegram's.")
    poll_timeout_s: int = Field(10, ge=0, le=50, description="Long-poll timeout of getUpdates, seconds.")
    chat_rate_per_s: float = Field(1.0, gt=0, le=30, description="Messages per second the bot sends into one chat (Telegram allows about 1).")
    chat_burst: int = Field(3, ge=1, le=20, description="Messages one chat may receive in a quick burst before chat_rate_per_s applies.")
    overall_rate_per_s: float = Field(30.0, gt=0, le=1000, description="Messages per second the bot sends in total (Telegram allows about 30).")
    group_rate_per_min: int = Field(20, ge=1, le=600, description="Messages per minute the bot sends into one group (Telegram allows about 20).")
    conflict_backoff_s: float = Field(5.0, gt=0, le=300, description="After a 409 Conflict from Telegram (another process polls the bot) polling stops and the lease is re-checked; the first conflict in a while resumes at once if the lease is still ours, repeated ones wait this long (doubling, up to 60 s).")
    stop_timeout_s: float = Field(5.0, gt=0, le=60, description="On stop, seconds allowed for replies still waiting to be sent.")
    set_commands: bool = Field(True, description="Publish the command list (the / menu) with setMyCommands when polling starts.")


_GUILD_RE = re.compile(r"^[1-9][0-9]{16,19}$")  # a snowflake, as every Discord id
_TEAM_RE = re.compile(r"^[TE][A-Z0-9]{2,30}$")


class DiscordSettings(Section):
    """The Discord bot: slash commands and buttons (gateway on the leader only) and alerts to channels.

    Who may use it is decided by ``chat.admins`` / ``chat.traders`` / ``chat.viewers`` (user ids under
    ``discord``) and ``chat.allowed_chats.discord`` (channel ids); ``guilds`` only says which servers
    the bot serves at all.
    """

    enabled: bool = Field(False, description="Accept commands from Discord (slash commands and buttons). The gateway connection runs on the leader only. Needs discord.token.")
    token: SecretStr | None = Field(None, description="Bot token from the Discord developer portal (secret). Also used for alerts to discord channel ids, even with enabled = false.")
    guilds: tuple[str, ...] = Field((), description="Server (guild) ids where commands are accepted and registered; commands from any other server are refused.")
    allow_dms: bool = Field(False, description="Also accept commands in direct messages with the bot (registers the commands globally for DMs).")
    defer_after_s: float = Field(1.5, gt=0, le=2.5, description="A command still running after this long is deferred (\"thinking...\") and answered with a follow-up, inside Discord's 3-second limit.")
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

    enabled: bool = Field(False, description="Accept commands from Slack. Runs on every replica: Slack delivers each event to one connection. Needs slack.bot_token and, per mode, app_token or signing_secret.")
    mode: Literal["socket", "http"] = Field("socket", description="`socket` (Socket Mode: an outgoing WebSocket, no public endpoint) or `http` (Slack posts to http_path; signatures verified).")
    bot_token: SecretStr | None = Field(None, description="Bot token xoxb-... (secret): replies and alerts. Alerts to slack channel ids use it even with enabled = false.")
    app_token: SecretStr | None = Field(None, description="App-level token xapp-... with connections:write (secret): needed in socket mode.")
    signing_secret: SecretStr | None = Field(None, description="Signing secret (secret): needed in http mode to verify that requests come from Slack.")
    workspaces: tuple[str, ...] = Field((), description="Workspace (team) ids whose commands are accepted, e.g. T0123ABCD; commands from any other workspace are refused.")
    command: str = Field("/tradectl", pattern=r"^/[a-z0-9_-]{1,31}$", description="The slash command configured in the Slack app (`/tradectl status`).")
    http_host: str = Field("0.0.0.0", description="Address the http mode endpoint listens on.")
    http_port: int = Field(3000, ge=0, le=65535, description="Port of the http mode endpoint (0 = any free port).")
    http_path: str = Field("/slack/events", pattern=r"^/[A-Za-z0-9/_-]*$", description="Path of the http mode endpoint (the Request URL of the slash command and of interactivity).")
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
