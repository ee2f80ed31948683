"""Builds the service's components from the settings (called by :mod:`core.app.app`).

Order: instance lock (the proof of this process's life a restart uses to take over at once, see
:mod:`core.app.instance_lock`) -> event-loop lag watch -> metrics and health endpoints (when enabled) ->
heartbeat -> outbox dispatcher -> leader election (whose term starts the trading core, then Telegram polling, see
:mod:`core.app.term`) -> chat (console). Everything is constructed here, complete, and passed in; nothing reaches
for globals and nothing is attached after construction. What outlives a leadership term reads the term's state
when it needs it (:class:`~core.ops.leader.Leadership`, :class:`~core.app.trading_core.TradingCore`), so the objects
can be built in dependency order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.app.instance_lock import InstanceLock
from core.app.standby import LeaderBoundService, Reports
from core.app.term import LeaderTerm
from core.app.trading_core import TradingCore
from core.ops.components import ComponentHealth, ComponentPublisher
from core.ops.heartbeat import Heartbeat, new_instance_id
from core.ops.leader import LeaderElector, Leadership, Lease
from core.ops.loop_lag import LagAlarm, LoopLagMonitor, LoopLagWatch
from core.ops.outbox import OutboxWriter
from core.ops.reports import standard_jobs
from core.ops.scheduler import LeaderScheduler
from core.runtime.lifecycle import CallbackComponent, Component, TaskFailed
from core.settings.config import Settings
from core.trading.events import EventBus
from persistence.db import Database

if TYPE_CHECKING:
    import ssl
    from typing import Protocol

    from bot.dispatcher import Dispatcher
    from bot.notify import Sender
    from bot.platforms.discord import DiscordGateway
    from bot.platforms.telegram import TelegramPolling
    from core.ops.instruments import Instruments

    class _AlertSender(Sender, Protocol):
        async def aclose(self) -> None: ...

log = logging.getLogger("tradectl.wiring")

OnFailure = Callable[[TaskFailed], None]


async def build_components(
    settings: Settings,
    db: Database,
    *,
    on_failure: OnFailure,
    stop_event: asyncio.Event,
    exit_after_input: bool,
    version: str,
    redact: Callable[[str], str] | None = None,
) -> list[Component]:
    """Every component of one instance, in start order (they stop in reverse). ``on_failure`` hears of
    a long-lived task that crashed; the service then stops with exit 1 (core/runtime/lifecycle.py)."""
    from bot.app import build_console, build_dispatcher, stdin_is_readable

    instance_id = new_instance_id()
    instance_lock = InstanceLock(settings.service.data_dir / "instances", instance_id)
    events = EventBus(outbox=OutboxWriter(settings.notify, label=settings.trading.paper_label))
    wants_console = settings.chat.console == "on" or (settings.chat.console == "auto" and stdin_is_readable())
    console_events = events.subscribe() if wants_console else None  # an unread queue would only grow

    instruments = _instruments(settings)
    leadership = Leadership(Lease(db, f"leader:{settings.service.group}"), instance_id)
    trading = TradingCore(settings, db, events, instance_id=instance_id, leader=leadership.label,
                          on_failure=lambda exc: on_failure(TaskFailed("trading-core", exc)), instruments=instruments)
    health = ComponentHealth()  # chat adapters report here; /health and `tradectl health` read it
    scheduler, service = _services(settings, db, events, trading, leadership, health, instruments)
    dispatcher = build_dispatcher(db, service, settings.chat, redact=redact, instance_id=instance_id,
                                  timezone=settings.service.timezone, observer=instruments)
    loop_lag = _loop_lag_watch(settings, db, events, health)
    tls = _SharedTLS()
    senders = _alert_senders(settings, tls)
    chat = _chat_adapters(settings, dispatcher, leadership, health, on_failure, tls, instruments)

    term = LeaderTerm(trading, scheduler, telegram=chat.telegram, discord=chat.discord)
    lead = settings.leader
    elector = LeaderElector(db, group=settings.service.group, instance_id=instance_id, events=events,
                            on_elected=term.elected, on_lost=term.lost, ttl_s=lead.ttl_s, renew_s=lead.renew_s,
                            step_down_s=lead.step_down_s, follower_poll_s=lead.follower_poll_s,
                            death_proof=instance_lock, leadership=leadership, on_failure=on_failure)
    heartbeat = Heartbeat(db, instance_id=instance_id, group=settings.service.group,
                          interval_s=settings.service.heartbeat_interval_s, version=version,
                          role=leadership.role, state=trading.state_name, on_failure=on_failure)

    from bot.notify import OutboxDispatcher

    outbox = OutboxDispatcher(db, settings.notify, senders.by_platform, instance_id=instance_id, events=events,
                              timezone=settings.service.timezone, pacing=instruments,
                              on_failure=health.task_failed)  # a sender's bug stops its destination, not trading
    components: list[Component] = [
        instance_lock, loop_lag, *_metrics(settings, db, events, service, leadership, loop_lag.monitor, instruments),
        heartbeat, ComponentPublisher(db, health, instance_id=instance_id, on_failure=on_failure),
        # before the adapters, so it stops after them: the flood counts of the open audit windows are
        # written once no more chat input can arrive
        CallbackComponent("chat-audit", _noop, dispatcher.flush),
        *senders.components, *([chat.telegram] if chat.telegram else []),
        outbox, elector, *chat.every_replica,
    ]
    console = build_console(dispatcher, settings.chat, events=console_events,
                            on_eof=stop_event.set if exit_after_input else None,
                            image_dir=settings.service.data_dir / "images", label=settings.trading.paper_label)
    if console is not None:
        components.append(console)
    elif exit_after_input:
        log.info("no console input (stdin is not readable): --exit-after-input stops the service at once")
        stop_event.set()
    return components


def _services(settings: Settings, db: Database, events: EventBus, trading: TradingCore, leadership: Leadership,
              health: ComponentHealth, instruments: Instruments | None) -> tuple[LeaderScheduler, LeaderBoundService]:
    """The scheduler with its jobs, and the service the chat layer talks to (trading and reports).

    The jobs query trading through a service of their own, so the scheduler exists before the chat's
    service that reports on it."""
    pairs, quote = settings.trading.pairs, settings.trading.quote
    trading_only = LeaderBoundService(pairs, trading.current_engine, leadership.label)
    jobs = standard_jobs(db, trading_only, settings.schedule, quote=quote, instance_id=leadership.instance_id,
                         venue=trading.current_exchange, now=trading.now)
    scheduler = LeaderScheduler(db, settings.schedule, jobs, instance_id=leadership.instance_id, events=events,
                                observer=instruments)
    reports = Reports(db, scheduler, engine=trading.current_engine, now=trading.now,
                      timezone=settings.schedule.timezone, quote=quote)
    service = LeaderBoundService(pairs, trading.current_engine, leadership.label, reports=reports, components=health)
    return scheduler, service


def _instruments(settings: Settings) -> Instruments | None:
    """The series the dispatcher, the scheduler and a live venue push into, when ``metrics.enabled``
    (None otherwise: nothing is observed, prometheus_client is not even imported)."""
    if not settings.metrics.enabled:
        return None
    from core.ops.instruments import Instruments

    return Instruments()


def _loop_lag_watch(settings: Settings, db: Database, events: EventBus, health: ComponentHealth) -> LoopLagWatch:
    """The event-loop lag, measured on every replica whether or not metrics are served: shown in /health,
    alerted in chat (service.loop_lag_alert_ms, 0 = never) and exported when metrics are on."""
    svc = settings.service
    threshold_s = svc.loop_lag_alert_ms / 1000 if svc.loop_lag_alert_ms > 0 else float("inf")
    return LoopLagWatch(LoopLagMonitor(), LagAlarm(threshold_s=threshold_s, for_s=svc.loop_lag_alert_for_s), health,
                        lambda event: events.announce(db, event))


def _metrics(settings: Settings, db: Database, events: EventBus, service: LeaderBoundService,
             leadership: Leadership, loop_lag: LoopLagMonitor, instruments: Instruments | None) -> list[Component]:
    """The metrics and health-endpoint listener (docs/metrics.md), when ``metrics.enabled``; started early and
    stopped late, so /livez and /readyz answer while the rest starts and stops."""
    if not settings.metrics.enabled:
        return []
    from core.ops.metrics import MetricsServer

    destinations = tuple(d.name for d in settings.notify.destinations if d.platform != "console")
    tr = settings.trading  # the engine's stale-data rule (core/trading/engine.py): live watches by default
    stale_after_s = tr.stale_data_s or (2 * tr.timeframe_s + 60 if tr.mode == "live" else 0)
    return [MetricsServer(settings.metrics, db, events=events, service=service, epoch=lambda: leadership.epoch,
                          loop_lag=loop_lag, group=settings.service.group, venue=settings.trading.venue,
                          destinations=destinations, instruments=instruments, instance_id=leadership.instance_id,
                          stale_after_s=float(stale_after_s))]


class _SharedTLS:
    """The one TLS context of the chat platforms' httpx clients (the Bot API, Discord's REST API, webhooks),
    made when the first of them is built: each client loading the CA bundle itself costs about 0.8 MiB, and
    a service with the three platforms has six. It is what httpx makes by default (certifi's CAs, or
    SSL_CERT_FILE / SSL_CERT_DIR). discord.py and slack-bolt use aiohttp, which shares its own already."""

    def __init__(self) -> None:
        self._context: ssl.SSLContext | None = None

    def __call__(self) -> ssl.SSLContext:
        if self._context is None:
            import httpx

            self._context = httpx.create_ssl_context()
        return self._context


@dataclass(frozen=True, slots=True)
class _Senders:
    by_platform: dict[str, Sender]
    components: list[Component]  # each closes its sender's connections


def _alert_senders(settings: Settings, tls: _SharedTLS) -> _Senders:
    """A sender per platform alerts can be delivered to, on every replica (the outbox delivers them).

    discord.py and slack-bolt are imported only when configured (they cost memory on a Pi)."""
    found: list[tuple[str, _AlertSender | None]] = []
    tg = settings.telegram
    if tg.token is not None and tg.token.get_secret_value():
        from bot.platforms.telegram import TelegramAlertSender

        found.append(("telegram", TelegramAlertSender(tg, tls=tls())))
    routed = {d.platform for d in settings.notify.destinations}
    if settings.discord.enabled or "discord" in routed:
        from bot.platforms.discord import alert_sender as discord_alerts

        found.append(("discord", discord_alerts(settings.discord, settings.notify, tls=tls())))
    if settings.slack.enabled or "slack" in routed:
        from bot.platforms.slack import alert_sender as slack_alerts

        found.append(("slack", slack_alerts(settings.slack, settings.notify, tls=tls())))
    senders = _Senders({}, [])
    for platform, sender in found:
        if sender is not None:
            senders.by_platform[platform] = sender
            senders.components.append(CallbackComponent(f"{platform}-alerts", _noop, sender.aclose))
    return senders


@dataclass(frozen=True, slots=True)
class _ChatAdapters:
    telegram: TelegramPolling | None  # leader work: only the leader polls the bot (docs/deployment.md)
    discord: DiscordGateway | None  # leader work too: two gateways on one token both answer
    every_replica: list[Component]  # Slack delivers each event to one connection, whichever replica


def _chat_adapters(settings: Settings, dispatcher: Dispatcher, leadership: Leadership, health: ComponentHealth,
                   on_failure: OnFailure, tls: _SharedTLS, instruments: Instruments | None) -> _ChatAdapters:
    """The adapters that read chat commands (the console apart)."""
    telegram: TelegramPolling | None = None
    tg = settings.telegram
    if tg.enabled:
        if tg.token is None or not tg.token.get_secret_value():
            raise ValueError("telegram.enabled needs telegram.token "
                             "(TRADECTL_TELEGRAM__TOKEN, a secret file or the vault)")
        from bot.platforms.telegram import TelegramPolling

        # connected on every replica; polls only while leading. The fence before each update: our epoch,
        # and the lease still ours in the database
        telegram = TelegramPolling(dispatcher, tg, fence=leadership.still_leader, on_conflict=leadership.recheck,
                                   health=health, tls=tls(), pacing=instruments)
    discord: DiscordGateway | None = None
    if settings.discord.enabled:
        from bot.platforms.discord import DiscordGateway

        discord = DiscordGateway(dispatcher, settings.discord, on_failure=on_failure, health=health)
    every_replica: list[Component] = []
    if settings.slack.enabled:
        from bot.platforms.slack import SlackAdapter

        every_replica.append(SlackAdapter(dispatcher, settings.slack, on_failure=on_failure, health=health))
    return _ChatAdapters(telegram, discord, every_replica)


async def _noop() -> None:
    return None
