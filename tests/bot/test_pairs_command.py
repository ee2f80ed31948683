"""/pairs through the real dispatcher, on a real engine with the paper venue and the replay feed:
listing for everyone, add and remove for admins with a confirmation, refusals that change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.audit import AuditLog
from bot.harness import ChatHarness, Sent
from bot.reply import Table
from core.app.standby import LeaderBoundService
from core.trading.events import PairsChanged
from core.trading.intents import PauseEntries
from exchanges.clock import SimClock
from exchanges.replay import CandleSeries, LoadReport, ReplayError, ReplayFeed
from persistence.db import Database
from tests.bot.conftest import VIEWER, MakeHarness
from tests.core.engine_rig import PAIR, T0, Rig, ScriptedStrategy, make_candle
from tests.core.waiting import eventually

ETH = "ETH/USD"


def _series(pair: str, n: int) -> CandleSeries:
    return CandleSeries(pair, 3600, tuple(make_candle(i, "100", pair=pair) for i in range(n)),
                        LoadReport("test", n, n, {}, 0, 0))


def _source(pair: str) -> CandleSeries:
    if pair != ETH:
        raise ReplayError(f"no replay data exists for {pair}")
    return _series(ETH, 48)


@pytest.fixture
async def rig(db: Database, tmp_path: Path) -> AsyncIterator[Rig]:
    clock = SimClock(T0)
    feed = ReplayFeed({PAIR: _series(PAIR, 24).candles}, clock=clock, source=_source)
    rig = Rig(db, ScriptedStrategy(), clock=clock, feed=feed)  # type: ignore[arg-type]
    engine = await rig.start()
    engine.pair_set.use_overlay(tmp_path / "pairs.toml")
    await eventually(lambda: feed.position == feed.total, what="replay done")  # BTC replayed to T0 + 24 h
    yield rig
    await rig.stop()


@pytest.fixture
async def chat(rig: Rig, make_harness: MakeHarness) -> ChatHarness:
    engine = rig.engine
    return await make_harness(services=LeaderBoundService((PAIR,), lambda: engine, lambda: None))


async def test_pairs_lists_each_pair_with_its_state_for_a_viewer(rig: Rig, chat: ChatHarness) -> None:
    rig.clock.advance(timedelta(minutes=90))
    sent = await chat.send("/pairs", as_=VIEWER)
    assert not sent.has_style("error"), sent.text
    assert "Traded pairs" in sent.text and PAIR in sent.text and "BTCUSD" in sent.text  # the venue's symbol
    assert "1h 30m ago" in sent.text  # its last candle closed 90 minutes before the engine's "now"
    assert "none" in sent.text and "yes" in sent.text  # no position, entries allowed


async def test_add_asks_then_trades_the_pair_and_audits_who_did_it(rig: Rig, chat: ChatHarness,
                                                                   db: Database, tmp_path: Path) -> None:
    asked = await chat.send("/pairs add eth/usd")
    assert "Confirm /pairs add ETH/USD" in asked.text and rig.engine.pairs == (PAIR,)
    done = await chat.press(asked.confirm_payload)
    assert done.has_style("success"), done.text
    assert "ETH/USD added" in done.text and "24 candles of history" in done.text
    assert rig.engine.pairs == (PAIR, ETH) and rig.engine.md.bars(ETH) == 24
    assert 'pairs = ["BTC/USD", "ETH/USD"]' in (tmp_path / "pairs.toml").read_text()
    listed = await chat.send("/pairs", as_=VIEWER)
    assert ETH in listed.text and "ETHUSD" in listed.text
    rows = await AuditLog(db, chat.dispatcher.clock).recent(5)
    mine = [r for r in rows if r.command == "pairs" and r.args.startswith("add")]
    assert mine and mine[0].user_id == "1" and "ETH/USD added" in mine[0].result
    assert any(isinstance(e, PairsChanged) and e.by == "telegram:1" for e in rig.drain())
    # /close knows the new pair at once (the chat's list of pairs is the engine's)
    refused = await chat.send(f"/close {ETH}")
    assert "Unknown pair" not in refused.text


@pytest.mark.parametrize(("line", "says"), [
    ("/pairs add DOGE/USD", "no replay data exists for DOGE/USD"),
    ("/pairs add BTC/USD", "already traded"),
    ("/pairs add ETHUSD", "a pair is written BASE/QUOTE"),
    ("/pairs remove SOL/USD", "SOL/USD is not traded"),
    ("/pairs remove BTC/USD", "only traded pair"),
    ("/pairs ETH/USD", "Say what to do with ETH/USD"),
])
async def test_bad_input_is_a_clear_error_that_changes_nothing(rig: Rig, chat: ChatHarness, tmp_path: Path,
                                                               line: str, says: str) -> None:
    sent = await chat.send(line)
    if sent.reply is not None and "Confirm" in sent.text:  # checked only once confirmed (loading the data)
        sent = await chat.press(sent.confirm_payload)
    assert sent.has_style("error") and says in sent.text, sent.text
    assert rig.engine.pairs == (PAIR,)
    assert not (tmp_path / "pairs.toml").exists()
    assert not [e for e in rig.drain() if isinstance(e, PairsChanged)]


async def test_a_viewer_cannot_add_or_remove(rig: Rig, chat: ChatHarness, db: Database) -> None:
    for line in ("/pairs add ETH/USD", "/pairs remove BTC/USD"):
        sent = await chat.send(line, as_=VIEWER)
        assert sent.has_style("error") and "needs the admin role" in sent.text, sent.text
        assert sent.reply is not None and not sent.buttons  # nothing to confirm
    assert rig.engine.pairs == (PAIR,)
    rows = await AuditLog(db, chat.dispatcher.clock).recent(2)
    assert all(r.command == "pairs" and r.user_id == VIEWER.user_id and "admin role" in r.result for r in rows)


async def _add_eth_with_a_position(rig: Rig, chat: ChatHarness) -> None:
    """/pairs add ETH/USD, confirmed, and a strategy buy in it that the paper venue fills."""
    asked = await chat.send(f"/pairs add {ETH}")
    await chat.press(asked.confirm_payload)
    await rig.paper.on_candle(make_candle(30, "100", pair=ETH))  # a price for the paper venue to fill at
    rig.strategy.script[25] = "buy"  # type: ignore[attr-defined]
    rig.clock.advance_to(T0 + timedelta(hours=25))
    await rig.engine.on_candle(make_candle(24, "100", pair=ETH))
    await eventually(lambda: _has_position(rig), what="ETH position")


async def test_remove_with_a_position_explains_the_choice_then_close_flattens_it(rig: Rig, chat: ChatHarness,
                                                                                tmp_path: Path) -> None:
    await _add_eth_with_a_position(rig, chat)

    refused = await chat.send(f"/pairs remove {ETH}")
    assert refused.has_style("error") and f"/pairs remove {ETH} close" in refused.text
    assert f"/pairs remove {ETH} keep" in refused.text and ETH in rig.engine.pairs

    asked = await chat.send(f"/pairs remove {ETH} close")
    assert "Sells the open ETH/USD position at market" in asked.text
    done = await chat.press(asked.confirm_payload)
    assert done.has_style("success") and "sold at market" in done.text, done.text
    assert rig.engine.pairs == (PAIR,) and not await _has_position(rig)
    assert 'pairs = ["BTC/USD"]' in (tmp_path / "pairs.toml").read_text()


async def test_pairs_shows_an_open_position_and_why_entries_are_stopped(rig: Rig, chat: ChatHarness) -> None:
    await _add_eth_with_a_position(rig, chat)
    assert _pair_rows(await chat.send("/pairs", as_=VIEWER)) == {PAIR: ("none", "yes"), ETH: ("open", "yes")}

    asked = await chat.send(f"/pairs remove {ETH} keep")
    assert (await chat.press(asked.confirm_payload)).has_style("success")
    assert (await rig.engine.submit(PauseEntries(requested_by="telegram:1"))).ok
    assert _pair_rows(await chat.send("/pairs", as_=VIEWER)) == {PAIR: ("none", "no, paused"),
                                                                 ETH: ("open", "no, closing")}


def _pair_rows(sent: Sent) -> dict[str, tuple[str, str]]:
    """Each pair's position and entries cells, as the table in the reply has them."""
    assert sent.reply is not None, sent.text
    (table,) = [b for b in sent.reply.blocks if isinstance(b, Table)]
    assert table.headers[:3] == ("pair", "position", "entries")
    return {row[0]: (row[1], row[2]) for row in table.rows}


async def _has_position(rig: Rig) -> bool:
    await asyncio.sleep(0)
    return await rig.engine.exits.open_position(ETH) is not None


async def test_a_pair_a_trader_is_limited_to_cannot_be_removed_from_chat(rig: Rig, make_harness: MakeHarness) -> None:
    """The next start would refuse chat.trader_pairs naming a pair no longer traded: refused up front."""
    engine = rig.engine
    chat = await make_harness(services=LeaderBoundService((PAIR,), lambda: engine, lambda: None),
                              trader_pairs={"telegram:2": (PAIR,)})
    sent = await chat.send(f"/pairs remove {PAIR}")
    assert sent.has_style("error") and "chat.trader_pairs for telegram:2" in sent.text, sent.text
    assert rig.engine.pairs == (PAIR,)
