"""Prometheus metrics and the HTTP health endpoints, served by every replica on one listener.

:class:`MetricsServer` is a component (``start``/``stop``) that serves, inside the service's own event
loop (aiohttp, not prometheus_client's thread server):

* ``/metrics`` — the series listed in docs/metrics.md, from a registry of this service's own (no
  process-wide default registry: tests run several services in one process);
* ``/livez`` — 200 while the event loop answers (the handler running is the proof), with the loop lag;
* ``/readyz`` — 200 when the database answers and its schema is at head, 503 otherwise; the body names
  this replica's role (``leader`` or ``standby``).

Two kinds of series: counters fed by the :class:`~core.trading.events.EventBus` (orders, fills, kills,
pauses, leadership, failing alert destinations, every event by kind), counted as the events arrive; and
values read when Prometheus scrapes (trading state, equity, exposure, leadership, outbox backlog, loop lag,
memory, uptime). Labels are bounded: venue, side, purpose, exit kind, event kind, configured pairs and
destinations — never a user id or free text. Nothing here changes what it observes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psutil  # type: ignore[import-untyped]  # psutil ships no type information
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlmodel import col, func, select

from core.ops.instruments import Instruments
from core.ops.loop_lag import LoopLagMonitor
from core.runtime.lifecycle import Supervisor
from core.settings.settings_models import MetricsSettings
from core.trading.events import (
    AutoPaused,
    DestinationFailing,
    Event,
    EventBus,
    Killed,
    LeadershipChanged,
    OrderCancelled,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    PositionClosed,
    PositionOpened,
    StateChanged,
    describe,
)
from core.trading.state import TradingStatus
from core.trading.views import ServiceUnavailable, StatusView, TradingService
from persistence.db import Database
from persistence.migrate import current_revision, head_revision
from persistence.models import OutboxRow

log = logging.getLogger("tradectl.metrics")

CONSUME_TASK = "metrics:events"
STATES = tuple(str(s) for s in TradingStatus)
# From the change to the platform's acceptance: a poll interval or two normally, minutes while a platform fails.
DELIVERY_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True, slots=True)
class _Outbox:
    pending: int
    oldest_age_s: float


@dataclass(slots=True)
class _Scrape:
    """The values read at the last scrape; turned into series by :class:`_ScrapeCollector`."""

    status: StatusView | None = None
    leader: bool = False
    epoch: int | None = None
    outbox: dict[str, _Outbox] = field(default_factory=dict)
    rss_bytes: float = 0.0
    uptime_s: float = 0.0
    lag_ewma_s: float = 0.0
    lag_max_s: float = 0.0
    bus_dropped: int = 0
    bus_backlog: int = 0


class _ScrapeCollector(Collector):
    """Series computed from the trading service's views and the database when Prometheus scrapes."""

    def __init__(self, group: str, stale_after_s: float = 0.0) -> None:
        self.group = group
        self.stale_after_s = stale_after_s
        self.values = _Scrape()

    def collect(self) -> Iterable[Metric]:
        return list(self._metrics())

    def _metrics(self) -> Iterator[Metric]:
        v, g = self.values, self.group
        yield _gauge("tradectl_leader", "1 while this replica holds the group's leader lease", {"group": g},
                     1.0 if v.leader else 0.0)
        if v.epoch is not None:
            yield _gauge("tradectl_leader_epoch", "The epoch of this replica's current leadership term",
                         {"group": g}, float(v.epoch))
        yield _gauge("tradectl_uptime_seconds", "Seconds since this service started", {}, v.uptime_s)
        yield _gauge("tradectl_process_resident_memory_bytes", "Resident memory of this process", {}, v.rss_bytes)
        yield _gauge("tradectl_event_loop_lag_seconds", "Moving average (EWMA) of how late a 0.5 s sleep wakes up",
                     {}, v.lag_ewma_s)
        yield _gauge("tradectl_event_loop_lag_max_seconds", "Largest event-loop lag within the last 60 s", {},
                     v.lag_max_s)
        yield CounterMetricFamily("tradectl_events_dropped", "Events a slow in-process subscriber lost (its queue "
                                  "was full)", value=float(v.bus_dropped))
        yield _gauge("tradectl_alerts_held", "Alerts held in memory while the database could not store them", {},
                     float(v.bus_backlog))
        pending = GaugeMetricFamily("tradectl_outbox_pending", "Alerts waiting in the outbox, per destination",
                                    labels=["destination"])
        oldest = GaugeMetricFamily("tradectl_outbox_oldest_pending_age_seconds",
                                   "Age of the oldest alert waiting for a destination (0 when none)",
                                   labels=["destination"])
        for name, box in sorted(v.outbox.items()):
            pending.add_metric([name], float(box.pending))
            oldest.add_metric([name], box.oldest_age_s)
        yield pending
        yield oldest
        if v.status is not None:  # only the leader trades; a standby has no such series
            yield from _trading(v.status, g, self.stale_after_s)


