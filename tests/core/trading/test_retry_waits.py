"""How long the executor and the database watch wait between tries: the delays, their caps and the
points where they give up, pinned through what a caller sees (the waits a fake sleep is asked for)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from core.trading.events import EventBus
from core.trading.executor import Executor, OrderSpec
from core.trading.outage import DatabaseWatch
from core.trading.state import StateStore, TradingStates
from core.trading.values import OrderPurpose
from exchanges.base import Order, OrderRequest, OrderStatus, OrderType, Side
from exchanges.clock import SimClock
from exchanges.errors import ExchangeError, OrderNotFound, RateLimited, TemporaryError
from persistence.db import Database
from persistence.migrate import upgrade
from tests.core.engine_rig import PAIR, T0

BUY = OrderSpec(pair=PAIR, side=Side.BUY, qty=Decimal(1), purpose=OrderPurpose.ENTRY, position_id=None)


class ScriptedVenue:
    """A venue that answers each place or cancel with the next step of its script: an exception to raise,
    or the status of the order to return."""

    name = "scripted"

    def __init__(self, *, places: Sequence[BaseException | OrderStatus] = (),
                 cancels: Sequence[BaseException | OrderStatus] = ()) -> None:
        self.places: Iterator[BaseException | OrderStatus] = iter(places)
        self.cancels: Iterator[BaseException | OrderStatus] = iter(cancels)
        self.tries = Counter[str]()

    def _order(self, coid: str, status: OrderStatus) -> Order:
        return Order(client_order_id=coid, venue_order_id="v-" + coid, pair=PAIR, side=Side.BUY, type=OrderType.MARKET,
                     qty=Decimal(1), status=status)

    def _next(self, script: Iterator[BaseException | OrderStatus], coid: str) -> Order:
        step = next(script)
        if isinstance(step, BaseException):
            raise step
        return self._order(coid, step)

    async def place_order(self, request: OrderRequest) -> Order:
        self.tries["place"] += 1
        return self._next(self.places, request.client_order_id)

    async def cancel_order(self, pair: str, client_order_id: str) -> Order:
        self.tries["cancel"] += 1
        return self._next(self.cancels, client_order_id)

    async def fetch_order(self, pair: str, client_order_id: str) -> Order | None:
        raise OrderNotFound(client_order_id)


@pytest.fixture
async def sqlite(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path}/waits.db")
    await db.start()
    await upgrade(db)
    yield db  # type: ignore[misc]
    await db.stop()


def _executor(db: Database, venue: ScriptedVenue, waits: list[float], **kw: object) -> Executor:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return Executor(db, venue, EventBus(), SimClock(T0), sleep=sleep, **kw)  # type: ignore[arg-type]


def busy() -> TemporaryError:
    return TemporaryError("venue busy")


async def test_a_send_waits_twice_as_long_after_each_temporary_error_up_to_five_seconds(sqlite: Database) -> None:
    venue = ScriptedVenue(places=[busy() for _ in range(7)] + [OrderStatus.SUBMITTED])
    waits: list[float] = []
    row = await _executor(sqlite, venue, waits, backoff_s=0.2, max_attempts=8).place(BUY)
    assert waits == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert row.status == OrderStatus.SUBMITTED and row.attempts == 8


async def test_a_send_gives_up_after_max_attempts_and_stays_unsent(sqlite: Database) -> None:
    venue = ScriptedVenue(places=[busy() for _ in range(5)])
    waits: list[float] = []
    row = await _executor(sqlite, venue, waits).place(BUY)  # the defaults: 5 attempts from 0.2 s
    # the wait after the last attempt is kept as it was: the order is recorded once it is over
    assert venue.tries["place"] == 5 and waits == [0.2, 0.4, 0.8, 1.6, 3.2]
    assert row.status == OrderStatus.NEW and row.attempts == 5 and row.last_error == "venue busy"


async def test_a_send_waits_as_long_as_the_venue_asked_without_losing_its_place_in_the_backoff(sqlite: Database
                                                                                               ) -> None:
    venue = ScriptedVenue(places=[busy(), RateLimited("slow down", retry_after=7.5), busy(), OrderStatus.SUBMITTED])
    waits: list[float] = []
    await _executor(sqlite, venue, waits, backoff_s=0.2).place(BUY)
    assert waits == [0.2, 7.5, 0.8]


async def test_an_invalid_or_refused_send_is_not_retried(sqlite: Database) -> None:
    from exchanges.errors import AuthError, InvalidOrder

    for error in (InvalidOrder("below minimum"), AuthError("key lacks trading")):
        waits: list[float] = []
        venue = ScriptedVenue(places=[error])
        await _executor(sqlite, venue, waits).place(BUY)
        assert venue.tries["place"] == 1 and waits == []


async def test_every_venue_error_of_a_send_reaches_the_error_listener(sqlite: Database) -> None:
    """The engine's error-burst breaker counts these; the listener used to be called as itself, forever."""
    heard: list[ExchangeError] = []
    venue = ScriptedVenue(places=[busy(), busy(), OrderStatus.SUBMITTED])
    await _executor(sqlite, venue, [], on_exchange_error=heard.append).place(BUY)
    assert [str(e) for e in heard] == ["venue busy", "venue busy"]


async def test_a_cancel_grows_its_wait_on_temporary_errors_only_up_to_two_seconds(sqlite: Database) -> None:
    """A venue that has not confirmed the cancel yet is asked again after the current wait, which only a
    temporary error makes longer."""
    venue = ScriptedVenue(places=[OrderStatus.SUBMITTED],
                          cancels=[busy(), busy(), busy(), OrderStatus.SUBMITTED, busy(), OrderStatus.SUBMITTED,
                                   OrderStatus.CANCELLED])
    waits: list[float] = []
    executor = _executor(sqlite, venue, waits, backoff_s=0.2, max_attempts=8)
    row = await executor.place(BUY)
    assert await executor.cancel(row)
    assert waits == [0.2, 0.4, 0.8, 1.6, 1.6, 2.0]
    assert row.status == OrderStatus.CANCELLED


async def test_a_cancel_the_venue_never_confirms_gives_up_after_max_attempts(sqlite: Database) -> None:
    venue = ScriptedVenue(places=[OrderStatus.SUBMITTED], cancels=[busy() for _ in range(5)])
    waits: list[float] = []
    executor = _executor(sqlite, venue, waits, backoff_s=0.5)
    row = await executor.place(BUY)
    assert not await executor.cancel(row)
    assert venue.tries["cancel"] == 5 and waits == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert row.status == OrderStatus.SUBMITTED


async def test_a_candle_retried_while_the_database_is_away_waits_a_quarter_second_doubling_to_five(
        sqlite: Database) -> None:
    events = EventBus()
    watch = DatabaseWatch(sqlite, TradingStates(StateStore(sqlite, "default"), events), events, Counter())
    waits = []
    for _ in range(8):
        watch.failed(OSError("connection refused"), "feed")
        waits.append(watch.backoff_s())
    assert waits == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    await watch.recovered()  # the outage is over: the next one starts from the first wait again
    watch.failed(OSError("connection refused"), "feed")
    assert watch.backoff_s() == 0.25
