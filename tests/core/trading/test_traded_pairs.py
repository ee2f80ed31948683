"""One set of traded pairs for the whole engine: a pair added or removed with /pairs is seen at once by
every part that reads the pairs (the engine, the books, the queries, control, recovery, orders by hand),
through the one object they were all built with, and no part's settings are replaced behind its back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from core.trading.intents import AddPair, ClosePosition, PlaceOrder, RemovePair
from core.trading.traded import TradedPairs
from exchanges.base import Candle, PairSubscriptions
from persistence.db import Database
from tests.core.engine_rig import PAIR, Rig, make_candle

ETH = "ETH/USD"


class SubscribingFeed:
    """A live stream that a test feeds by hand and that takes new pairs, each with three candles of history."""

    def __init__(self) -> None:
        self.q: asyncio.Queue[Any] = asyncio.Queue()
        self.subscribed: list[str] = []

    def __aiter__(self) -> SubscribingFeed:
        return self

    async def __anext__(self) -> Any:
        return await self.q.get()

    async def add(self, pair: str) -> Sequence[Candle]:
        self.subscribed.append(pair)
        return [make_candle(n, "100", pair=pair) for n in range(3)]

    async def remove(self, pair: str) -> None:
        self.subscribed.remove(pair)


async def test_every_reader_sees_a_pair_change_through_the_one_pair_set_and_keeps_its_settings(db: Database) -> None:
    feed = SubscribingFeed()
    assert isinstance(feed, PairSubscriptions)
    rig = Rig(db, feed=feed)  # type: ignore[arg-type]
    engine = await rig.start()
    trading = engine.trading
    await rig.candle("100")  # BTC/USD has a price

    added = await engine.submit(AddPair(requested_by="t", pair=ETH))
    assert added.ok, added.message

    # the settings each part was built with are the very same object, still the pairs the engine started with
    assert engine.trading is trading and engine.books.trading is trading and engine.queries.trading is trading
    assert trading.pairs == (PAIR,)
    # one pair set, handed to every reader at construction, changed in place
    shared = engine.traded
    readers = (engine.books, engine.queries, engine.control, engine.recovery, engine.manual)
    assert all(part.pairs is shared for part in readers) and engine.pair_set.traded is shared
    assert shared.active == engine.pairs == (PAIR, ETH)

    # and what a user notices: each part knows the new pair
    assert ETH in (await engine.status()).data_age_s
    assert f"data:{ETH}" in (await engine.health()).components
    close = await engine.submit(ClosePosition(requested_by="t", pair=ETH))
    assert close.message == f"no open position in {ETH}"  # not "unknown pair"
    quote = await engine.submit(PlaceOrder(requested_by="t", pair=ETH, side="buy", qty=Decimal("0.1"),
                                           preview=True))
    assert quote.ok, quote.message

    removed = await engine.submit(RemovePair(requested_by="t", pair=ETH))
    assert removed.ok, removed.message
    assert shared.active == engine.pairs == (PAIR,) and feed.subscribed == [] and engine.trading is trading
    assert ETH not in (await engine.status()).data_age_s
    close = await engine.submit(ClosePosition(requested_by="t", pair=ETH))
    assert not close.ok and close.message.startswith(f"unknown pair {ETH!r}")
    buy = await engine.submit(PlaceOrder(requested_by="t", pair=ETH, side="buy", qty=Decimal("0.1"), preview=True))
    assert not buy.ok and buy.message.startswith(f"unknown pair {ETH}")
    await rig.stop()


def test_a_closing_pair_stays_traded_but_takes_no_entries_until_it_is_dropped() -> None:
    pairs = TradedPairs((PAIR, ETH))
    pairs.wind_down(ETH, "telegram:1")
    assert ETH in pairs and not pairs.takes_entries(ETH) and pairs.takes_entries(PAIR)
    assert pairs.closing == {ETH: "telegram:1"}
    pairs.reopen(ETH)
    assert pairs.takes_entries(ETH) and pairs.closing == {}
    pairs.wind_down(ETH, "telegram:1")
    pairs.drop(ETH)
    assert pairs.active == (PAIR,) and pairs.closing == {} and not pairs.takes_entries(ETH)
    pairs.resume_closing(("SOL/USD", PAIR), "restart")  # a pair no longer traded is not wound down
    assert pairs.closing == {PAIR: "restart"}
