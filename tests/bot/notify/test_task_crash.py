"""A destination's delivery task that crashes is reported, not swallowed, and its alert is not lost.

A sender raises ``DeliveryError`` and nothing else; one that raises anything else has a bug, and
retrying it would post the same message again and again. The task ends, its supervisor reports it
through ``on_failure`` (the service's shows the destination as a component down and trading goes on:
core/runtime/lifecycle.py), and the alert stays due for the next start.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlmodel import select

from bot.notify import AlertMessage, OutboxDispatcher, WebhookSender
from core.ops.components import ComponentHealth
from core.ops.outbox import OutboxWriter
from core.runtime import TaskFailed
from core.settings.settings_models import Destination, NotifySettings
from core.trading.events import EventBus, PositionClosed
from persistence.db import Database
from persistence.models import OutboxRow
from tests.core.waiting import eventually
from tests.fakes.webhook import FakeWebhook

OPS = NotifySettings(destinations=(Destination(name="ops", platform="discord", target=""),))


class BrokenSender:
    """A Discord sender with a bug: it fails on every message with an error outside the Sender contract."""

    platform = "discord"
    max_chars = 2000

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, target: str, message: AlertMessage) -> None:
        self.sent += 1
        embed: dict[str, Any] = {}
        embed["footer"]["text"] = message.kind  # KeyError: the bug


async def test_a_sender_that_raises_a_bug_ends_its_task_and_the_failure_is_reported(db: Database) -> None:
    bus = EventBus(outbox=OutboxWriter(OPS))
    await bus.record(db, PositionClosed(pair="BTC/USD", qty=Decimal(1), entry_price=Decimal(100),
                                        exit_price=Decimal(101), fees=Decimal("0.5"), pnl=Decimal(1),
                                        pnl_pct=Decimal(1), reason="closed by telegram:7"))
    failures: list[TaskFailed] = []
    health = ComponentHealth()

    def failed(failure: TaskFailed) -> None:  # what the service passes, and a record for the test
        failures.append(failure)
        health.task_failed(failure)

    broken = BrokenSender()
    first = OutboxDispatcher(db, OPS, {"discord": broken}, instance_id="one", poll_s=0.02, lease_ttl_s=2,
                             on_failure=failed)
    await first.start()
    try:
        await eventually(lambda: bool(failures))
    finally:
        await first.stop()

    (failure,) = failures
    assert failure.task_name == "outbox:ops"
    assert isinstance(failure.original, KeyError)
    assert broken.sent == 1  # not retried into a loop of the same message
    down = health.get("outbox:ops")
    assert down is not None and down.state == "down" and "KeyError" in down.reason  # /health and `tradectl health`
    async with db.session() as s:
        (row,) = (await s.exec(select(OutboxRow))).all()
    assert (row.status, row.claimed_by) == ("pending", "")  # still due, and nobody needs to wait for a mark

    # the next start (with the sender fixed) delivers it at once, without waiting out a claim
    async with FakeWebhook() as fake:
        second = OutboxDispatcher(db, OPS, {"discord": WebhookSender("discord")}, instance_id="two",
                                  targets={"ops": fake.channel_url("ops")}, poll_s=0.02, lease_ttl_s=2,
                                  claim_grace_s=60, on_failure=failures.append)
        await second.start()
        try:
            await eventually(lambda: len(fake.received["ops"]) == 1)
        finally:
            await second.stop()
    assert "closed by telegram:7" in str(fake.received["ops"][0])
    assert len(failures) == 1
