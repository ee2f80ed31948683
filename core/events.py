"""Typed events the engine emits; the console and the notification layer consume them.

Each event has a ``kind`` (its routing key, e.g. ``"position_closed"``), a severity and a one-line
``summary()``. Rendering for a platform is the notification layer's business, not the engine's.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import event as sa_event

log = logging.getLogger("tradectl.events")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    severity: ClassVar[str] = "info"
    ts: datetime = field(default_factory=_now)

    def summary(self) -> str:
        return self.kind

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind
        data["severity"] = self.severity
        return data


@dataclass(frozen=True, kw_only=True)
class OrderPlaced(Event):
    kind: ClassVar[str] = "order_placed"
    pair: str
    side: str
    qty: Decimal
    client_order_id: str
    purpose: str

    def summary(self) -> str:
        return f"order placed: {self.side} {self.qty} {self.pair} ({self.purpose}, {self.client_order_id})"


@dataclass(frozen=True, kw_only=True)
class OrderFilled(Event):
    kind: ClassVar[str] = "order_filled"
    pair: str
    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    partial: bool
    client_order_id: str

    def summary(self) -> str:
        what = "partial fill" if self.partial else "filled"
        return f"{what}: {self.side} {self.qty} {self.pair} @ {self.price} fee {self.fee} {self.fee_currency}"


@dataclass(frozen=True, kw_only=True)
class OrderRejected(Event):
    kind: ClassVar[str] = "order_rejected"
    severity: ClassVar[str] = "warning"
    pair: str
    side: str
    qty: Decimal
    reason: str

    def summary(self) -> str:
        return f"order rejected: {self.side} {self.qty} {self.pair}: {self.reason}"


@dataclass(frozen=True, kw_only=True)
class OrderCancelled(Event):
    kind: ClassVar[str] = "order_cancelled"
    pair: str
    client_order_id: str

    def summary(self) -> str:
        return f"order cancelled: {self.pair} {self.client_order_id}"


@dataclass(frozen=True, kw_only=True)
class PositionOpened(Event):
    kind: ClassVar[str] = "position_opened"
    pair: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    stop: Decimal | None
    reason: str

    def summary(self) -> str:
        return f"opened {self.pair}: {self.qty} @ {self.price}, fee {self.fee}, stop {self.stop} ({self.reason})"


@dataclass(frozen=True, kw_only=True)
class PositionClosed(Event):
    kind: ClassVar[str] = "position_closed"
    pair: str
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal
    fees: Decimal
    pnl: Decimal
    pnl_pct: Decimal
    reason: str

    def summary(self) -> str:
        return (f"closed {self.pair}: {self.qty} {self.entry_price} -> {self.exit_price}, fees {self.fees}, "
                f"PnL {self.pnl} ({self.pnl_pct}%) [{self.reason}]")


@dataclass(frozen=True, kw_only=True)
class StateChanged(Event):
    kind: ClassVar[str] = "state_changed"
    state: str
    previous: str
    by: str
    reason: str

    def summary(self) -> str:
        return f"trading {self.previous} -> {self.state} by {self.by}: {self.reason}"


@dataclass(frozen=True, kw_only=True)
class AutoPaused(Event):
    kind: ClassVar[str] = "auto_paused"
    severity: ClassVar[str] = "warning"
    reason: str

    def summary(self) -> str:
        return f"entries auto-paused: {self.reason}"


@dataclass(frozen=True, kw_only=True)
class Killed(Event):
    kind: ClassVar[str] = "killed"
    severity: ClassVar[str] = "critical"
    by: str
    report: tuple[str, ...]
    complete: bool

    def summary(self) -> str:
        status = "complete" if self.complete else "INCOMPLETE"
        return f"KILLED by {self.by} ({status}): " + "; ".join(self.report)


@dataclass(frozen=True, kw_only=True)
class Rearmed(Event):
    kind: ClassVar[str] = "rearmed"
    severity: ClassVar[str] = "warning"
    by: str

    def summary(self) -> str:
        return f"re-armed by {self.by}: trading may resume"


@dataclass(frozen=True, kw_only=True)
class EngineError(Event):
    kind: ClassVar[str] = "error"
    severity: ClassVar[str] = "error"
    where: str
    message: str

    def summary(self) -> str:
        return f"error in {self.where}: {self.message}"


@dataclass(frozen=True, kw_only=True)
class ReconcileDifference(Event):
    kind: ClassVar[str] = "reconcile_difference"
    severity: ClassVar[str] = "warning"
    what: str
    ours: str
    venue: str

    def summary(self) -> str:
        return f"reconciliation: {self.what}: ours {self.ours}, venue {self.venue}"


@dataclass(frozen=True, kw_only=True)
class LeadershipChanged(Event):
    kind: ClassVar[str] = "leadership_changed"
    severity: ClassVar[str] = "warning"
    instance_id: str
    leader: bool
    epoch: int

    def summary(self) -> str:
        return f"{self.instance_id} {'became leader' if self.leader else 'stepped down'} (epoch {self.epoch})"


class EventBus:
    """Fan-out to in-process subscribers, plus durable alerts through the outbox.

    ``publish`` is in-memory only (the console, tests); each subscriber has its own bounded queue,
    so a slow one never blocks the engine. ``stage(session, event)`` also writes the event's
    outbox rows into the caller's transaction and publishes in memory only after it commits;
    ``record(db, event)`` does the same in a transaction of its own.
    """

    def __init__(self, maxsize: int = 10_000, outbox: Any = None) -> None:
        self._subs: list[asyncio.Queue[Event]] = []
        self._maxsize = maxsize
        self.dropped = 0
        self.outbox = outbox

    def stage(self, session: Any, event: Event) -> None:
        if self.outbox is not None:
            self.outbox.write(session, event)
        staged = session.info.setdefault("tradectl_events", [])
        if not staged:
            sync = session.sync_session

            def after_commit(_s: Any) -> None:
                for ev in session.info.pop("tradectl_events", []):
                    self.publish(ev)

            def after_rollback(_s: Any) -> None:
                session.info.pop("tradectl_events", None)

            sa_event.listen(sync, "after_commit", after_commit, once=True)
            sa_event.listen(sync, "after_soft_rollback", after_rollback, once=True)
        staged.append(event)

    async def record(self, db: Any, event: Event) -> None:
        async with db.session() as s:
            self.stage(s, event)

    async def announce(self, db: Any, event: Event) -> None:
        """``record`` when the database is reachable; otherwise at least publish in memory."""
        try:
            await self.record(db, event)
        except Exception:  # noqa: BLE001 - an alert about a failure must not fail itself
            log.warning("could not store alert %s; shown locally only", event.kind, exc_info=True)
            self.publish(event)

    def subscribe(self) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue(self._maxsize)
        self._subs.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        if q in self._subs:
            self._subs.remove(q)

    def publish(self, event: Event) -> None:
        log.info("%s", event.summary(), extra={"fields": {"event": event.kind}})
        for q in self._subs:
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1


@dataclass(frozen=True, kw_only=True)
class DestinationFailing(Event):
    kind: ClassVar[str] = "alert_destination_failing"
    severity: ClassVar[str] = "warning"
    destination: str
    failures: int
    error: str

    def summary(self) -> str:
        return f"alerts to {self.destination} are failing ({self.failures} attempts, last: {self.error}); they are kept and retried"
