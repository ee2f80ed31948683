"""Pairs changed while the engine runs: a real engine, the real paper venue and database, candles
through the engine's own feed loop (the replay feed, or a queue standing in for a live stream)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.settings.config import load_settings
from core.settings.overlay import read_pairs_overlay
from core.trading.events import PairsChanged
from core.trading.intents import AddPair, ClosePosition, EntriesStop, ListPairs, RemovePair
from core.trading.values import PositionStatus
from exchanges.base import Candle, PairSubscriptions
from exchanges.clock import SimClock
from exchanges.replay import CandleSeries, LoadReport, ReplayError, ReplayFeed
from persistence.db import Database
from strategies.base import Candles, Direction, Signal
from tests.core.engine_rig import PAIR, T0, Rig, make_candle
from tests.core.waiting import eventually

ETH = "ETH/USD"


class Recorder:
    """A strategy that records each scan (pair, window length) and buys a pair on a chosen scan."""

    def __init__(self, buy: dict[str, int] | None = None) -> None:
        self.buy = dict(buy or {})
        self.scans: list[tuple[str, int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, pair: str, window: Candles, higher: Candles | None) -> Signal:
        self.scans.append((pair, len(window)))
        self.entered.set()
        self.gate.wait(30)
        if self.buy.get(pair) == sum(1 for p, _ in self.scans if p == pair):
            return Signal(pair, Direction.BUY, 1.0, "test buy", "test", stop=Decimal(90))
        return Signal.hold(pair, "test")

    def first_scan(self, pair: str) -> int | None:
        return next((n for p, n in self.scans if p == pair), None)


class QueueFeed:
    """Events handed to the engine as a test puts them in (a live stream without subscriptions)."""

    def __init__(self) -> None:
        self.q: asyncio.Queue[Any] = asyncio.Queue()

    def __aiter__(self) -> QueueFeed:
        return self

    async def __anext__(self) -> Any:
        return await self.q.get()


def series(pair: str, n: int, close: str = "100") -> CandleSeries:
    candles = tuple(make_candle(i, close, pair=pair) for i in range(n))
    return CandleSeries(pair, 3600, candles, LoadReport("test", n, n, {}, 0, 0))


def source(available: dict[str, CandleSeries]) -> Any:
    def load(pair: str) -> CandleSeries:
        if pair not in available:
            raise ReplayError(f"no replay data exists for {pair}")
        return available[pair]
    return load


async def open_positions(rig: Rig) -> dict[str, str]:
    return {v.pair: v.position for v in (await rig.engine.submit(ListPairs(requested_by="t"))).pairs if v.position}


async def test_an_added_pair_is_back_filled_before_its_first_scan_and_traded(db: Database, tmp_path: Path) -> None:
    strategy = Recorder(buy={ETH: 1})
    clock = SimClock(T0)
    feed = ReplayFeed({PAIR: series(PAIR, 12).candles}, clock=clock, source=source({ETH: series(ETH, 12)}))
    ended = asyncio.Event()
    rig = Rig(db, strategy, clock=clock, feed=feed, on_feed_end=ended.set)  # type: ignore[arg-type]
    strategy.gate.clear()
    engine = await rig.start()
    engine.pair_set.use_overlay(tmp_path / "pairs.toml")
    await asyncio.to_thread(strategy.entered.wait, 10)  # the feed is busy with BTC's second candle
    result = await engine.submit(AddPair(requested_by="telegram:1", pair=ETH))
    strategy.gate.set()
    assert result.ok, result.message
    assert "2 candles of history" in result.message
    await asyncio.wait_for(ended.wait(), 20)
    await rig.stop()

    assert ETH in engine.pairs
    assert strategy.first_scan(ETH) == 3  # two candles back-filled, then its first streamed one
    assert await open_positions(rig) == {ETH: "open"}  # traded: the buy went through on the paper venue
    added = [e for e in rig.drain() if isinstance(e, PairsChanged)]
    assert [(e.pair, e.change, e.by) for e in added] == [(ETH, "added", "telegram:1")]
    overlay = read_pairs_overlay(tmp_path / "pairs.toml")
    assert overlay is not None and overlay.pairs == (PAIR, ETH)


async def test_a_pair_without_replay_data_is_refused_and_nothing_changes(db: Database, tmp_path: Path) -> None:
    rig = Rig(db, Recorder(), feed=ReplayFeed({PAIR: ()}, source=source({})))
    engine = await rig.start()
    engine.pair_set.use_overlay(tmp_path / "pairs.toml")
    result = await engine.submit(AddPair(requested_by="telegram:1", pair="DOGE/USD"))
    assert not result.ok and "no replay data exists for DOGE/USD" in result.message
    assert "nothing changed" in result.message
    assert engine.pairs == (PAIR,) and "DOGE/USD" not in await rig.paper.markets()
    assert not (tmp_path / "pairs.toml").exists()
    assert not [e for e in rig.drain() if isinstance(e, PairsChanged)]
    await rig.stop()


@pytest.mark.parametrize(("intent", "says"), [
    (AddPair(requested_by="t", pair="eth-usd"), "is not a pair"),
    (AddPair(requested_by="t", pair=PAIR), "already traded"),
    (RemovePair(requested_by="t", pair="SOL/USD"), "SOL/USD is not traded"),
])
async def test_bad_pair_changes_are_refused(db: Database, intent: Any, says: str) -> None:
    rig = Rig(db, Recorder(), pairs=(PAIR, ETH), feed=QueueFeed())  # type: ignore[arg-type]
    engine = await rig.start()
    result = await engine.submit(intent)
    assert not result.ok and says in result.message
    assert engine.pairs == (PAIR, ETH)
    await rig.stop()


async def _with_eth_position(db: Database, tmp_path: Path) -> tuple[Rig, QueueFeed]:
    feed = QueueFeed()
    rig = Rig(db, Recorder(buy={ETH: 1}), pairs=(PAIR, ETH), feed=feed)  # type: ignore[arg-type]
    engine = await rig.start()
    engine.pair_set.use_overlay(tmp_path / "pairs.toml")
    for n in (0, 1):
        rig.clock.advance_to(T0 + timedelta(hours=n + 1))
        await feed.q.put(make_candle(n, "100", pair=ETH))

    async def filled() -> bool:
        return await open_positions(rig) == {ETH: "open"}

    await eventually(filled, what="ETH position open")
    return rig, feed


async def test_removing_a_pair_with_a_position_needs_a_choice(db: Database, tmp_path: Path) -> None:
    rig, _ = await _with_eth_position(db, tmp_path)
    result = await rig.engine.submit(RemovePair(requested_by="telegram:1", pair=ETH))
    assert not result.ok
    assert f"/pairs remove {ETH} close" in result.message and f"/pairs remove {ETH} keep" in result.message
    assert rig.engine.pairs == (PAIR, ETH) and await open_positions(rig) == {ETH: "open"}
    assert not (tmp_path / "pairs.toml").exists()
    await rig.stop()


async def test_remove_keep_manages_the_position_until_it_closes_then_drops_the_pair(db: Database,
                                                                                   tmp_path: Path) -> None:
    rig, feed = await _with_eth_position(db, tmp_path)
    engine = rig.engine
    result = await engine.submit(RemovePair(requested_by="telegram:1", pair=ETH, then="keep"))
    assert result.ok, result.message
    assert ETH in engine.pairs  # still managed
    views = {v.pair: v for v in (await engine.submit(ListPairs(requested_by="t"))).pairs}
    assert views[ETH].entries_stopped_by is EntriesStop.CLOSING and views[PAIR].entries_stopped_by is None
    assert views[ETH].position is PositionStatus.OPEN and views[PAIR].position is None
    overlay = read_pairs_overlay(tmp_path / "pairs.toml")
    assert overlay is not None and overlay.closing == (ETH,)

    rig.clock.advance_to(T0 + timedelta(hours=3))
    await feed.q.put(make_candle(2, "85", low="80", pair=ETH))  # through the stop at 90
    await eventually(lambda: ETH not in engine.pairs, what="ETH dropped once flat")
    assert await open_positions(rig) == {}
    changes = [(e.pair, e.change) for e in rig.drain() if isinstance(e, PairsChanged)]
    assert changes == [(ETH, "closing"), (ETH, "removed")]
    overlay = read_pairs_overlay(tmp_path / "pairs.toml")
    assert overlay is not None and overlay.pairs == (PAIR,) and overlay.closing == ()
    refused = await engine.submit(ClosePosition(requested_by="t", pair=ETH))
    assert not refused.ok and "unknown pair" in refused.message
    await rig.stop()


async def test_remove_close_sells_at_market_and_ignores_the_pair_from_then(db: Database, tmp_path: Path) -> None:
    rig, feed = await _with_eth_position(db, tmp_path)
    engine = rig.engine
    result = await engine.submit(RemovePair(requested_by="telegram:1", pair=ETH, then="close"))
    assert result.ok and "sold at market" in result.message, result.message
    assert engine.pairs == (PAIR,) and await open_positions(rig) == {}
    scans = len(rig.strategy.scans)  # type: ignore[attr-defined]
    rig.clock.advance_to(T0 + timedelta(hours=3))
    await feed.q.put(make_candle(2, "100", pair=ETH))
    await eventually(lambda: engine.counters["events_of_untraded_pairs"] == 1, what="ETH candle ignored")
    assert len(rig.strategy.scans) == scans  # type: ignore[attr-defined]
    await rig.stop()


async def test_the_overlay_survives_a_restart(db: Database, tmp_path: Path) -> None:
    """A new settings load sees the pairs; a new engine keeps a pair removed with keep closing."""
    rig, _ = await _with_eth_position(db, tmp_path)
    await rig.engine.submit(RemovePair(requested_by="telegram:1", pair=ETH, then="keep"))
    await rig.stop()
    (tmp_path / "pairs.toml").write_text((tmp_path / "pairs.toml").read_text().replace(
        f'pairs = ["{PAIR}", "{ETH}"]', f'pairs = ["{PAIR}", "{ETH}", "SOL/USD"]'))

    settings = load_settings(env={"TRADECTL_SERVICE__DATA_DIR": str(tmp_path)}, dotenv_path=None)
    assert settings.trading.pairs == (PAIR, ETH, "SOL/USD")
    assert "pairs.toml" in settings._origins[("trading", "pairs")]

    again = Rig(db, Recorder(buy={ETH: 1}), pairs=(PAIR, ETH), feed=QueueFeed())  # type: ignore[arg-type]
    await again.start()
    again.engine.pair_set.use_overlay(tmp_path / "pairs.toml")  # what build_engine passes the service's engine
    assert again.engine.pair_set.closing == {ETH: "restart"}
    views = {v.pair: v for v in (await again.engine.submit(ListPairs(requested_by="t"))).pairs}
    assert views[ETH].entries_stopped_by is EntriesStop.CLOSING and views[ETH].position is PositionStatus.OPEN
    await again.stop()


class SubscribingFeed(QueueFeed):
    """A live-like stream that can subscribe (no history of its own: the venue back-fills)."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribed: list[str] = []

    async def add(self, pair: str) -> Sequence[Candle]:
        self.subscribed.append(pair)
        return ()

    async def remove(self, pair: str) -> None:
        self.subscribed.remove(pair)


