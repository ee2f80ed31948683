"""Typed events the engine emits; the console and the notification layer consume them.

Each event has a ``kind`` (its routing key, e.g. ``"position_closed"``), a severity and a one-line
``summary()``. Rendering for a platform is the notification layer's business, not the engine's.

An event about a pair's quantities or prices carries the pair's market rules, ``qty_step`` and
``price_tick`` (None when the market is not loaded), set where it is emitted: an alert shows its
figures as the venue counts them, as the replies do, however long it waited in the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Literal

from sqlalchemy import event as sa_event

from core.trading.intents import ClosedPosition, OpenItem
from core.trading.values import OrderPurpose, TradingStatus
from exchanges.base import Side

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
class PairEvent(Event):
    """An event about a pair's quantities or prices, with the pair's market rules (see the module docstring)."""

    pair: str
    qty_step: Decimal | None = None
    price_tick: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class OrderPlaced(PairEvent):
    kind: ClassVar[str] = "order_placed"
    side: Side
    qty: Decimal
    client_order_id: str
    purpose: OrderPurpose

    def summary(self) -> str:
        return f"order placed: {self.side} {self.qty} {self.pair} ({self.purpose}, {self.client_order_id})"


@dataclass(frozen=True, kw_only=True)
class OrderFilled(PairEvent):
    kind: ClassVar[str] = "order_filled"
    side: Side
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
class OrderRejected(PairEvent):
    kind: ClassVar[str] = "order_rejected"
    severity: ClassVar[str] = "warning"
    side: Side
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
class PositionOpened(PairEvent):
    kind: ClassVar[str] = "position_opened"
    qty: Decimal
    price: Decimal
    fee: Decimal
    stop: Decimal | None
    reason: str

    def summary(self) -> str:
        return f"opened {self.pair}: {self.qty} @ {self.price}, fee {self.fee}, stop {self.stop} ({self.reason})"


class ExitKind(StrEnum):
    """What closed a position, from the purpose of the order whose fill closed it.

    ``UNKNOWN`` is an event that does not say (stored before exit kinds existed, or built without
    one): an alert then reads its ``reason`` text as it always did."""

    STOP = "stop"
    TRAILING = "trailing"
    TAKE_PROFIT = "take_profit"
    STRATEGY = "strategy"
    MANUAL = "manual"  # /close, /closeall
    KILL = "kill"
    UNKNOWN = "unknown"

    @classmethod
    def of_purpose(cls, purpose: OrderPurpose | None) -> ExitKind:
        """The exit kind of an order purpose (``core.trading.executor.OrderSpec.purpose``); ``UNKNOWN``
        for an entry, or for None (a purpose this version does not know, see
        :func:`core.trading.values.known_purpose`)."""
        return _EXIT_OF_PURPOSE.get(purpose, cls.UNKNOWN) if purpose is not None else cls.UNKNOWN


_EXIT_OF_PURPOSE = {OrderPurpose.STOP: ExitKind.STOP, OrderPurpose.TRAILING: ExitKind.TRAILING,
                    OrderPurpose.TAKE_PROFIT: ExitKind.TAKE_PROFIT, OrderPurpose.EXIT: ExitKind.STRATEGY,
                    OrderPurpose.CLOSE: ExitKind.MANUAL, OrderPurpose.KILL: ExitKind.KILL}


@dataclass(frozen=True, kw_only=True)
class PositionClosed(PairEvent):
    """A position closed. ``exit_kind`` says what closed it; ``by`` who asked (an actor key, for a
    manual close or a kill); ``level`` the stop or take-profit price that triggered it. ``reason`` is
    the closing order's free-text why (a signal's reasoning, a trigger's arithmetic): detail only."""

    kind: ClassVar[str] = "position_closed"
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal
    fees: Decimal
    pnl: Decimal
    pnl_pct: Decimal
    reason: str
    exit_kind: ExitKind = ExitKind.UNKNOWN
    by: str = ""
    level: Decimal | None = None

    def summary(self) -> str:
        why = self.reason if self.exit_kind is ExitKind.UNKNOWN else f"{self.exit_kind.value}: {self.reason}"
        return (f"closed {self.pair}: {self.qty} {self.entry_price} -> {self.exit_price}, fees {self.fees}, "
                f"PnL {self.pnl} ({self.pnl_pct}%) [{why}]")


