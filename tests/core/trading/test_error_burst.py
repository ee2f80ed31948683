"""The error-burst breaker hears the venue errors of order sends, not only those of the feed and the
protection loop: a venue that times out every order pauses entries, as the setting says."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from core.settings.config import load_settings
from core.trading.assembly import build_engine
from core.trading.errorburst import ErrorBurst
from core.trading.events import EventBus
from core.trading.intents import PlaceOrder
from exchanges.base import Order, OrderRequest, Side
from exchanges.clock import SimClock
from exchanges.errors import TemporaryError
from exchanges.paper import MarketRules, PaperExchange
from persistence.db import Database
from tests.core.engine_rig import PAIR, T0, make_candle
from tests.core.waiting import eventually


class TimingOutVenue(PaperExchange):
    """The paper venue, except that every order it is sent times out."""

    async def place_order(self, request: OrderRequest) -> Order:
        self.sent = getattr(self, "sent", 0) + 1
        raise TemporaryError("read timeout")


async def _idle() -> Any:
    await asyncio.Event().wait()
    yield None  # pragma: no cover


async def test_order_send_timeouts_trip_the_error_burst_breaker(db: Database) -> None:
    settings = load_settings(env={}, dotenv_path=None, overrides={
        "trading": {"pairs": [PAIR], "error_burst": 3, "error_window_s": 60}})
    clock = SimClock(T0)
    venue = TimingOutVenue(db, {PAIR: MarketRules()}, starting_balances={"USD": Decimal(10000)}, clock=clock)
    engine = build_engine(settings, db, venue, _idle(), clock, EventBus(), market_hooks=(venue.on_market_event,))
    await venue.start()
    await engine.start()
    try:
        await engine.on_candle(make_candle(0, "100"))
        await engine.on_candle(make_candle(1, "100"))
        result = await engine.submit(PlaceOrder(requested_by="telegram:1", pair=PAIR, side=Side.BUY,
                                                qty=Decimal("0.1"), force=True))
        assert venue.sent >= 3, result  # every try of the send timed out
        await eventually(lambda: engine.state.state == "paused", what="entries paused by the breaker", timeout=15)
        assert "exchange errors" in engine.state.reason
        # /health counts them: each failed try of the send is a venue error (none was counted before)
        assert (await engine.health()).counters.get("exchange_errors") == venue.sent
    finally:
        await engine.stop()
        await venue.stop()


def test_a_burst_is_taken_once_and_the_window_forgets_old_errors() -> None:
    now = [0.0]
    burst = ErrorBurst(3, 60, monotonic=lambda: now[0])
    for t in (0.0, 1.0):
        now[0] = t
        burst.record(TemporaryError("x"))
    assert burst.take() == 0
    now[0] = 70.0  # the first two fell out of the window
    burst.record(TemporaryError("x"))
    assert burst.recent() == 1 and burst.take() == 0
    for _ in range(2):
        burst.record(TemporaryError("x"))
    assert burst.take() == 3 and burst.take() == 0 and burst.total == 5


async def test_a_burst_met_while_paused_does_not_pause_again_after_resume(db: Database) -> None:
    """The operator paused, the venue failed meanwhile, then recovered and the operator resumed: trading
    goes on. Only a new burst after the resume pauses it again."""
    from core.trading.intents import PauseEntries, Resume
    from tests.core.engine_rig import Rig

    rig = Rig(db, trading={"error_burst": 3, "error_window_s": 60})
    await rig.start()
    try:
        assert (await rig.engine.submit(PauseEntries(requested_by="telegram:1"))).ok
        for _ in range(4):
            rig.engine.errors.record(TemporaryError("timeout"))  # the executor's failed sends
        await rig.engine._check_circuit_breakers()
        assert (await rig.engine.submit(Resume(requested_by="telegram:1"))).ok
        await rig.engine._check_circuit_breakers()
        await asyncio.sleep(0.1)
        assert rig.engine.state.state == "running"
        for _ in range(3):
            rig.engine.errors.record(TemporaryError("timeout"))
        await rig.engine._check_circuit_breakers()
        await eventually(lambda: rig.engine.state.state == "paused", what="a new burst pauses")
    finally:
        await rig.stop()