async def test_a_venue_that_does_not_list_the_pair_refuses_it_and_a_listed_one_back_fills_from_the_venue(
        db: Database) -> None:
    from exchanges.template import TemplateExchange

    venue = TemplateExchange()
    for n in range(5):
        c = make_candle(n, "100", pair=ETH)
        venue.market.add_candle(ETH, 3600, c.ts, c.open, c.high, c.low, c.close, c.volume)
    feed = SubscribingFeed()
    assert isinstance(feed, PairSubscriptions)
    rig = Rig(db, Recorder(), feed=feed)  # type: ignore[arg-type]
    rig.build()
    rig.clock.advance_to(T0 + timedelta(hours=6))
    engine = rig.engine
    engine.venue = engine.pair_set.venue = venue  # the pair set asks this venue's listing
    refused = await engine.pair_set.apply(AddPair(requested_by="t", pair="SOL/USD"))
    assert not refused.ok and "template does not list SOL/USD" in refused.message
    assert feed.subscribed == [] and engine.pairs == (PAIR,)

    added = await engine.pair_set.apply(AddPair(requested_by="t", pair=ETH))
    assert added.ok and "5 candles of history from template" in added.message, added.message
    assert feed.subscribed == [ETH] and engine.pairs == (PAIR, ETH) and engine.md.bars(ETH) == 5