@dataclass(frozen=True, kw_only=True)
class StateChanged(Event):
    kind: ClassVar[str] = "state_changed"
    state: TradingStatus
    previous: TradingStatus
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
    """What a kill did, as values: positions closed (with their PnL), orders cancelled, what is left
    open when the venue did not confirm in time, and how long the venue took."""

    kind: ClassVar[str] = "killed"
    severity: ClassVar[str] = "critical"
    by: str
    complete: bool
    reason: str = ""
    closed: tuple[ClosedPosition, ...] = ()
    cancelled: tuple[OpenItem, ...] = ()
    left: tuple[OpenItem, ...] = ()
    acknowledged_s: float | None = None
    flat_s: float | None = None

    def summary(self) -> str:
        status = "complete" if self.complete else "INCOMPLETE"
        if not (self.closed or self.cancelled or self.left):
            return f"KILLED by {self.by} ({status}): nothing was open"
        parts = [f"closed {p.qty} {p.pair} @ {p.exit_price}, PnL {p.pnl}" for p in self.closed]
        parts += [f"cancelled {o.side} {o.qty} {o.pair} ({o.purpose or 'unknown purpose'})" for o in self.cancelled]
        parts += [f"STILL OPEN: {o.what} {o.qty} {o.pair}" for o in self.left]
        return f"KILLED by {self.by} ({status}): " + "; ".join(parts)


@dataclass(frozen=True, kw_only=True)
class Rearmed(Event):
    kind: ClassVar[str] = "rearmed"
    severity: ClassVar[str] = "warning"
    by: str

    def summary(self) -> str:
        return f"re-armed by {self.by}: trading may resume"


def describe(exc: BaseException) -> str:
    """A short description of an error that is safe to show in chat: its kind, never its text (which
    may hold SQL, file paths, URLs or a venue's answer). The text goes to the log."""
    name = type(exc).__name__
    module = type(exc).__module__ or ""
    if module.startswith(("sqlalchemy", "asyncpg", "sqlite3", "aiosqlite", "psycopg")):
        return f"database error ({name})"
    if module.startswith("exchanges"):
        return f"exchange error ({name})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, (ConnectionError, OSError)):
        return f"connection or file error ({name})"
    return f"internal error ({name})"


@dataclass(frozen=True, kw_only=True)
class EngineError(Event):
    """An error worth an alert. ``message`` is a short safe description (see :func:`describe`), never
    raw exception text; ``ref`` finds the details in the log."""

    kind: ClassVar[str] = "error"
    severity: ClassVar[str] = "error"
    where: str
    message: str
    ref: str = ""

    @classmethod
    def from_exception(cls, where: str, exc: BaseException) -> EngineError:
        """The alert for ``exc``: its kind and a reference id; the log line with the reference keeps
        the exception's text (the caller logs the traceback)."""
        ref = secrets.token_hex(4)
        log.error("error in %s, alert reference %s: %s: %s", where, ref, type(exc).__name__, str(exc)[:1000])
        return cls(where=where, message=describe(exc), ref=ref)

    def summary(self) -> str:
        return f"error in {self.where}: {self.message}" + (f" (reference {self.ref})" if self.ref else "")


ReconcileSubject = Literal["balance", "order"]


