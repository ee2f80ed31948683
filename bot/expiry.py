"""Prompts that expired with nobody pressing them lose their buttons, and say so.

A press on an expired prompt already closes it and takes its buttons off (:mod:`bot.presses`); this
is for the prompts nobody pressed. Each platform adapter that posts prompts runs :meth:`ExpiredPrompts.run`
under its own supervisor while it can send: every few seconds it reads the open confirmations of its
platform that are past their expiry and whose message is known (``ConfirmationStore.attach``, called
when the platform answered the send), closes each with outcome ``expired`` by the same conditional
UPDATE a press uses, and edits only the ones it closed: one edit per prompt, even with several
replicas (Slack) or a press racing the sweep. The first sweep runs at start, so a prompt that expired
while the service was down is edited then.

Not done: a prompt whose send was never answered (the platform down at the time) has no known message
and keeps its buttons; a press on it still says it expired. An edit the platform refuses (the message
deleted, too old) is logged and not tried again: the confirmation is closed either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot import format as fmt
from bot.confirmations import ConfirmationStore, Pending, parse_payload
from bot.reply import Buttons, Reply

log = logging.getLogger("tradectl.bot.expiry")
SWEEP_INTERVAL_S = 5.0

Edit = Callable[[Pending, str], Awaitable[None]]


def prompt_nonce(reply: Reply | None) -> str | None:
    """The nonce of the confirmation ``reply`` asks for (its Confirm button), if it asks for one."""
    for block in reply.blocks if reply is not None else ():
        if isinstance(block, Buttons):
            for button in block.choices:
                parsed = parse_payload(button.payload)
                if parsed is not None and parsed[0] == "confirm":
                    return parsed[1]
    return None


def expired_note(pending: Pending, timezone: str, now: datetime) -> str:
    """``⌛ /kill: expired at 14:03 UTC — nothing was done; send /kill again.``"""
    asked = " ".join([f"/{pending.command}", *pending.tokens])
    return (f"⌛ {asked}: expired at {fmt.clock(pending.expires_at, timezone, now)} — nothing was done; "
            f"send /{pending.command} again.")


class ExpiredPrompts:
    """The sweep for one platform; ``edit(pending, note)`` replaces the prompt's text with ``note`` and
    removes its buttons (each adapter through its own edit path)."""

    def __init__(self, confirmations: ConfirmationStore, platform: str, edit: Edit, *, timezone: str = "UTC",
                 interval_s: float = SWEEP_INTERVAL_S, ready: Callable[[], bool] | None = None) -> None:
        self.confirmations = confirmations
        self.platform = platform
        self.edit = edit
        self.timezone = timezone
        self.interval_s = interval_s
        self.ready = ready  # False: the platform cannot edit now (disconnected); nothing is closed meanwhile

    async def sweep(self) -> int:
        """Close and edit what has expired now; the number of prompts edited."""
        edited = 0
        if self.ready is not None and not self.ready():
            return 0
        for pending in await self.confirmations.expired_unpressed(self.platform):
            if not await self.confirmations.close(pending.nonce, "expired"):
                continue  # pressed, or swept by another replica, meanwhile
            try:
                await self.edit(pending, expired_note(pending, self.timezone, self.confirmations.clock.now()))
                edited += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("%s: could not mark the expired prompt %s", self.platform, pending.message_ref,
                            exc_info=True)
        return edited

    async def run(self) -> None:
        """Sweep at once, then every ``interval_s``; a failed sweep (the database away) is retried next time."""
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("%s: could not look for expired prompts; trying again in %.0fs", self.platform,
                            self.interval_s, exc_info=True)
            await asyncio.sleep(self.interval_s)
