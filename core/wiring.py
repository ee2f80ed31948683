"""Builds the service's components from the settings (called by :mod:`core.app`).

Order: instance lock (the proof of this process's life a restart uses to take over at once, see
:mod:`core.instance_lock`) -> heartbeat -> outbox dispatcher -> leader election (whose term starts the trading core,
then Telegram polling) -> chat (console). Everything is constructed here and passed in; nothing
reaches for globals.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.components import ComponentHealth, ComponentPublisher
from core.config import Settings
from core.events import EventBus
from core.heartbeat import Heartbeat, new_instance_id
from core.instance_lock import InstanceLock
from core.leader import LeaderElector
from core.lifecycle import Component, TaskFailed
from core.outbox import OutboxWriter
from core.standby import LeaderBoundService
from core.trading_core import TradingCore
from persistence.db import Database

if TYPE_CHECKING:
    from bot.discord import DiscordGateway
    from bot.telegram import TelegramPolling

log = logging.getLogger("tradectl.wiring")


async def build_components(
    settings: Settings,
    db: Database,
    *,
    on_failure: Callable[[TaskFailed], None],
    stop_event: asyncio.Event,
    exit_after_input: bool,
    version: str,
    redact: Callable[[str], str] | None = None,
) -> list[Component]:
    from bot.app import build_console, build_dispatcher
    from bot.notify import OutboxDispatcher, Sender

    instance_id = new_instance_id()
    instance_lock = InstanceLock(settings.service.data_dir / "instances", instance_id)
    events = EventBus(outbox=OutboxWriter(settings.notify))
    from bot.app import stdin_is_readable

    wants_console = settings.chat.console == "on" or (settings.chat.console == "auto" and stdin_is_readable())
    console_events = events.subscribe() if wants_console else None  # an unread queue would only grow

    def failed(exc: BaseException) -> None:
        on_failure(TaskFailed("trading-core", exc))

    elector: LeaderElector | None = None

    def leader_label() -> str | None:
        return elector.leader_label() if elector is not None else None

    core = TradingCore(settings, db, events, instance_id=instance_id, leader=leader_label, on_failure=failed)

    from core.reports import standard_jobs
    from core.scheduler import LeaderScheduler

    service = LeaderBoundService(settings.trading.pairs, lambda: core.engine, leader_label)
    scheduler = LeaderScheduler(
        db, settings.schedule,
        standard_jobs(db, service, settings.schedule, quote=settings.trading.quote, instance_id=instance_id,
                      venue=lambda: core.exchange,
                      now=lambda: core.engine.clock.now() if core.engine else datetime.now(UTC)),
        instance_id=instance_id, events=events)
    service.scheduler = scheduler
    service.db, service.timezone, service.quote = db, settings.schedule.timezone, settings.trading.quote
    health = ComponentHealth()  # chat adapters report here; /health and `tradectl health` read it
    service.components = health

    telegram: TelegramPolling | None = None  # leader work: only the leader polls the bot (docs/deployment.md)
    discord_gateway: DiscordGateway | None = None  # leader work too: two gateways on one token both answer

    async def elected(epoch: int) -> None:
        # Telegram first (briefly: it never holds up trading for long), so a takeover is polling at once;
        # commands fetched meanwhile wait, unconfirmed, until the core is up.
        ready = asyncio.Event()
        if telegram is not None:
            await telegram.lead(epoch, ready=ready)
            await telegram.wait_polling(timeout=1.0)
        await core.start()
        await scheduler.on_elected(epoch)
        ready.set()
        if discord_gateway is not None:
            await discord_gateway.start(epoch)  # returns at once; connects (and reconnects) in its own task

    async def lost() -> None:
        if discord_gateway is not None:
            await discord_gateway.stop()
        if telegram is not None:
            await telegram.step_down()
        await scheduler.on_lost()
        await core.stop()

    lead = settings.leader
    elector = LeaderElector(db, group=settings.service.group, instance_id=instance_id, events=events,
                            on_elected=elected, on_lost=lost, ttl_s=lead.ttl_s, renew_s=lead.renew_s,
                            step_down_s=lead.step_down_s, follower_poll_s=lead.follower_poll_s,
                            death_proof=instance_lock)
    heartbeat = Heartbeat(db, instance_id=instance_id, group=settings.service.group,
                          interval_s=settings.service.heartbeat_interval_s, version=version,
                          role=lambda: "leader" if elector.is_leader else "follower",
                          state=lambda: core.engine.state.state if core.engine else "standby")
    dispatcher = build_dispatcher(db, service, settings.chat, redact=redact, instance_id=instance_id,
                                  timezone=settings.service.timezone)
    senders: dict[str, Sender] = {}
    components: list[Component] = [instance_lock, heartbeat, ComponentPublisher(db, health, instance_id=instance_id)]
    from core.lifecycle import CallbackComponent

    # Listed before the adapters, so it stops after them: the flood counts of the open audit windows
    # are written once no more chat input can arrive.
    components.append(CallbackComponent("chat-audit", _noop, dispatcher.flush))
    tg = settings.telegram
    if tg.token is not None and tg.token.get_secret_value():
        from bot.telegram import TelegramAlertSender, TelegramPolling
        from core.lifecycle import CallbackComponent

        alerts = TelegramAlertSender(tg)
        senders["telegram"] = alerts
        components.append(CallbackComponent("telegram-alerts", _noop, alerts.aclose))
        if tg.enabled:
            term = elector

            async def still_leader(epoch: int) -> bool:
                """The fence checked before each update: our epoch, and the lease still ours in the database."""
                return term.epoch == epoch and await term.lease.holds(instance_id, epoch)

            telegram = TelegramPolling(dispatcher, tg, fence=still_leader, on_conflict=term.recheck, health=health)
            components.append(telegram)  # connected on every replica; polls only while leading
    elif tg.enabled:
        raise ValueError("telegram.enabled needs telegram.token (TRADECTL_TELEGRAM__TOKEN, a secret file or the vault)")
    from core.lifecycle import CallbackComponent

    # discord.py and slack-bolt are imported only when configured (they cost memory on a Pi)
    routed = {d.platform for d in settings.notify.destinations}
    chat_senders = []
    if settings.discord.enabled or "discord" in routed:
        from bot.discord import alert_sender as discord_alerts

        chat_senders.append(("discord", discord_alerts(settings.discord, settings.notify)))
    if settings.slack.enabled or "slack" in routed:
        from bot.slack import alert_sender as slack_alerts

        chat_senders.append(("slack", slack_alerts(settings.slack, settings.notify)))
    for platform, sender in chat_senders:
        if sender is not None:
            senders[platform] = sender
            components.append(CallbackComponent(f"{platform}-alerts", _noop, sender.aclose))
    if settings.discord.enabled:
        from bot.discord import DiscordGateway

        discord_gateway = DiscordGateway(dispatcher, settings.discord, on_failure=on_failure, health=health)
    outbox = OutboxDispatcher(db, settings.notify, senders, instance_id=instance_id, events=events,
                              timezone=settings.service.timezone)

    components += [outbox, elector]
    if settings.slack.enabled:  # every replica: Slack delivers each event to one connection
        from bot.slack import SlackAdapter

        components.append(SlackAdapter(dispatcher, settings.slack, on_failure=on_failure, health=health))
    console = build_console(dispatcher, settings.chat, events=console_events,
                            on_eof=stop_event.set if exit_after_input else None,
                            image_dir=settings.service.data_dir / "images")
    if console is not None:
        components.append(console)
    elif exit_after_input:
        log.info("no console input (stdin is not readable): --exit-after-input stops the service at once")
        stop_event.set()
    return components


async def _noop() -> None:
    return None