async def test_a_feed_that_cannot_subscribe_saves_the_pair_for_the_next_start(db: Database, tmp_path: Path) -> None:
    from exchanges.template import TemplateExchange

    rig = Rig(db, Recorder(), feed=QueueFeed())  # type: ignore[arg-type]
    rig.build()
    engine = rig.engine
    engine.venue = engine.pair_set.venue = TemplateExchange()  # a venue with a listing; the stream cannot add
    engine.pair_set.use_overlay(tmp_path / "pairs.toml")
    added = await engine.submit(AddPair(requested_by="t", pair=ETH))
    assert added.ok and "traded after a restart" in added.message, added.message
    assert engine.pairs == (PAIR,)  # not now ...
    overlay = read_pairs_overlay(tmp_path / "pairs.toml")
    assert overlay is not None and overlay.pairs == (PAIR, ETH)  # ... but at the next start
    views = {v.pair: v for v in (await engine.submit(ListPairs(requested_by="t"))).pairs}
    assert views[ETH].entries_stopped_by is EntriesStop.AFTER_RESTART and views[ETH].venue_symbol == "ETH-USD"
    assert views[ETH].position is None
    again = await engine.submit(AddPair(requested_by="t", pair=ETH))
    assert not again.ok and "already saved" in again.message
    removed = await engine.submit(RemovePair(requested_by="t", pair=ETH))
    assert removed.ok
    overlay = read_pairs_overlay(tmp_path / "pairs.toml")
    assert overlay is not None and overlay.pairs == (PAIR,)


