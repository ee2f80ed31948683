"""Settings of what trades and on what: the trading loop, the venues (paper, native, ccxt), the replay feed,
risk limits, strategies and backtesting.

Only the shape of a venue or feed name is checked here; whether it can be built is checked when it is.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from core.settings.models_base import Section

_PAIR_RE = re.compile(r"^[A-Z0-9]{2,10}/[A-Z0-9]{2,10}$")
LIVE_FEEDS = ("kraken", "coinbase")
FEED_NAMES = {"kraken": "Kraken", "coinbase": "Coinbase"}


def check_feed(value: str) -> str:
    """``replay``, a native venue's public feed, or ``ccxt:<id>`` (only the id's shape is checked here;
    whether ccxt is installed and has the exchange is checked when the feed is built)."""
    if value == "replay" or value in LIVE_FEEDS:
        return value
    if value.startswith("ccxt:"):
        if _CCXT_ID_RE.match(value.removeprefix("ccxt:")):
            return value
        raise ValueError(f"{value!r}: write a ccxt feed as ccxt:<exchange id> in lower case, e.g. ccxt:kraken "
                         "(`tradectl venues` lists the ids)")
    raise ValueError(f"unknown feed {value!r}; supported: {', '.join(('replay', *LIVE_FEEDS))} or ccxt:<exchange id>")


NATIVE_VENUES = ("paper", "kraken", "coinbase")
_CCXT_ID_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


def check_venue(value: str) -> str:
    """A native venue or ``ccxt:<id>``. Only the id's shape is checked here (the settings never import
    ccxt); whether ccxt has the exchange is checked when the venue is built, naming `tradectl venues`."""
    if value in NATIVE_VENUES:
        return value
    if value.startswith("ccxt:"):
        if _CCXT_ID_RE.match(value.removeprefix("ccxt:")):
            return value
        raise ValueError(f"{value!r}: write a ccxt venue as ccxt:<exchange id> in lower case, e.g. ccxt:kraken "
                         "(`tradectl venues` lists the ids)")
    raise ValueError(f"unknown venue {value!r}: use {', '.join(NATIVE_VENUES)} or ccxt:<exchange id> "
                     "(`tradectl venues` lists what is available)")


TIMEFRAMES = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400}


class TradingSettings(Section):
    mode: Literal["paper", "live"] = Field("paper", description=(
        "`paper` (default) or `live`. Live trades real money and needs a live venue and its credentials."))
    venue: str = Field("paper", description=(
        "`paper`, `kraken`, `coinbase` or `ccxt:<exchange id>` (any exchange ccxt reaches, e.g. `ccxt:binance`; "
        "`pip install tradectl[ccxt]`, `tradectl venues` lists the ids). A live venue needs mode = live."))
    feed: str = Field("replay", description=(
        "Market data in paper mode: `replay` (default: historical candles) or a live public feed, `kraken`, "
        "`coinbase` or `ccxt:<exchange id>` (no API keys; orders stay simulated). In live mode leave it unset or "
        "name the live venue."))
    pairs: tuple[str, ...] = Field(("BTC/USD",), description="Pairs to trade, written BASE/QUOTE.")
    timeframe: str = Field("1h", description="Candle timeframe the strategies scan on (1m, 5m, 15m, 30m, 1h, 4h, 1d).")
    quote: str = Field("USD", description="Quote currency equity and PnL are measured in.")
    protection_interval_s: float = Field(1.0, gt=0, le=60, description=(
        "Seconds between protection-loop passes (stops, take-profits, trailing stops, fills)."))
    scan_timeout_s: float = Field(5.0, gt=0, le=120, description=(
        "Time budget for one pair's strategy scan; a slower scan is abandoned and counted."))
    stale_data_s: float = Field(0, ge=0, description=(
        "Auto-pause entries when a pair's data is older than this (seconds; 0 = off in paper on replay, two candles "
        "plus 60 s in live mode and in paper on a live feed)."))
    feed_down_s: float = Field(60.0, gt=0, description=(
        "Auto-pause entries when the market-data feed stays disconnected this long."))
    error_burst: int = Field(5, ge=1, description=(
        "Auto-pause entries after this many exchange errors within error_window_s: the feed's, the "
        "protection loop's and every failed try of an order send or cancel."))
    error_window_s: float = Field(60.0, gt=0, description="Window for error_burst.")
    outlier_max_move: Decimal = Field(Decimal("0.5"), gt=0, description=(
        "Reject a candle whose close moved more than this fraction from the previous close (counted)."))
    history_bars: int = Field(500, ge=50, le=100_000, description="Candles kept per pair and handed to the strategies.")
    manual_limit_band: Decimal = Field(Decimal("0.1"), gt=0, le=1, description=(
        "/buy and /sell refuse a limit price further than this fraction from the market price (a likely typo)."))

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

    @field_validator("venue")
    @classmethod
    def _venue(cls, value: str) -> str:
        return check_venue(value)

    @field_validator("feed")
    @classmethod
    def _feed(cls, value: str) -> str:
        return check_feed(value)

    @model_validator(mode="after")
    def _feed_matches_mode(self) -> TradingSettings:
        if self.mode == "live" and "feed" in self.model_fields_set and self.feed != self.venue:
            raise ValueError(f"trading.feed = {self.feed!r} does not match trading.venue = {self.venue!r}: live "
                             f"trading uses its venue's own feed (leave trading.feed unset or {self.venue!r})")
        return self

    @property
    def paper_label(self) -> str:
        """What /status and every alert say when paper trades on a live feed ("" otherwise)."""
        if self.mode != "paper" or self.feed == "replay":
            return ""
        if self.feed.startswith("ccxt:"):
            return f"PAPER · live {self.feed.removeprefix('ccxt:')} prices (ccxt)"
        return f"PAPER · live {FEED_NAMES.get(self.feed, self.feed)} prices"


class PaperSettings(Section):
    starting_balances: dict[str, Decimal] = Field(default_factory=lambda: {"USD": Decimal("10000")}, description=(
        "Paper balances seeded on first start (currency -> amount)."))
    maker_fee: Decimal = Field(Decimal("0.0016"), ge=0, lt=1, description="Paper maker fee rate (limit orders).")
    taker_fee: Decimal = Field(Decimal("0.0026"), ge=0, lt=1, description="Paper taker fee rate (market orders).")
    slippage_bps: Decimal = Field(Decimal("5"), ge=0, le=1000, description=(
        "Paper slippage on market orders, basis points."))
    impact_bps: Decimal = Field(Decimal("50"), ge=0, le=10000, description=(
        "Extra paper slippage in bps per 100% of the candle volume taken (grows with order size)."))
    volume_share: Decimal = Field(Decimal("0.1"), gt=0, le=1, description=(
        "Largest share of one candle's volume a paper order may fill; larger orders fill partially across candles."))
    latency_ms: int = Field(0, ge=0, le=10_000, description="Simulated latency per paper venue call.")
    min_qty: Decimal = Field(Decimal("0.0001"), gt=0, description="Paper minimum order quantity.")
    qty_step: Decimal = Field(Decimal("0.00000001"), gt=0, description="Paper quantity step.")
    price_tick: Decimal = Field(Decimal("0.01"), gt=0, description="Paper price tick.")
    min_notional: Decimal = Field(Decimal("5"), ge=0, description="Paper minimum order value in the quote currency.")


class ReplaySettings(Section):
    csv: Path | None = Field(None, description=(
        "Candles CSV to replay (timestamp,open,high,low,close,volume); default: the bundled Coinbase BTC/USD 1h file."))
    speed: float = Field(50.0, gt=0, le=1_000_000, description="Replay pace in candles per second.")


class RiskSettings(Section):
    risk_per_trade: Decimal = Field(Decimal("0.01"), gt=0, le=Decimal("0.2"), description=(
        "Share of equity risked between entry and stop on one trade (fixed-fractional sizing)."))
    default_stop_pct: Decimal = Field(Decimal("0.03"), gt=0, lt=1, description=(
        "Stop distance used when a strategy suggests none."))
    trailing_stop_pct: Decimal | None = Field(None, gt=0, lt=1, description=(
        "Trailing stop distance below the highest price since entry (unset = off)."))
    kelly_min_trades: int = Field(30, ge=5, description="Closed trades needed before the Kelly cap applies.")
    kelly_fraction: Decimal = Field(Decimal("0.5"), gt=0, le=1, description=(
        "Fraction of the Kelly bet used as a size cap."))
    max_open_positions: int = Field(3, ge=1, le=500, description="Most positions open at once.")
    max_pair_exposure: Decimal = Field(Decimal("0.3"), gt=0, le=1, description=(
        "Largest position value in one pair as a share of equity."))
    max_total_exposure: Decimal = Field(Decimal("0.9"), gt=0, le=1, description=(
        "Largest total position value as a share of equity."))
    cooldown_after_loss_s: int = Field(3600, ge=0, description=(
        "No new entry in a pair for this long after a losing exit (market time)."))
    daily_loss_limit: Decimal = Field(Decimal("0.05"), gt=0, le=1, description=(
        "Auto-pause entries when equity falls this share below the start of the day."))
    max_drawdown: Decimal = Field(Decimal("0.2"), gt=0, le=1, description=(
        "Auto-pause entries when equity falls this share below its peak."))


class ExternalStrategy(Section):
    name: str
    path: Path
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    weight: float = 1.0


class StrategySettings(Section):
    enabled: tuple[str, ...] = Field(("trend", "mean_reversion", "momentum", "breakout", "candles"), description=(
        "Built-in strategies combined by the confluence layer."))
    weights: dict[str, float] = Field(default_factory=dict, description=(
        "Confluence weight per strategy (finite, non-negative, not all zero); default 1 each."))
    params: dict[str, dict[str, float | int | bool | str]] = Field(default_factory=dict, description=(
        "Per-strategy parameters, e.g. {trend = {fast = 12, slow = 26}}."))
    entry_threshold: float = Field(0.2, gt=0, le=1, description="Confluence score needed to enter.")
    exit_threshold: float = Field(0.2, gt=0, le=1, description="Confluence score (negative) needed to exit.")
    higher_timeframe: str | None = Field(None, description=(
        "Optional higher timeframe that must confirm entries (e.g. 4h)."))
    external: tuple[ExternalStrategy, ...] = Field((), description=(
        "External strategy modules; each loads only if its file matches the listed SHA-256."))

    @field_validator("higher_timeframe")
    @classmethod
    def _higher_timeframe(cls, value: str | None) -> str | None:
        if value is not None and value not in TIMEFRAMES:
            raise ValueError(f"{value!r} is not a timeframe: use one of {', '.join(TIMEFRAMES)}")
        return value


class VenueSettings(Section):
    api_key: SecretStr | None = Field(None, description="API key (secret).")
    api_secret: SecretStr | None = Field(None, description="API secret or private key (secret).")
    rest_url: str | None = Field(None, description="REST base URL override (testing).")
    ws_url: str | None = Field(None, description="WebSocket URL override (testing).")
    allow_withdraw_keys: bool = Field(False, description=(
        "Accept API keys that can withdraw funds (refused by default)."))


class CcxtSettings(Section):
    """The exchange named by ``trading.venue = "ccxt:<id>"`` (one ccxt venue per deployment)."""

    api_key: SecretStr | None = Field(None, description="API key (secret).")
    api_secret: SecretStr | None = Field(None, description="API secret or private key (secret).")
    password: SecretStr | None = Field(None, description=(
        "API passphrase, for the exchanges whose keys have one (OKX, KuCoin, ...) (secret)."))
    sandbox: bool = Field(False, description="Use the exchange's test network (ccxt's sandbox URLs), where it has one.")
    rest_url: str | None = Field(None, description="REST base URL override: replaces every REST URL of the exchange.")
    ws_url: str | None = Field(None, description="WebSocket URL override (testing).")
    websocket: bool = Field(True, description=(
        "Stream market data over WebSocket (ccxt.pro) where the exchange has it; false polls REST."))
    poll_interval_s: float = Field(5.0, ge=0.5, le=300, description=(
        "Seconds between REST polls (market data without WebSocket, and the account's fills)."))
    allow_withdraw_keys: bool = Field(False, description=(
        "Accept API keys that can withdraw funds, or whose permission ccxt cannot detect (refused by default)."))


class BacktestSettings(Section):
    """`tradectl backtest` and `tradectl tune`. Fees, slippage and volume share come from [paper]."""

    mode: Literal["auto", "engine", "fast"] = Field("auto", description=(
        "`engine` replays candles through the trading engine itself; `fast` runs the same rules over precomputed "
        "signals (one strategy, sizing fixed or fraction); `auto` picks fast when it gives the same trades, else "
        "engine."))
    sizing: Literal["risk", "fixed", "fraction"] = Field("risk", description=(
        "Entry sizing in backtests: `risk` (the live risk manager: stop-distance sizing, Kelly and exposure caps, "
        "default stop), `fixed` (`qty` units per entry), `fraction` (`fraction` of equity per entry). `fixed` and "
        "`fraction` use only stops a strategy suggests."))
    qty: Decimal = Field(Decimal("1"), gt=0, description=(
        "Units bought per entry with sizing = fixed (1 = one whole coin)."))
    fraction: Decimal = Field(Decimal("0.95"), gt=0, le=1, description=(
        "Share of equity per entry with sizing = fraction (capped by cash after fees)."))
    fill_on: Literal["next_open", "last_close"] = Field("next_open", description=(
        "Fill convention: `next_open` (a signal on a candle's close fills at the next candle's open) or `last_close` "
        "(at the signal candle's close)."))
    resume_after_pause: Literal["next_day", "never"] = Field("next_day", description=(
        "When a breaker (daily loss, drawdown) pauses entries during a backtest: resume at the next day's first "
        "candle, as an operator would, or `never`."))
    output_dir: Path = Field(Path("data/backtests"), description=(
        "Where `tradectl backtest` writes its trades CSV and equity chart."))
    overlay: Path = Field(Path("data/tuned.toml"), description=(
        "Tuned-parameter file written by `tradectl tune` and merged over the config file at start-up (environment "
        "variables still win). Your own config file is never written."))
    metric: Literal["sharpe", "return", "profit_factor", "expectancy", "win_rate", "max_drawdown", "trades"] = Field(
        "sharpe", description="What `tradectl tune` ranks parameter sets by (max_drawdown: smaller is better).")
    min_trades: int = Field(10, ge=1, description=(
        "`tradectl tune` ranks a parameter set with fewer closed in-sample trades last."))
    seed: int = Field(0, ge=0, description=(
        "Seed of `tradectl tune`'s sampler (Optuna TPE, or the order of a grid); the backtest itself has no "
        "randomness."))
