"""The outbox dispatcher: delivers waiting alerts per destination, in order, within rate limits.

- One task per destination, named ``outbox:<destination>``, under the dispatcher's
  :class:`~core.runtime.Supervisor`. A destination is served by one dispatcher at a time across all
  replicas: the task holds a lease named ``outbox:<destination>`` (the same lease mechanism as the
  leader election), and re-checks it before each send. Any number of replicas may run dispatchers.
- Rows are sent oldest first. When more than ``digest_after`` wait, they go out as digests of
  ``digest_lines`` alerts, so a burst of 1,000 events becomes ~25 readable messages, not an hour of
  queue. Nothing is dropped: a digest marks exactly the rows it contains.
- Each row is worded when it is sent (:mod:`bot.notify.formats`: per event kind, in ``timezone``, with
  display names beside ids, internals only with ``notify.verbose``); a digest line carries its alert's
  local time and severity mark.
- A failure keeps the rows pending and backs off exponentially (or for the platform's
  ``retry_after``). After ``failing_warn_after`` consecutive failures the other destinations get a
  warning once per outage.
- Progress is recorded so that a database outage cannot repeat a message. Before the POST the rows
  are claimed (``claimed_by``) in the database; once the platform accepted them, the dispatcher
  remembers their ids and marks them delivered, retrying that mark until it sticks before it sends
  or reads anything else. A replica that takes the destination over and finds rows claimed by
  another instance gives that instance ``claim_grace_s`` to mark them (it may be alive and waiting
  for the database, as this one would), then sends them.
- A sender raises :class:`DeliveryError` and nothing else, so anything else it raises is a bug, not
  weather: retrying would post the same message again and again. That destination's task ends; the
  supervisor logs it and reports it through ``on_failure`` (the service's shows the destination as a
  component down while trading goes on: the policy in :mod:`core.runtime.lifecycle`), and
  :meth:`OutboxDispatcher.stop` releases the claim, so the rows stay due. The database failing is
  weather: the task retries every ``poll_s``.
- So a message repeats only after a crash (or a stop while the database is still away) between the
  platform accepting it and the mark (it is sent again after ``claim_grace_s``), or when a post's
  answer was lost (a timeout after the platform had accepted it), which is retried like any failure.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select

from bot.notify.formats import Alert, Style, from_payload
from bot.notify.ratelimit import PacingObserver, TokenBucket
from bot.notify.senders import AlertMessage, DeliveryError, Sender
from bot.retrying import Escalating
from core.ops import Lease, OutboxWriter
from core.runtime import Supervisor, TaskFailed, finish
from core.settings import Destination, NotifySettings
from core.trading import DestinationFailing, EventBus
from exchanges.retry import Backoff
from persistence.db import Database
from persistence.models import DisplayNameRow, OutboxRow

log = logging.getLogger("tradectl.notify")


class OutboxDispatcher:
    name = "outbox-dispatcher"

    def __init__(
        self,
        db: Database,
        settings: NotifySettings,
        senders: Mapping[str, Sender],
        *,
        instance_id: str,
        targets: Mapping[str, str] | None = None,
        poll_s: float = 0.5,
        lease_ttl_s: float = 15.0,
        base_backoff_s: float = 1.0,
        claim_grace_s: float | None = None,
        events: EventBus | None = None,
        timezone: str = "UTC",
        pacing: PacingObserver | None = None,
        on_failure: Callable[[TaskFailed], None] | None = None,
    ) -> None:
        """``on_failure`` hears of a destination's task that crashed (a sender that raised something
        other than :class:`DeliveryError`); the service passes one that shows the destination as a component
        down (trading goes on)."""
        self.db = db
        self.pacing = pacing  # told each wait of a destination's pace (the metrics, when enabled)
        self.settings = settings
        self.senders = senders
        self.instance_id = instance_id
        self.targets = dict(targets or {})
        self.poll_s = poll_s
        self.lease_ttl_s = lease_ttl_s
        self.base_backoff_s = base_backoff_s
        self.claim_grace_s = lease_ttl_s if claim_grace_s is None else claim_grace_s
        self.events = events  # its held alerts (written while the database was away) are flushed here
        self.timezone = timezone  # alerts show local times (service.timezone)
        self._names: dict[str, str] = {}  # actor key -> display name, shown beside ids in alerts
        self._names_at = -1e9
        self._unmarked: dict[str, list[int]] = {}  # destination -> rows the platform accepted, not yet marked
        self._foreign: dict[int, float] = {}  # row id claimed by another instance -> when we first saw it
        self._resent: set[int] = set()
        self._in_flight: dict[str, list[int]] = {}  # destination -> rows being POSTed right now
        self._tasks = Supervisor("outbox", on_failure)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._held: dict[str, tuple[Lease, int]] = {}

    def destinations(self) -> list[Destination]:
        return [d for d in self.settings.destinations if d.platform in self.senders]

    async def start(self) -> None:
        if self._tasks.running():
            return
        self._stopping.clear()
        for dest in self.destinations():
            self._tasks.spawn(f"outbox:{dest.name}", self._serve(dest))
        for dest in self.settings.destinations:
            if dest.platform != "console" and dest.platform not in self.senders:
                log.warning("alert destination %s: %s is not configured; its alerts wait in the outbox",
                            dest.name, dest.platform)

    def poke(self) -> None:
        self._wake.set()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Finish the message in flight (so it is marked delivered and never repeated), then stop;
        a send still hanging after ``grace_s`` is cancelled and its rows stay due. A task that ends with
        an error meanwhile is reported by the supervisor, as at any other time."""
        self._stopping.set()
        self._wake.set()
        await finish([t for name in self._tasks.running() if (t := self._tasks.task(name)) is not None], grace_s)
        for name, ids in list(self._unmarked.items()):
            try:
                await self._delivered(ids)
                del self._unmarked[name]
            except Exception:  # noqa: BLE001 - the database is still away; say what may repeat
                log.error("alerts to %s were delivered but could not be marked (database unreachable): "
                          "outbox rows %s may be sent again after the restart", name, ids)
        for name, ids in list(self._in_flight.items()):  # a send cut short by the stop: let the next sender go at once
            try:
                await self._release(ids)
            except Exception:  # noqa: BLE001 - then the next sender waits claim_grace_s for them
                log.warning("could not release the claim on outbox rows %s for %s", ids, name)
        self._in_flight.clear()
        # hand the destinations back so another replica (or our own restart) resumes at once
        for lease, epoch in list(self._held.values()):
            try:
                await lease.release(self.instance_id, epoch)
            except Exception:
                log.warning("could not release %s", lease.name, exc_info=True)
        self._held.clear()

    async def _serve(self, dest: Destination) -> None:
        lease = Lease(self.db, f"outbox:{dest.name}")
        bucket = TokenBucket(self.settings.per_destination_rate, 3)
        sender = self.senders[dest.platform]
        target = self.targets.get(dest.name, dest.target)
        failures = 0
        retries = Escalating(Backoff(initial_s=self.base_backoff_s, max_s=self.settings.max_backoff_s, jitter=0))
        warned = False
        epoch: int | None = None
        renewed = 0.0
        db_errors = 0
        broken: Exception | None = None  # what the sender raised besides DeliveryError: this task ends with it
        while not self._stopping.is_set():
            try:
                # what the platform accepted is marked before anything else is read or sent
                unmarked = self._unmarked.get(dest.name)
                if unmarked:
                    await self._delivered(unmarked)
                    del self._unmarked[dest.name]
                if self.events is not None and await self.events.flush(self.db):
                    self.poke()
                if epoch is None or time.monotonic() - renewed > self.lease_ttl_s / 3:
                    epoch = await lease.acquire(self.instance_id, self.lease_ttl_s)
                    renewed = time.monotonic()
                    if epoch is None:
                        self._held.pop(dest.name, None)
                    else:
                        self._held[dest.name] = (lease, epoch)
                if db_errors:
                    log.info("alert dispatcher for %s: database reachable again after %d failed attempts",
                             dest.name, db_errors)
                    db_errors = 0
                if epoch is None:
                    await self._pause(self.poll_s)
                    continue
                rows = await self._due(dest.name)
                if not rows:
                    await self._idle()
                    continue
                if self._claimed_elsewhere(rows):
                    await self._pause(self.poll_s)
                    continue
                wait = bucket.wait_time()
                if wait > 0:
                    slowed = bucket.blocked()  # a 429's wait: counted when it was answered, below
                    paused = time.monotonic()
                    await self._pause(wait)  # ends early when the dispatcher stops
                    if self.pacing is not None and not slowed:
                        self.pacing.chat_send_waited(dest.platform, "pace", time.monotonic() - paused)
                    continue
                batch, message = self._compose(rows, sender.max_chars, await self._style())
                if not await lease.holds(self.instance_id, epoch):
                    epoch = None
                    continue
                if not await self._claim(batch):
                    continue  # marked meanwhile (by a predecessor that came back): read again
                bucket.take()
                self._in_flight[dest.name] = [r.id for r in batch if r.id is not None]
                try:
                    await sender.send(target, message)
                except DeliveryError as exc:
                    del self._in_flight[dest.name]
                    failures += 1
                    delay = retries.next()  # a 429 counts as a failure too, as for the warning below
                    if exc.retry_after is not None:
                        bucket.block_for(exc.retry_after)
                        delay = exc.retry_after
                        if self.pacing is not None:  # the rows wait that long (their next attempt) and the bucket
                            self.pacing.chat_send_waited(dest.platform, "retry_after", delay)
                    await self._failed(batch, str(exc), delay, permanent=not exc.retryable)
                    log.warning("alert delivery to %s failed (%d): %s; retry in %.1fs", dest.name, failures, exc, delay)
                    if failures >= self.settings.failing_warn_after and not warned:
                        warned = True
                        await self._warn_others(dest.name, failures, str(exc))
                    continue
                except Exception as exc:
                    broken = exc
                    raise
                self._unmarked[dest.name] = self._in_flight.pop(dest.name)
                failures = 0
                retries.reset()
                warned = False
                await self._delivered(self._unmarked[dest.name])
                del self._unmarked[dest.name]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if exc is broken:
                    raise  # a bug in the sender: retrying it would repeat the message (see the module doc)
                db_errors += 1
                if db_errors == 1:
                    log.warning("alert dispatcher for %s hit an error; retrying every %.1fs%s", dest.name, self.poll_s,
                                " (a delivered alert waits to be marked)" if self._unmarked.get(dest.name) else "",
                                exc_info=True)
                else:
                    log.debug("alert dispatcher for %s: still failing: %s", dest.name, exc)
                await self._pause(self.poll_s)

    def _claimed_elsewhere(self, rows: list[OutboxRow]) -> bool:
        """True while a row claimed by another instance is within its grace period.

        The claimant sent it (or was about to) and may be alive, waiting for the database to mark
        it; after ``claim_grace_s`` from when we first saw the claim, it is taken to have crashed."""
        now = time.monotonic()
        waiting = False
        for row in rows:
            if row.id is None or row.claimed_by in ("", self.instance_id):
                continue
            first = self._foreign.setdefault(row.id, now)
            if now - first < self.claim_grace_s:
                waiting = True
            elif row.id not in self._resent:
                self._resent.add(row.id)
                log.warning("outbox row %s was claimed by %s, which never marked it delivered; sending it "
                            "(it may repeat once)", row.id, row.claimed_by)
        if len(self._foreign) > 10_000:
            self._foreign.clear()
            self._resent.clear()
        return waiting

    async def _pause(self, seconds: float) -> None:
        """Sleep, cut short by :meth:`stop`."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def _idle(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), self.poll_s)
        except TimeoutError:
            pass
        self._wake.clear()

    async def _due(self, destination: str) -> list[OutboxRow]:
        now = datetime.now(UTC)
        limit = max(self.settings.digest_lines, self.settings.digest_after + 1)
        async with self.db.session() as s:
            stmt = (select(OutboxRow).where(OutboxRow.destination == destination, OutboxRow.status == "pending")
                    .order_by(col(OutboxRow.id)).limit(limit))
            rows = list((await s.exec(stmt)).all())
        # strict order: if the oldest row is backing off, nothing behind it overtakes it
        if rows and rows[0].next_attempt_at > now:
            return []
        return rows

    async def _style(self) -> Style:
        """How alerts read here: local time, verbosity, and display names (re-read once a minute)."""
        if time.monotonic() - self._names_at > 60:
            try:
                async with self.db.session() as s:
                    rows = (await s.exec(select(DisplayNameRow.platform, DisplayNameRow.user_id,
                                                DisplayNameRow.name))).all()
                self._names = {f"{p}:{u}": n for p, u, n in rows if n}
            except Exception:
                log.debug("display names unavailable", exc_info=True)
            self._names_at = time.monotonic()
        return Style(timezone=self.timezone, verbose=self.settings.verbose, names=self._names)

    def _compose(self, rows: list[OutboxRow], max_chars: int,
                 style: Style | None = None) -> tuple[list[OutboxRow], AlertMessage]:
        """One alert (or, with a backlog, a digest of one line per alert with its local time and severity
        mark), formatted per event kind (:mod:`bot.notify.formats`)."""
        style = style or Style(timezone=self.timezone, verbose=self.settings.verbose)
        now = datetime.now(UTC)
        if len(rows) <= self.settings.digest_after:
            row = rows[0]
            payload = json.loads(row.payload)
            alert = from_payload(payload, style, now=now)
            lines = tuple(line[: max_chars - 50] for line in alert.text_lines())
            image = base64.b64decode(payload["image"]) if payload.get("image") else None
            return [row], AlertMessage(row.event_type, row.severity, lines, row.silent, image=image, alerts=(alert,))
        batch: list[OutboxRow] = []
        alerts: list[Alert] = []
        budget = max_chars - 100  # room for the digest header
        for r in rows[: self.settings.digest_lines]:
            payload = json.loads(r.payload)
            if payload.get("image") and batch:
                break  # a report with a chart goes out on its own, never flattened into a digest
            alert = from_payload(payload, style, now=now)
            text = alert.one_line()
            if batch and budget - (len(text) + 4) < 0:
                break
            budget -= len(text) + 4
            batch.append(r)
            alerts.append(alert)
        lines = tuple(a.one_line() for a in alerts)
        worst = max(batch, key=lambda r: ("info", "warning", "error", "critical").index(r.severity))
        return batch, AlertMessage("digest", worst.severity, lines, all(r.silent for r in batch), digest=True,
                                   alerts=tuple(alerts))

    async def _claim(self, batch: list[OutboxRow]) -> bool:
        """Record, before the POST, that this instance is sending these rows."""
        until = datetime.now(UTC) + timedelta(seconds=self.lease_ttl_s)
        ids = [r.id for r in batch]
        async with self.db.session() as s:
            res = await s.exec(update(OutboxRow).where(col(OutboxRow.id).in_(ids), col(OutboxRow.status) == "pending")
                               .values(claimed_by=self.instance_id, claimed_until=until))
        return bool(res.rowcount == len(ids))

    async def _release(self, ids: list[int]) -> None:
        async with self.db.session() as s:
            await s.exec(update(OutboxRow).where(col(OutboxRow.id).in_(ids), col(OutboxRow.status) == "pending",
                                                 col(OutboxRow.claimed_by) == self.instance_id)
                         .values(claimed_by="", claimed_until=None))

    async def _delivered(self, ids: list[int]) -> None:
        now = datetime.now(UTC)
        async with self.db.session() as s:
            await s.exec(update(OutboxRow).where(col(OutboxRow.id).in_(ids), col(OutboxRow.status) == "pending")
                         .values(status="delivered", delivered_at=now, claimed_by=self.instance_id))

    async def _failed(self, batch: list[OutboxRow], error: str, delay: float, *, permanent: bool) -> None:
        later = datetime.now(UTC) + timedelta(seconds=delay)
        ids = [r.id for r in batch]
        async with self.db.session() as s:
            for row in (await s.exec(select(OutboxRow).where(col(OutboxRow.id).in_(ids)))).all():
                row.attempts += 1
                row.last_error = error[:500]
                row.next_attempt_at = later
                row.claimed_by, row.claimed_until = "", None  # not sent: nobody needs to wait for a mark
                if permanent and row.attempts >= 10:
                    row.status = "failed"
                s.add(row)

    async def _warn_others(self, failing: str, failures: int, error: str) -> None:
        others = tuple(d for d in self.settings.destinations if d.name != failing)
        writer = OutboxWriter(self.settings.model_copy(update={"destinations": others}))
        event = DestinationFailing(destination=failing, failures=failures, error=error[:200])
        async with self.db.session() as s:
            writer.write(s, event)
        self.poke()

    async def pending(self, destination: str | None = None) -> int:
        async with self.db.session() as s:
            stmt = select(OutboxRow.id).where(OutboxRow.status == "pending")
            if destination:
                stmt = stmt.where(OutboxRow.destination == destination)
            return len((await s.exec(stmt)).all())
