"""Alerts and a database outage: nothing delivered twice, nothing raised during it lost.

The outage is real to the code under test: the tables it needs are renamed away from another
connection (tests/persistence/outage.py), so its statements fail with the database's own errors.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from sqlmodel import col, select

from bot.notify import OutboxDispatcher, WebhookSender
from core.ops.leader import Lease
from core.ops.outbox import OutboxWriter
from core.settings.settings_models import Destination, NotifySettings
from core.trading.events import EngineError, EventBus, PositionClosed
from persistence.db import Database
from persistence.models import OutboxRow
from tests.fakes.webhook import FakeWebhook
from tests.persistence.outage import TablesAway

OPS = NotifySettings(destinations=(Destination(name="ops", platform="discord", target=""),))


def closed(n: int) -> PositionClosed:
    return PositionClosed(pair="BTC/USD", qty=Decimal(1), entry_price=Decimal(100), exit_price=Decimal(101),
                          fees=Decimal("0.5"), pnl=Decimal(n), pnl_pct=Decimal(1), reason=f"closed by telegram:{n}")


async def eventually(pred: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        value = pred()
        if await value if asyncio.iscoroutine(value) else value:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what}: not met within {timeout} s")


def texts(fake: FakeWebhook, channel: str = "ops") -> list[str]:
    """What a reader sees of each message: a Discord embed (its content line repeats the headline) or
    content, or Slack text."""
    out = []
    for m in fake.received[channel]:
        embeds = [f"{e.get('title', '')}\n{e.get('description', '')}".strip() for e in m.get("embeds") or []]
        out.append("\n".join(x for x in (embeds or [m.get("content") or m.get("text") or ""]) if x))
    return out


def numbers(fake: FakeWebhook, channel: str = "ops") -> list[int]:
    return [int(x) for t in texts(fake, channel) for x in re.findall(r"closed by telegram:(\d+)", t)]


class WebhookThen(FakeWebhook):
    """Accepts a message, then runs ``after_accept`` before the answer leaves (once)."""

    def __init__(self, after_accept: Callable[[], Awaitable[None]], **kw: Any) -> None:
        super().__init__(**kw)
        self.after_accept: Callable[[], Awaitable[None]] | None = after_accept

    async def _handle(self, request: web.Request) -> web.Response:
        response = await super()._handle(request)
        if response.status == 204 and self.after_accept is not None:
            hook, self.after_accept = self.after_accept, None
            await hook()
        return response


async def pending(db: Database) -> int:
    async with db.session() as s:
        return len((await s.exec(select(OutboxRow.id).where(OutboxRow.status == "pending"))).all())


def dispatcher(db: Database, fake: FakeWebhook, instance_id: str, **kw: Any) -> OutboxDispatcher:
    options: dict[str, Any] = {"poll_s": 0.05, "base_backoff_s": 0.05, "lease_ttl_s": 2.0, **kw}
    return OutboxDispatcher(db, OPS, {"discord": WebhookSender("discord")}, instance_id=instance_id,
                            targets={"ops": fake.channel_url("ops")}, **options)


async def test_an_alert_the_platform_accepted_is_not_sent_again_after_a_database_outage(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    """The POST succeeds, the database goes away before the row is marked delivered."""
    caplog.set_level(logging.WARNING, logger="tradectl.notify")
    bus = EventBus(outbox=OutboxWriter(OPS))
    async with TablesAway(db, "outbox") as outage:
        async with WebhookThen(outage.start, burst=100) as fake:
            d = dispatcher(db, fake, "one")
            await bus.record(db, closed(1))
            await d.start()
            await eventually(lambda: outage.active and numbers(fake) == [1], what="delivered, then the outage")
            await eventually(lambda: any(r.name == "tradectl.notify" for r in caplog.records), what="the mark failed")
            await outage.end()
            await bus.record(db, closed(2))
            await eventually(lambda: len(numbers(fake)) >= 2, what="the next alert")
            await eventually(lambda: _none_pending(db), what="nothing pending")
            await d.stop()
    assert numbers(fake) == [1, 2]


async def _none_pending(db: Database) -> bool:
    return await pending(db) == 0


async def test_a_replica_taking_over_during_an_outage_does_not_repeat_what_the_other_sent(db: Database) -> None:
    """One replica's POST succeeds, then the database goes away long enough for its lease to
    expire; the other replica (quicker to poll) takes the destination over when it comes back."""
    bus = EventBus(outbox=OutboxWriter(OPS))
    async with TablesAway(db, "outbox", "leases") as outage:
        async with WebhookThen(outage.start, burst=100) as fake:
            first = dispatcher(db, fake, "first", poll_s=0.4, lease_ttl_s=1.0)
            second = dispatcher(db, fake, "second", poll_s=0.02, lease_ttl_s=1.0, claim_grace_s=3.0)
            await first.start()
            await eventually(lambda: _holder(db, "first"), what="the first replica holds the destination")
            await second.start()
            await bus.record(db, closed(1))
            await eventually(lambda: outage.active and numbers(fake) == [1], what="delivered, then the outage")
            expiry = await db.now()
            await eventually(lambda: _later_than(db, expiry, 1.5), what="the first replica's lease expired")
            await outage.end()
            await eventually(lambda: _holder(db, "second"), what="the second replica took over")
            await eventually(lambda: _none_pending(db), what="the alert marked delivered")
            await bus.record(db, closed(2))
            await eventually(lambda: len(numbers(fake)) >= 2, what="the next alert")
            await eventually(lambda: _none_pending(db), what="nothing pending")
            await first.stop()
            await second.stop()
    assert numbers(fake) == [1, 2]
    async with db.session() as s:
        rows = (await s.exec(select(OutboxRow).order_by(col(OutboxRow.id)))).all()
    assert [r.claimed_by for r in rows] == ["first", "second"]  # each marked by the replica that sent it


async def _holder(db: Database, who: str) -> bool:
    state = await Lease(db, "outbox:ops").current()
    return state is not None and state.holder == who


async def _later_than(db: Database, moment: Any, seconds: float) -> bool:
    return (await db.now() - moment).total_seconds() > seconds


async def test_a_rollback_after_staging_an_event_raises_the_real_error(db: Database) -> None:
    bus = EventBus(outbox=OutboxWriter(OPS))
    seen = bus.subscribe()
    with pytest.raises(RuntimeError, match="the real error"):
        async with db.session() as s:
            bus.stage(s, closed(1))
            raise RuntimeError("the real error")
    assert seen.empty()  # the change did not happen: no alert, not even in memory
    assert await pending(db) == 0


async def test_alerts_raised_during_an_outage_reach_chat_once_the_database_is_back(db: Database) -> None:
    bus = EventBus(outbox=OutboxWriter(OPS))
    seen = bus.subscribe()
    async with TablesAway(db, "outbox") as outage, FakeWebhook(burst=100) as fake:
        d = dispatcher(db, fake, "one", events=bus)
        await d.start()
        await outage.start()
        for _ in range(5):
            await bus.announce(db, EngineError(where="feed", message="database unreachable"))
        await bus.announce(db, EngineError(where="protection", message="database unreachable"))
        assert seen.qsize() == 6  # shown locally at once
        await outage.end()
        await eventually(lambda: len(texts(fake)) >= 2, what="the held alerts delivered")
        await eventually(lambda: _none_pending(db), what="nothing pending")
        await d.stop()
    assert texts(fake) == ["❗ Error in the market data feed\ndatabase unreachable\n"
                           "raised 5 times while the database was unreachable",
                           "❗ Error in the protection loop\ndatabase unreachable"]
    assert bus.backlog == 0


async def test_held_alerts_ride_along_with_the_next_write_and_survive_its_rollback(db: Database) -> None:
    bus = EventBus(outbox=OutboxWriter(OPS))
    async with TablesAway(db, "outbox") as outage:
        await outage.start()
        await bus.announce(db, EngineError(where="feed", message="database unreachable"))
        await outage.end()
    with pytest.raises(RuntimeError):
        async with db.session() as s:
            bus.stage(s, closed(1))
            raise RuntimeError("the change failed")
    assert bus.backlog == 1 and await pending(db) == 0  # still held, not lost with the rollback
    await bus.record(db, closed(2))
    async with db.session() as s:
        rows = (await s.exec(select(OutboxRow).order_by(col(OutboxRow.id)))).all()
    assert [r.event_type for r in rows] == ["error", "position_closed"]  # oldest first
    assert bus.backlog == 0


async def test_the_backlog_is_bounded_and_says_what_it_lost(db: Database) -> None:
    bus = EventBus(outbox=OutboxWriter(OPS), backlog_max=3)
    async with TablesAway(db, "outbox") as outage:
        await outage.start()
        for n in range(10):
            await bus.announce(db, EngineError(where=f"scan:{n}", message="database unreachable"))
        assert bus.backlog == 3 and bus.backlog_lost == 7
    assert await bus.flush(db) == 3
    async with db.session() as s:
        rows = (await s.exec(select(OutboxRow).order_by(col(OutboxRow.id)))).all()
    assert len(rows) == 4 and "7 more alert(s)" in rows[-1].payload
