"""Assembles the engine with its collaborators from the settings: one way for the service, replay and backtests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from core.settings.config import Settings
from core.settings.overlay import PAIRS_FILE
from core.settings.settings_models import TIMEFRAMES
from core.trading.engine import Engine, MarketHook, Prescan
from core.trading.errorburst import ErrorBurst
from core.trading.events import EventBus
from core.trading.executor import Executor
from core.trading.market_data import MarketData
from core.trading.risk import RiskManager
from core.trading.state import StateStore
from exchanges.base import Exchange, MarketEvent
from exchanges.clock import SimClock, SystemClock
from persistence.db import Database


def build_engine(settings: Settings, db: Database, exchange: Exchange, feed: AsyncIterator[MarketEvent],
                 clock: SimClock | SystemClock, events: EventBus, *, market_hooks: tuple[MarketHook, ...] = (),
                 instance_id: str = "", leader: Callable[[], str | None] = lambda: None,
                 on_feed_end: Callable[[], None] | None = None,
                 on_failure: Callable[[BaseException], None] | None = None,
                 risk: RiskManager | None = None, prescan: Prescan | None = None,
                 inline_scan: bool = False) -> Engine:
    """The engine with its collaborators, built the same way for the service, replay and backtests.
    ``risk`` replaces the configured risk manager (a backtest's plain sizing); ``prescan`` answers
    quiet candles without the strategies (a backtest's vectorized signals, see the engine); ``inline_scan``
    runs the strategies in the loop's thread (backtests)."""
    from strategies import load_strategies

    s = settings
    htf = TIMEFRAMES[s.strategies.higher_timeframe] if s.strategies.higher_timeframe else None
    md = MarketData(s.trading.timeframe_s, (htf,) if htf else (), capacity=max(s.trading.history_bars, 250),
                    outlier_max_move=s.trading.outlier_max_move if s.trading.outlier_max_move > 0 else None)
    strategy_set = load_strategies(s.strategies)
    errors = ErrorBurst(s.trading.error_burst, s.trading.error_window_s)  # the engine's and the executor's
    executor = Executor(db, exchange, events, clock, on_exchange_error=errors.record)
    return Engine(db=db, exchange=exchange, feed=feed, market_data=md, evaluate=strategy_set.evaluate,
                  risk=risk or RiskManager(s.risk), executor=executor, state=StateStore(db, s.service.group),
                  clock=clock, events=events, trading=s.trading, timezone=s.service.timezone, mode=s.trading.mode,
                  market_hooks=market_hooks, higher_timeframe_s=htf, instance_id=instance_id, leader=leader,
                  on_feed_end=on_feed_end, on_failure=on_failure,
                  stale_command_s=s.chat.stale_command_s, prescan=prescan, inline_scan=inline_scan, errors=errors,
                  # the service's engine has an instance id; a backtest neither reads nor writes the chat's pairs
                  pairs_overlay=s.service.data_dir / PAIRS_FILE if instance_id else None)
