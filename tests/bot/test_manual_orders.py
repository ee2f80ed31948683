"""/buy, /sell, /orders and /cancel from chat, end to end: the real dispatcher, the real engine on the
paper venue and the real database. Every order row is written before the venue hears of it; every
bad input is a clear error that writes nothing and sends nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import build_dispatcher
from bot.audit import AuditLog
from bot.harness import ChatHarness, Sent
from core.settings.settings_models import ChatSettings
from core.trading.engine import Engine
from core.trading.executor import Executor
from core.trading.market_data import MarketData
from core.trading.risk import RiskManager
from core.trading.state import StateStore
from exchanges.base import Exchange, Order, OrderRequest, OrderStatus
from exchanges.paper import MarketRules, PaperExchange
from persistence.db import Database
from persistence.models import ConfirmationRow, FillRow, OrderRow, PositionRow
from tests.bot.conftest import ADMIN, BASE_SETTINGS, TRADER, VIEWER
from tests.core.engine_rig import PAIR, Rig, _idle_feed
from tests.core.waiting import eventually

RULES = MarketRules(min_qty=Decimal("0.0001"), qty_step=Decimal("0.0001"), price_tick=Decimal("0.01"),
                    min_notional=Decimal("5"), maker_fee=Decimal("0.0016"), taker_fee=Decimal("0.0026"))


class Recording:
    """The paper venue, noting for every order it is asked to place whether our database already
    held that client order id (written, status ``new``) at that moment."""

    def __init__(self, venue: PaperExchange, db: Database) -> None:
        self._venue = venue
        self._db = db
        self.written_first: dict[str, bool] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._venue, name)

    async def place_order(self, request: OrderRequest) -> Order:
        async with self._db.read() as s:
            row = (await s.exec(select(OrderRow).where(
                OrderRow.client_order_id == request.client_order_id))).first()
        self.written_first[request.client_order_id] = row is not None and row.status == OrderStatus.NEW
        return await self._venue.place_order(request)


class ManualRig(Rig):
    """The engine rig with a coarser quantity step (0.0001 BTC) and a recording venue."""

    def build(self) -> Engine:
        self.paper = PaperExchange(self.db, {p: RULES for p in self.pairs}, starting_balances={"USD": Decimal(10000)},
                                   slippage_bps=Decimal(0), impact_bps=Decimal(0), volume_share=Decimal(1),
                                   clock=self.clock, timeframe_s=3600)
        self.venue = Recording(self.paper, self.db)
        venue: Exchange = self.venue
        s = self.settings
        self.engine = Engine(db=self.db, exchange=venue, feed=_idle_feed(), market_data=MarketData(3600),
                             evaluate=self.strategy, risk=RiskManager(s.risk),
                             executor=Executor(self.db, venue, self.events, self.clock, backoff_s=0.01),
                             state=StateStore(self.db, "default"), clock=self.clock, events=self.events,
                             trading=s.trading, timezone="UTC", mode="paper",
                             market_hooks=(self.paper.on_market_event,), stale_command_s=s.chat.stale_command_s)
        return self.engine


@pytest.fixture
async def rig(db: Database) -> AsyncIterator[ManualRig]:
    r = ManualRig(db)
    await r.start()
    for _ in range(3):
        await r.candle("60000")
    yield r
    await r.stop()


@pytest.fixture
def chat(rig: ManualRig, db: Database) -> ChatHarness:
    settings = ChatSettings(**BASE_SETTINGS)
    return ChatHarness(build_dispatcher(db, rig.engine, settings, clock=rig.clock), actor=TRADER)


async def _orders(db: Database) -> list[OrderRow]:
    async with db.read() as s:
        return list((await s.exec(select(OrderRow).order_by(col(OrderRow.id)))).all())


async def _positions(db: Database) -> list[PositionRow]:
    async with db.read() as s:
        return list((await s.exec(select(PositionRow).order_by(col(PositionRow.id)))).all())


async def _confirmed(chat: ChatHarness, line: str, **kw: Any) -> tuple[Sent, Sent]:
    asked = await chat.send(line, **kw)
    assert not asked.has_style("error"), asked.text
    return asked, await chat.press(asked.confirm_payload, **kw)


async def test_buy_at_market_asks_with_the_cost_then_fills_and_the_kill_flattens_it(
        rig: ManualRig, chat: ChatHarness, db: Database) -> None:
    asked = await chat.send("/buy BTC/USD 0.01")
    assert await _orders(db) == []  # asking writes nothing
    text = asked.text
    assert "Buys 0.01 BTC at ≈ 60,000.00" in text and "Value ≈ 600.00 USD, fee ≈ 1.56 USD (taker 0.26%)" in text
    assert "You pay ≈ 601.56 USD" in text and "stop 58,200.00" in text and "Expires" in text
    done = await chat.press(asked.confirm_payload)
    assert done.has_style("success") and "Bought 0.01 BTC at 60,000.00, fee 1.56 USD" in done.text

    (order,) = await _orders(db)
    assert order.purpose == "entry" and order.side == "buy" and order.requested_by == TRADER.key
    assert order.status == OrderStatus.FILLED and order.avg_price == Decimal(60000) and order.fee == Decimal("1.56")
    assert rig.venue.written_first == {order.client_order_id: True}  # stored before the venue heard of it
    async with db.read() as s:
        (fill,) = (await s.exec(select(FillRow))).all()
    assert (fill.qty, fill.price, fill.fee_quote) == (Decimal("0.01"), Decimal(60000), Decimal("1.56"))
    (pos,) = await _positions(db)
    assert (pos.status, pos.qty, pos.strategy, pos.stop_price) == ("open", Decimal("0.01"), "manual", Decimal(58200))

    positions = await chat.send("/positions")
    assert "BTC/USD" in positions.text and "0.01" in positions.text
    _, killed = await _confirmed(chat, "/kill", as_=ADMIN)
    assert "KILLED" in killed.text and "closed 1 position" in killed.text
    (pos,) = await _positions(db)
    assert pos.status == "closed" and pos.exit_reason == "kill"
    rows = await AuditLog(db, rig.clock).recent(10)
    buy_row = next(r for r in rows if r.command == "buy" and r.decision == "confirmed")
    assert buy_row.args == "BTC/USD 0.01" and buy_row.result.startswith("Bought 0.01 BTC")


async def test_an_amount_in_the_quote_currency_is_rounded_down_to_the_step(chat: ChatHarness, db: Database) -> None:
    for line in ("/buy BTC/USD 250USD", "/buy BTC/USD 250 usd"):
        asked = await chat.send(line)
        assert "Buys 0.0041 BTC (250 USD, rounded down to the 0.0001 BTC step)" in asked.text, asked.text
        assert "Value ≈ 246.00 USD" in asked.text
    done = await chat.press(asked.confirm_payload)
    assert "Bought 0.0041 BTC" in done.text
    (order,) = await _orders(db)
    assert order.qty == Decimal("0.0041")


async def test_a_limit_buy_rests_is_listed_and_cancelled(rig: ManualRig, chat: ChatHarness, db: Database) -> None:
    asked = await chat.send("/buy BTC/USD 0.01 @ 59000")
    assert "limit @ 59,000.00" in asked.text and "maker 0.16%" in asked.text and "Market now 60,000.00" in asked.text
    done = await chat.press(asked.confirm_payload)
    assert "Order placed: limit buy @ 59,000.00 0.01 BTC" in done.text
    (order,) = await _orders(db)
    short = order.client_order_id[-6:]
    listed = await chat.send("/orders", as_=VIEWER)
    assert short in listed.text and "59,000.00" in listed.text and "buy" in listed.text
    assert "No open orders" not in listed.text

    unknown = await chat.send("/cancel zzzzzz")
    assert unknown.has_style("error") and "no open order zzzzzz" in unknown.text.lower()
    asked = await chat.send(f"/cancel {short}")
    assert f"Cancels 1 order: {short} buy 0.01 BTC/USD @ 59,000.00" in asked.text
    assert [b.label for b in asked.buttons] == [f"Yes, cancel {short}", "Cancel"]  # not two look-alike buttons
    cancelled = await chat.press(asked.confirm_payload)
    assert "Cancelled 1 order" in cancelled.text
    (order,) = await _orders(db)
    (pos,) = await _positions(db)
    assert order.status == OrderStatus.CANCELLED and pos.status == "void"
    assert "No open orders" in (await chat.send("/orders")).text
    await rig.candle("58000", low="58000")  # the market passes the old limit: nothing fills
    assert [p.status for p in await _positions(db)] == ["void"]


async def test_a_limit_buy_fills_when_the_market_reaches_it(rig: ManualRig, chat: ChatHarness, db: Database) -> None:
    await _confirmed(chat, "/buy BTC/USD 0.01 @59000")
    await rig.candle("59500", low="58900")
    await rig.engine.executor.poll_fills()
    (pos,) = await _positions(db)
    assert pos.status == "open" and pos.entry_cost == Decimal(590) and pos.entry_fees == Decimal("0.944")


async def test_cancel_all_is_for_admins(rig: ManualRig, chat: ChatHarness, db: Database) -> None:
    await _confirmed(chat, "/buy BTC/USD 0.01 @ 59000")
    refused = await chat.send("/cancel all")
    assert refused.has_style("error") and "for admins" in refused.text
    assert [o.status for o in await _orders(db)] == [OrderStatus.SUBMITTED]
    asked, done = await _confirmed(chat, "/cancel all", as_=ADMIN)
    assert "Cancels 1 order" in asked.text and "Cancelled 1 order" in done.text
    assert [o.status for o in await _orders(db)] == [OrderStatus.CANCELLED]


@pytest.mark.parametrize(("line", "says"), [
    ("/buy XRP/USD 1", "unknown pair XRP/USD"),
    ("/buy BTC/USD 0.00005", "below the venue minimum of 0.0001 BTC"),
    ("/buy BTC/USD 3USD", "0 BTC is below the venue minimum of 0.0001 BTC"),
    ("/buy BTC/USD 0.00015", "too many decimals: BTC/USD trades in steps of 0.0001 BTC"),
    ("/buy BTC/USD 0", "the amount must be more than 0"),
    ("/buy BTC/USD -1", "the amount must be more than 0"),
    ("/buy BTC/USD abc", "the amount must be a number"),
    ("/buy BTC/USD NaN", "the amount must be a number like 0.01 (digits and a dot), not 'NaN'"),
    ("/buy BTC/USD Infinity", "not 'Infinity'"),
    ("/buy BTC/USD 1e309", "the amount must be a number like 0.01 (digits and a dot), not '1e309'"),
    ("/buy BTC/USD 0.01 @ 1e5", "the limit price must be a number like 0.01 (digits and a dot), not '1e5'"),
    ("/buy BTC/USD 1.5EUR", "not EUR"),
    ("/buy BTC/USD", "missing <amount...>"),
    ("/buy BTC/USD 0.01 @ 70000", "16.7% from the market price 60000; at most 10% away"),
    ("/buy BTC/USD 0.01 @ 0", "the limit price must be more than 0"),
    ("/buy BTC/USD 0.01 @ 60000.001", "not on the venue's price tick of 0.01"),
    ("/buy BTC/USD 0.01 force", "force (overriding the risk limits) is for admins only"),
    ("/buy BTC/USD 0.1", "refused by the risk limits: 6000.00 USD is over the per-pair limit of 5000.00"),
    ("/buy BTC/USD 1", "not enough USD"),
    ("/sell BTC/USD 0.01", "no open position in BTC/USD to sell"),
    ("/cancel 123456", "no open order 123456"),
])
async def test_bad_input_is_a_clear_error_that_changes_nothing(line: str, says: str, rig: ManualRig,
                                                              chat: ChatHarness, db: Database) -> None:
    balances = await rig.paper.balances()
    sent = await chat.send(line)
    assert sent.has_style("error") and says.lower() in sent.text.lower(), sent.text
    assert not sent.buttons  # refused at once: no confirmation asked
    assert await _orders(db) == [] and await _positions(db) == []
    assert await rig.paper.balances() == balances
    async with db.read() as s:
        assert (await s.exec(select(ConfirmationRow))).all() == []
    (row,) = await AuditLog(db, rig.clock).recent(1)  # the attempt is on record, refused
    assert (row.command, row.user_id) == (line.split()[0][1:], TRADER.user_id) and row.decision in ("invalid", "failed")


async def test_buy_while_killed_or_paused_is_refused(chat: ChatHarness, db: Database) -> None:
    paused = await chat.send("/pause")
    assert paused.has_style("success")
    refused = await chat.send("/buy BTC/USD 0.01")
    assert refused.has_style("error") and "trading is paused" in refused.text
    await _confirmed(chat, "/kill", as_=ADMIN)
    for as_, line in ((TRADER, "/buy BTC/USD 0.01"), (ADMIN, "/buy BTC/USD 0.01 force")):
        refused = await chat.send(line, as_=as_)
        assert refused.has_style("error") and "Trading is killed" in refused.text, refused.text
    assert await _orders(db) == []


async def test_a_confirmed_buy_is_refused_when_a_kill_landed_after_the_question(chat: ChatHarness,
                                                                              db: Database) -> None:
    asked = await chat.send("/buy BTC/USD 0.01")
    await _confirmed(chat, "/kill", as_=ADMIN)
    late = await chat.press(asked.confirm_payload)
    assert late.has_style("error") and "Trading is killed" in late.text
    assert await _orders(db) == []


async def test_an_admin_override_skips_the_risk_limits_and_is_audited(rig: ManualRig, chat: ChatHarness,
                                                                     db: Database) -> None:
    asked, done = await _confirmed(chat, "/buy BTC/USD 0.1 force", as_=ADMIN)
    assert "⚠ Overrides the risk limits (admin): 6000.00 USD is over the per-pair limit" in asked.text
    assert "Bought 0.1 BTC at 60,000.00" in done.text and "Risk limits overridden" in done.text
    (order,) = await _orders(db)
    assert "risk limits overridden by telegram:1" in order.reason
    rows = await AuditLog(db, rig.clock).recent(10)
    row = next(r for r in rows if r.command == "buy" and r.decision == "confirmed")
    assert row.args == "BTC/USD 0.1 force" and "Risk limits overridden" in row.result and row.user_id == ADMIN.user_id


async def test_an_override_also_passes_a_pause_but_not_the_cash_there_is(chat: ChatHarness, db: Database) -> None:
    await chat.send("/pause")
    too_much = await chat.send("/buy BTC/USD 1 force", as_=ADMIN)
    assert too_much.has_style("error") and "Not enough USD" in too_much.text
    asked, done = await _confirmed(chat, "/buy BTC/USD 0.01 force", as_=ADMIN)
    assert "trading is paused" in asked.text and "Bought 0.01 BTC" in done.text


async def test_sell_reduces_then_closes_and_refuses_more_than_held(rig: ManualRig, chat: ChatHarness,
                                                                   db: Database) -> None:
    await _confirmed(chat, "/buy BTC/USD 0.01")
    await rig.candle("61000")
    too_much = await chat.send("/sell BTC/USD 0.02")
    assert too_much.has_style("error") and "The position holds 0.01 BTC" in too_much.text
    asked, done = await _confirmed(chat, "/sell BTC/USD 0.004")
    assert "The position keeps 0.006 BTC" in asked.text and "Sold 0.004 BTC at 61,000.00" in done.text
    (pos,) = await _positions(db)
    assert pos.status == "open" and pos.qty == Decimal("0.006") and pos.stop_price == Decimal(58200)
    asked, done = await _confirmed(chat, "/sell BTC/USD 0.006")
    assert "Closes the position" in asked.text and "Sold 0.006 BTC" in done.text
    (pos,) = await _positions(db)
    assert pos.status == "closed" and pos.exit_reason == "close"
    assert pos.realized_pnl == Decimal("0.01") * 1000 - pos.entry_fees - pos.exit_fees


async def test_a_resting_limit_sell_gives_way_to_the_stop(rig: ManualRig, chat: ChatHarness, db: Database) -> None:
    await _confirmed(chat, "/buy BTC/USD 0.01")
    _, done = await _confirmed(chat, "/sell BTC/USD 0.01 @ 62000")
    assert "Order placed: limit sell @ 62,000.00" in done.text
    await rig.candle("58000", low="58000")  # below the stop at 58,200

    async def closed() -> bool:
        await rig.engine.executor.poll_fills()
        return [p.status for p in await _positions(db)] == ["closed"]

    # the candle's pass or the protection loop's (whichever cancelled the resting sell) sells at the stop
    await eventually(closed, what="the stop exit")
    orders = await _orders(db)
    assert [(o.purpose, o.status) for o in orders] == [
        ("entry", OrderStatus.FILLED), ("close", OrderStatus.CANCELLED), ("stop", OrderStatus.FILLED)]
    (pos,) = await _positions(db)
    assert pos.status == "closed" and pos.exit_reason == "stop"


async def test_a_trader_limited_to_some_pairs_trades_and_cancels_only_in_those(db: Database) -> None:
    rig = ManualRig(db, pairs=(PAIR, "ETH/USD"))
    await rig.start()
    for _ in range(3):
        await rig.candle("60000")
        await rig.candle("3000", pair="ETH/USD")
    chat = ChatHarness(build_dispatcher(db, rig.engine, ChatSettings(**BASE_SETTINGS, trader_pairs={
        TRADER.key: ("ETH/USD",)}), clock=rig.clock), actor=TRADER)
    refused = await chat.send("/buy BTC/USD 0.01")
    assert refused.has_style("error") and "only for ETH/USD" in refused.text
    await _confirmed(chat, "/buy BTC/USD 0.01 @ 59000", as_=ADMIN)
    await _confirmed(chat, "/buy ETH/USD 0.1 @ 2950")
    btc, eth = (o.client_order_id[-6:] for o in await _orders(db))
    other = await chat.send(f"/cancel {btc}")
    assert other.has_style("error") and f"no open order {btc}" in other.text.lower() and eth in other.text
    _, done = await _confirmed(chat, f"/cancel {eth}")
    assert "Cancelled 1 order" in done.text
    assert [o.status for o in await _orders(db)] == [OrderStatus.SUBMITTED, OrderStatus.CANCELLED]
    await rig.stop()


async def test_a_kill_cancels_a_resting_limit_sell_and_flattens_as_a_kill(rig: ManualRig, chat: ChatHarness,
                                                                         db: Database) -> None:
    await _confirmed(chat, "/buy BTC/USD 0.01")
    await _confirmed(chat, "/sell BTC/USD 0.01 @ 62000")
    _, killed = await _confirmed(chat, "/kill", as_=ADMIN)
    assert "closed 1 position and cancelled 1 order" in killed.text, killed.text
    assert [(o.purpose, o.status) for o in await _orders(db)] == [
        ("entry", OrderStatus.FILLED), ("close", OrderStatus.CANCELLED), ("kill", OrderStatus.FILLED)]
    (pos,) = await _positions(db)
    assert pos.status == "closed" and pos.exit_reason == "kill"