@dataclass(frozen=True, kw_only=True)
class ReconcileDifference(Event):
    """Something the books and the venue disagree on, as values.

    A ``balance`` difference: the venue holds ``venue_qty`` of ``currency``, less than the ``ours_qty``
    that open positions (ids ``positions``) hold. An ``order`` difference: order ``client_order_id``
    (``side`` ``qty`` ``pair``) is ``ours`` in the books (``"open (submitted)"``, ``"cancelled (not
    open)"``, ``"unknown order"``) and ``venue`` at the venue. ``qty_step`` is the market's quantity
    step, so an alert shows quantities as the venue counts them."""

    kind: ClassVar[str] = "reconcile_difference"
    severity: ClassVar[str] = "warning"
    subject: ReconcileSubject
    currency: str = ""
    pair: str = ""
    side: Side | None = None  # an order difference's; a balance difference has none
    client_order_id: str = ""
    qty: Decimal | None = None
    ours_qty: Decimal | None = None
    venue_qty: Decimal | None = None
    positions: tuple[int, ...] = ()
    ours: str = ""
    venue: str = ""
    qty_step: Decimal | None = None

    @property
    def what(self) -> str:
        """What differs, in one line; also the key a second look confirms a difference by."""
        if self.subject == "balance":
            return f"{self.currency} balance below open positions"
        return f"order {self.client_order_id} ({self.side} {self.qty} {self.pair})"

    def summary(self) -> str:
        if self.subject == "balance":
            held = f"{self.ours_qty} {self.currency}" + (
                f" in positions {', '.join(f'#{i}' for i in self.positions)}" if self.positions else "")
            return f"reconciliation: {self.what}: ours {held}, venue {self.venue_qty} {self.currency}"
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


@dataclass(slots=True)
class _Held:
    """An alert that could not be stored, and how often the same alert came again meanwhile."""

    event: Event
    repeats: int = 1


def _key(event: Event) -> str:
    """Held alerts that read the same on their first line are one alert raised N times (an error's
    later lines often differ only in the statement's parameters)."""
    lines = event.summary().splitlines()
    return f"{event.kind}\n{lines[0] if lines else ''}"