def _gauge(name: str, doc: str, labels: dict[str, str], value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def _trading(st: StatusView, group: str, stale_after_s: float = 0.0) -> Iterator[Metric]:
    state = GaugeMetricFamily("tradectl_trading_state", "1 for the group's current trading state, 0 for the others",
                              labels=["group", "state"])
    for name in STATES:
        state.add_metric([group, name], 1.0 if str(st.state) == name else 0.0)
    yield state
    quote = {"quote": st.quote}
    yield _gauge("tradectl_equity_quote", "Equity (cash plus open positions at their marks)", quote, float(st.equity))
    yield _gauge("tradectl_cash_quote", "Cash in the quote currency", quote, float(st.cash))
    yield _gauge("tradectl_exposure_quote", "What the open positions are worth now", quote,
                 float(sum((p.value for p in st.positions), start=0)))
    yield _gauge("tradectl_unrealized_pnl_quote", "Unrealized PnL over the open positions", quote,
                 float(st.unrealized))
    yield _gauge("tradectl_pnl_today_quote", "Today's PnL (the service time zone's day)", quote, float(st.today_pnl))
    yield _gauge("tradectl_open_positions", "Open positions", {}, float(len(st.positions)))
    yield _gauge("tradectl_open_orders", "Orders open at the venue", {}, float(st.open_orders))
    age = GaugeMetricFamily("tradectl_market_data_age_seconds", "Age of the newest candle per configured pair",
                            labels=["pair"])
    for pair, seconds in sorted(st.data_age_s.items()):
        if seconds is not None:
            age.add_metric([pair], float(seconds))
    yield age
    if stale_after_s > 0:  # the engine pauses entries when a pair's data is older than this (trading.stale_data_s)
        yield _gauge("tradectl_market_data_stale_after_seconds", "Data older than this pauses entries", {},
                     stale_after_s)
        stale = GaugeMetricFamily("tradectl_market_data_stale", "1 while a pair's newest candle is older than the "
                                  "stale-data limit, else 0", labels=["pair"])
        for pair, seconds in sorted(st.data_age_s.items()):
            stale.add_metric([pair], 1.0 if seconds is not None and seconds > stale_after_s else 0.0)
        yield stale


class _EventCounters:
    """Counters fed by the event bus, registered in ``registry``."""

    def __init__(self, registry: Any, venue: str) -> None:
        self.venue = venue
        self.events = Counter("tradectl_events", "Events published by the service, by kind and severity",
                              ["kind", "severity"], registry=registry)
        self.orders = Counter("tradectl_orders", "Orders by outcome (placed, rejected, cancelled)",
                              ["venue", "outcome"], registry=registry)
        self.fills = Counter("tradectl_fills", "Fills received (partial ones included)", ["venue", "side", "partial"],
                             registry=registry)
        self.opened = Counter("tradectl_positions_opened", "Positions opened", ["venue"], registry=registry)
        self.closed = Counter("tradectl_positions_closed", "Positions closed, by what closed them",
                              ["venue", "exit_kind"], registry=registry)
        self.state_changes = Counter("tradectl_trading_state_changes", "Trading state changes, by the new state",
                                     ["state"], registry=registry)
        self.kills = Counter("tradectl_kills", "Kills, by whether the venue confirmed everything flat in time",
                             ["complete"], registry=registry)
        self.auto_pauses = Counter("tradectl_auto_pauses", "Entries paused by the service itself (a circuit breaker, "
                                   "a database outage)", registry=registry)
        self.leadership = Counter("tradectl_leadership_changes", "This replica became leader or stepped down",
                                  ["change"], registry=registry)
        self.destination_failing = Counter("tradectl_alert_destination_failures",
                                           "Alert destinations reported failing by the outbox dispatcher",
                                           ["destination"], registry=registry)
        for name in STATES:  # present from the first scrape, so rate() sees the first change
            self.state_changes.labels(name)

    def count(self, event: Event) -> None:
        self.events.labels(event.kind, event.severity).inc()
        venue = self.venue
        match event:
            case OrderPlaced():
                self.orders.labels(venue, "placed").inc()
            case OrderRejected():
                self.orders.labels(venue, "rejected").inc()
            case OrderCancelled():
                self.orders.labels(venue, "cancelled").inc()
            case OrderFilled():
                self.fills.labels(venue, event.side, "true" if event.partial else "false").inc()
            case PositionOpened():
                self.opened.labels(venue).inc()
            case PositionClosed():
                self.closed.labels(venue, str(event.exit_kind)).inc()
            case StateChanged():
                self.state_changes.labels(event.state).inc()
            case Killed():
                self.kills.labels("true" if event.complete else "false").inc()
            case AutoPaused():
                self.auto_pauses.inc()
            case LeadershipChanged():
                self.leadership.labels("elected" if event.leader else "stepped_down").inc()
            case DestinationFailing():
                self.destination_failing.labels(event.destination).inc()


class MetricsServer:
    """The operations listener of one service (see the module docstring).

    ``epoch()`` is this replica's leadership epoch (None while it does not lead); ``destinations`` are the
    configured alert destinations, shown with a backlog of 0 before any alert waits for them. ``instruments``
    (built by the wiring and handed to the dispatcher, the scheduler and a live venue too) hold the series
    pushed as things happen; their registry is the one served. ``instance_id`` picks the alerts this replica
    delivered, whose delivery latency each scrape adds to a histogram. ``stale_after_s`` is the engine's
    stale-data limit (0: not watched, no stale-data series)."""

    name = "metrics"

    def __init__(self, settings: MetricsSettings, db: Database, *, events: EventBus, service: TradingService,
                 epoch: Callable[[], int | None], loop_lag: LoopLagMonitor, group: str, venue: str,
                 destinations: tuple[str, ...] = (), instruments: Instruments | None = None,
                 instance_id: str = "", stale_after_s: float = 0.0) -> None:
        self.settings = settings
        self._db = db
        self._bus = events
        self._events = events.subscribe()
        self.service = service
        self._epoch = epoch
        self._lag = loop_lag
        self._destinations = destinations
        self._started = time.monotonic()
        self._head = head_revision()
        self.instruments = instruments if instruments is not None else Instruments()
        self.registry = self.instruments.registry
        self.counters = _EventCounters(self.registry, venue)
        self._instance_id = instance_id
        self._delivered_after = datetime.now(UTC)  # deliveries before this service started are not ours to time
        self._delivery = Histogram("tradectl_outbox_delivery_seconds", "From an alert's change being committed to "
                                   "the platform accepting it, per destination (deliveries by this replica)",
                                   ["destination"], buckets=DELIVERY_BUCKETS, registry=self.registry)
        for name in destinations:
            self._delivery.labels(name)
        self._scrape = _ScrapeCollector(group, stale_after_s)
        self.registry.register(self._scrape)
        self._scrape_errors = Counter("tradectl_metrics_scrape_errors", "Parts of a scrape that could not be read",
                                      ["part"], registry=self.registry)
        self._tasks = Supervisor("metrics")
        self._runner: web.AppRunner | None = None
        self._owns_lag = False
        self.port: int | None = None  # the bound port, once started (metrics.port 0 picks one)

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.settings.host, self.settings.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = _bound_port(runner)
        self._owns_lag = not self._lag.running  # the wiring's watch runs it; a standalone server runs its own
        await self._lag.start()
        self._tasks.spawn(CONSUME_TASK, self._consume())
        log.info("metrics and health endpoints on http://%s:%s/ (/metrics, /livez, /readyz)", self.settings.host,
                 self.port)

    async def stop(self) -> None:
        await self._tasks.stop()
        if self._owns_lag:
            await self._lag.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _consume(self) -> None:
        while True:
            event = await self._events.get()
            try:
                self.counters.count(event)
            except Exception:
                log.exception("could not count event %s", event.kind)

    # -- endpoints ---------------------------------------------------------------------------

    async def _metrics(self, _request: web.Request) -> web.Response:
        await self.refresh()
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _livez(self, _request: web.Request) -> web.Response:
        lag = self._lag.current()
        return web.json_response({"live": True, "loop_lag_s": round(lag.ewma_s, 6),
                                  "loop_lag_max_s": round(lag.max_s, 6), "loop_lag_window_s": lag.window_s})

    async def _readyz(self, _request: web.Request) -> web.Response:
        role = "leader" if self._epoch() is not None else "standby"
        body: dict[str, Any] = {"ready": False, "role": role, "schema_head": self._head}
        try:
            async with asyncio.timeout(self.settings.readiness_timeout_s):
                current = await current_revision(self._db)
        except Exception as exc:  # noqa: BLE001 - whatever the database says, the answer is "not ready"
            log.warning("readiness: the database did not answer: %s: %s", type(exc).__name__, str(exc)[:300])
            body["reason"] = f"database unreachable: {describe(exc)}"
            return web.json_response(body, status=503)
        body["schema"] = current
        if current != self._head:
            body["reason"] = f"database schema is at {current or 'empty'}, this version needs {self._head}"
            return web.json_response(body, status=503)
        body["ready"] = True
        return web.json_response(body)

    # -- values read at scrape time ----------------------------------------------------------------

    async def refresh(self) -> None:
        """Read what the scrape-time series show; a part that cannot be read is left out and counted."""
        values = _Scrape()
        epoch = self._epoch()
        values.leader, values.epoch = epoch is not None, epoch
        lag = self._lag.current()
        values.lag_ewma_s, values.lag_max_s = lag.ewma_s, lag.max_s
        values.uptime_s = time.monotonic() - self._started
        values.rss_bytes = float(psutil.Process().memory_info().rss)
        values.bus_dropped, values.bus_backlog = self._bus.dropped, self._bus.backlog
        if values.leader:
            try:
                values.status = await self.service.status()
            except ServiceUnavailable:
                values.status = None  # leadership is changing hands
            except Exception:
                log.warning("metrics: the trading status could not be read", exc_info=True)
                self._scrape_errors.labels("trading").inc()
        try:
            values.outbox = await self._outbox()
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: the outbox backlog could not be read: %s", describe(exc))
            self._scrape_errors.labels("outbox").inc()
        try:
            await self._deliveries()
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: the outbox deliveries could not be read: %s", describe(exc))
            self._scrape_errors.labels("deliveries").inc()
        self._scrape.values = values

    async def _deliveries(self) -> None:
        """Observe the delivery latency of the alerts this replica delivered since the last scrape."""
        if not self._instance_id:
            return
        stmt = (select(col(OutboxRow.destination), col(OutboxRow.created_at), col(OutboxRow.delivered_at))
                .where(col(OutboxRow.status) == "delivered", col(OutboxRow.claimed_by) == self._instance_id,
                       col(OutboxRow.delivered_at) > self._delivered_after))
        async with asyncio.timeout(self.settings.readiness_timeout_s), self._db.read() as s:
            rows = (await s.exec(stmt)).all()
        for destination, created, delivered in rows:
            if delivered is None:
                continue
            self._delivery.labels(destination).observe(max(0.0, (_aware(delivered) - _aware(created)).total_seconds()))
            self._delivered_after = max(self._delivered_after, _aware(delivered))

    async def _outbox(self) -> dict[str, _Outbox]:
        stmt = (select(col(OutboxRow.destination), func.count(), func.min(col(OutboxRow.created_at)))
                .where(col(OutboxRow.status) == "pending").group_by(col(OutboxRow.destination)))
        async with asyncio.timeout(self.settings.readiness_timeout_s), self._db.read() as s:
            rows = (await s.exec(stmt)).all()
        now = datetime.now(UTC)
        found = {name: _Outbox(0, 0.0) for name in self._destinations}
        for destination, count, oldest in rows:
            age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
            found[destination] = _Outbox(int(count), age)
        return found


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back naive; they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _bound_port(runner: web.AppRunner) -> int | None:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return None