async def test_the_replay_takes_a_new_pair_from_the_configured_csv_or_refuses_one_the_bundled_data_lacks(
        db: Database, tmp_path: Path) -> None:
    from exchanges.replay import ReplaySource

    csv = tmp_path / "eth.csv"
    csv.write_text("timestamp,open,high,low,close,volume\n" + "".join(
        f"{(T0 + timedelta(hours=i)).isoformat()},100,100,100,100,5\n" for i in range(6)))
    bundled = ReplayFeed({PAIR: ()}, source=ReplaySource(None, 3600))
    with pytest.raises(ReplayError, match="no replay data exists for DOGE/USD: the bundled candles are BTC/USD"):
        await bundled.add("DOGE/USD")
    clock = SimClock(T0 + timedelta(hours=3))
    from_csv = ReplayFeed({PAIR: ()}, clock=clock, source=ReplaySource(csv, 3600))
    history = await from_csv.add(ETH)
    assert [c.ts for c in history] == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]  # closed by 03:00
    assert [c.ts async for c in from_csv] == [T0 + timedelta(hours=i) for i in (3, 4, 5)]
    with pytest.raises(ReplayError, match="3600s"):
        await ReplayFeed({PAIR: ()}, source=ReplaySource(csv, 60)).add(ETH)


def test_a_malformed_pairs_overlay_stops_the_start_naming_the_file(tmp_path: Path) -> None:
    from core.settings.config import ConfigError

    (tmp_path / "pairs.toml").write_text('[trading]\npairs = ["BTC/USD"]\nmode = "live"\n')
    with pytest.raises(ConfigError, match=r"pairs\.toml may only hold trading\.pairs"):
        load_settings(env={"TRADECTL_SERVICE__DATA_DIR": str(tmp_path)}, dotenv_path=None)
    (tmp_path / "pairs.toml").write_text('[trading]\npairs = ["btc-usd"]\n')
    with pytest.raises(ConfigError, match=r"pairs\.toml"):
        load_settings(env={"TRADECTL_SERVICE__DATA_DIR": str(tmp_path)}, dotenv_path=None)


async def test_only_the_services_engine_uses_the_pairs_overlay_never_a_backtest(db: Database, tmp_path: Path) -> None:
    """A backtest of ETH/USD must not inherit "no new entries" from the chat's removal of ETH/USD."""
    from core.trading.assembly import build_engine
    from core.trading.events import EventBus
    from exchanges.paper import MarketRules, PaperExchange

    (tmp_path / "pairs.toml").write_text(f'[trading]\npairs = ["{ETH}"]\n\n[pairs]\nclosing = ["{ETH}"]\n')
    settings = load_settings(env={"TRADECTL_SERVICE__DATA_DIR": str(tmp_path)}, dotenv_path=None)
    assert settings.trading.pairs == (ETH,)
    venue = PaperExchange(db, {ETH: MarketRules()})
    service = build_engine(settings, db, venue, QueueFeed(), SimClock(T0), EventBus(), instance_id="host-1")  # type: ignore[arg-type]
    backtest = build_engine(settings, db, venue, QueueFeed(), SimClock(T0), EventBus())  # type: ignore[arg-type]
    assert service.pair_set.closing == {ETH: "restart"} and service.pair_set.overlay == tmp_path / "pairs.toml"
    assert backtest.pair_set.closing == {} and backtest.pair_set.overlay is None


async def test_a_new_leadership_term_trades_the_pairs_the_chat_saved(db: Database, tmp_path: Path) -> None:
    """The process loaded its settings before /pairs changed them; a step-down and re-election (a new
    term, same process) starts the engine with the saved pairs, unless the environment sets them."""
    from core.app.trading_core import TradingCore
    from core.trading.events import EventBus
    from core.trading.pairs import with_saved_pairs

    csv = tmp_path / "candles.csv"
    csv.write_text("timestamp,open,high,low,close,volume\n" + "".join(
        f"{(T0 + timedelta(hours=i)).isoformat()},100,100,100,100,5\n" for i in range(30)))
    env = {"TRADECTL_SERVICE__DATA_DIR": str(tmp_path), "TRADECTL_REPLAY__CSV": str(csv)}
    settings = load_settings(env=env, dotenv_path=None)
    (tmp_path / "pairs.toml").write_text(f'[trading]\npairs = ["{PAIR}", "{ETH}"]\n')  # /pairs add, later on
    core = TradingCore(settings, db, EventBus(), instance_id="host-1", leader=lambda: None, on_failure=lambda e: None)
    await core.start()
    try:
        assert core.engine is not None and core.engine.pairs == (PAIR, ETH)
    finally:
        await core.stop()
    pinned = load_settings(env={**env, "TRADECTL_TRADING__PAIRS": '["BTC/USD"]'}, dotenv_path=None)
    assert with_saved_pairs(pinned).trading.pairs == (PAIR,)