class EventBus:
    """Fan-out to in-process subscribers, plus durable alerts through the outbox.

    ``publish`` is in-memory only (the console, tests); each subscriber has its own bounded queue,
    so a slow one never blocks the engine. ``stage(session, event)`` also writes the event's
    outbox rows into the caller's transaction and publishes in memory only after it commits;
    ``record(db, event)`` does the same in a transaction of its own.

    ``announce(db, event)`` is for alerts about failures, which often come when the database is
    away: if the event cannot be stored it is published in memory at once (console, log) and kept in
    a bounded backlog, repeats of the same alert counted rather than queued. The backlog rides along
    with the next transaction that stages an event, or :meth:`flush` writes it (the outbox dispatcher
    calls it while polling), so the alerts about an outage reach chat once the database is back.
    Events of a transaction that rolled back are dropped, not held: their change did not happen.
    """

    def __init__(self, maxsize: int = 10_000, outbox: Any = None, *, backlog_max: int = 100) -> None:
        self._subs: list[asyncio.Queue[Event]] = []
        self._maxsize = maxsize
        self.dropped = 0
        self.outbox = outbox
        self.backlog_max = backlog_max
        self.backlog_lost = 0  # alerts neither stored nor held (the backlog was full)
        self._backlog: dict[str, _Held] = {}

    @property
    def backlog(self) -> int:
        """Alerts waiting in memory for the database (distinct ones; repeats are counted, not held)."""
        return len(self._backlog)

    def stage(self, session: Any, event: Event) -> None:
        if self.outbox is not None:
            self._stage_backlog(session)
            self.outbox.write(session, event)
        self._listen(session)
        session.info.setdefault("tradectl_events", []).append(event)

    def _listen(self, session: Any) -> None:
        """Publish after the commit; drop (or, for held alerts, hold again) after a rollback. Once per session."""
        if session.info.get("tradectl_listening"):
            return
        session.info["tradectl_listening"] = True
        sync = session.sync_session
        settled = False

        def after_commit(_session: Any) -> None:
            nonlocal settled
            if settled:
                return
            settled = True
            session.info.pop("tradectl_listening", None)
            stored = session.info.pop("tradectl_backlog", [])
            session.info.pop("tradectl_backlog_lost", None)
            if stored:
                log.info("%d alert(s) held while the database was unreachable are now stored", len(stored))
            for ev in session.info.pop("tradectl_events", []):
                self.publish(ev)

        def after_rollback(_session: Any, previous: Any) -> None:
            nonlocal settled
            if settled or getattr(previous, "nested", False):
                return  # a savepoint: the outer transaction may still commit
            settled = True
            session.info.pop("tradectl_listening", None)
            session.info.pop("tradectl_events", None)
            self._hold_again(session.info.pop("tradectl_backlog", []), session.info.pop("tradectl_backlog_lost", 0))

        sa_event.listen(sync, "after_commit", after_commit)
        sa_event.listen(sync, "after_soft_rollback", after_rollback)

    def _stage_backlog(self, session: Any) -> None:
        if not self._backlog and not self.backlog_lost:
            return
        held = list(self._backlog.values())
        self._backlog.clear()
        lost, self.backlog_lost = self.backlog_lost, 0
        for item in held:
            self.outbox.write(session, item.event, repeats=item.repeats)
        if lost:
            self.outbox.write(session, EngineError(where="alerts", message=(
                f"{lost} more alert(s) raised while the database was unreachable were lost (backlog full)")))
        session.info.setdefault("tradectl_backlog", []).extend(held)
        session.info["tradectl_backlog_lost"] = session.info.get("tradectl_backlog_lost", 0) + lost
        self._listen(session)

    def _hold(self, event: Event) -> None:
        key = _key(event)
        if key in self._backlog:
            self._backlog[key].repeats += 1
        elif len(self._backlog) < self.backlog_max:
            self._backlog[key] = _Held(event)
        else:
            self.backlog_lost += 1

    def _hold_again(self, items: list[_Held], lost: int) -> None:
        """Put alerts whose transaction rolled back in front of what was held meanwhile."""
        self.backlog_lost += lost
        if not items:
            return
        newer, self._backlog = self._backlog, {}
        for item in items:
            self._backlog[_key(item.event)] = item
        for key, item in newer.items():
            if key in self._backlog:
                self._backlog[key].repeats += item.repeats
            else:
                self._backlog[key] = item

    async def record(self, db: Any, event: Event) -> None:
        async with db.session() as s:
            self.stage(s, event)

    async def announce(self, db: Any, event: Event) -> None:
        """``record`` when the database is reachable; otherwise publish in memory and hold it."""
        try:
            await self.record(db, event)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            if not self._backlog:  # the first of an outage, with its traceback; the rest quietly
                log.warning("could not store alert %s (%s); shown locally, held until the database is back",
                            event.kind, reason, exc_info=True)
            else:
                log.debug("could not store alert %s (%s); held", event.kind, reason)
            if self.outbox is not None:
                self._hold(event)
            self.publish(event)

    async def flush(self, db: Any) -> int:
        """Store the held alerts now (in a transaction of their own); returns how many were written.

        Raises what the database raises; the alerts stay held then."""
        if not self._backlog and not self.backlog_lost:
            return 0
        count = len(self._backlog)
        async with db.session() as s:
            self._stage_backlog(s)
        return count

    def subscribe(self) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue(self._maxsize)
        self._subs.append(q)
        return q

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
        return (f"alerts to {self.destination} are failing ({self.failures} attempts, last: {self.error}); "
                "they are kept and retried")


@dataclass(frozen=True, kw_only=True)
class PairsChanged(Event):
    """A pair added to or removed from trading from chat (``/pairs``). ``change``: ``added``,
    ``removed``, or ``closing`` (removed with ``keep``: no new entries, exits managed until its
    position is closed, then a ``removed`` follows); ``note`` says what happened to its position."""

    kind: ClassVar[str] = "pairs_changed"
    severity: ClassVar[str] = "warning"
    pair: str
    change: str
    by: str
    pairs: tuple[str, ...]  # the traded pairs afterwards
    note: str = ""

    def summary(self) -> str:
        what = {"added": "added to trading", "removed": "removed from trading",
                "closing": "removed from trading once its position is closed (no new entries)"}.get(self.change,
                                                                                                 self.change)
        note = f" ({self.note})" if self.note else ""
        return f"pair {self.pair} {what} by {self.by}{note}; traded pairs: {', '.join(self.pairs)}"
