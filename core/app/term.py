"""One leadership term's work, started when this instance wins the lease and stopped when it loses it.

Order on election: Telegram polling first (briefly: it never holds up trading for long), so a takeover
is polling at once, while commands fetched meanwhile wait, unconfirmed, until the trading core is up;
then the trading core, the scheduler's timetable, and the Discord gateway. Losing the lease stops them
in the reverse order. The elector calls :meth:`LeaderTerm.elected` and :meth:`LeaderTerm.lost`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from core.app.trading_core import TradingCore
from core.ops.scheduler import LeaderScheduler

if TYPE_CHECKING:
    from bot.platforms.discord import DiscordGateway
    from bot.platforms.telegram import TelegramPolling


class LeaderTerm:
    """The leader work: the trading core and scheduler always, Telegram polling and the Discord
    gateway when configured (two pollers or two gateways on one token would both answer)."""

    def __init__(self, trading: TradingCore, scheduler: LeaderScheduler, *, telegram: TelegramPolling | None = None,
                 discord: DiscordGateway | None = None) -> None:
        self._trading = trading
        self._scheduler = scheduler
        self._telegram = telegram
        self._discord = discord

    async def elected(self, epoch: int) -> None:
        ready = asyncio.Event()
        if self._telegram is not None:
            await self._telegram.lead(epoch, ready=ready)
            await self._telegram.wait_polling(timeout=1.0)
        await self._trading.start()
        await self._scheduler.on_elected(epoch)
        ready.set()
        if self._discord is not None:
            await self._discord.start(epoch)  # returns at once; connects (and reconnects) in its own task

    async def lost(self) -> None:
        if self._discord is not None:
            await self._discord.stop()
        if self._telegram is not None:
            await self._telegram.step_down()
        await self._scheduler.on_lost()
        await self._trading.stop()
