"""Button presses on a pending confirmation: the rules of who may press what, and when.

Part of the dispatcher (mixed into :class:`~bot.dispatcher.Dispatcher`), kept apart because these
rules are the security core of confirmations and deserve to be read on their own:

- a used, expired or other-chat confirmation does nothing;
- only the requester may cancel, and — unless the two-person rule applies — confirm;
- under the two-person rule only a *different* admin may confirm;
- the requester's role is checked again at the press (a revocation in between wins);
- the single use is enforced by one conditional UPDATE (see :class:`~bot.confirmations.ConfirmationStore`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from bot.errors import UsageError
from bot.identity import Role
from bot.reply import Reply

if TYPE_CHECKING:
    from bot.confirmations import Pending
    from bot.dispatcher import Attempt, Dispatcher


class PressHandling:
    async def _press(self: Dispatcher, attempt: Attempt, role: Role, action: str, pending: Pending) -> Reply | None:
        actor, chat = attempt.actor, attempt.chat
        if pending.used_at is not None:
            return await self._refuse(attempt, "invalid", f"confirmation already {pending.outcome or 'used'}",
                                      Reply.error(f"This confirmation was already used ({pending.outcome or 'closed'})."))
        if pending.platform != actor.platform or pending.chat_id != chat.chat_id:
            return await self._refuse(attempt, "denied", "pressed in another chat",
                                      Reply.error("This confirmation belongs to another chat."))
        if pending.expired(self.clock.now()):
            await self.confirmations.close(pending.nonce, "expired")
            return await self._refuse(attempt, "expired", "pressed after expiry",
                                      Reply.error(f"This confirmation expired; send /{pending.command} again."))
        requester = pending.requester
        is_requester = actor.same_user(requester)
        if action == "cancel":
            if not is_requester:
                return await self._refuse(attempt, "denied", "cancel by someone other than the requester",
                                          Reply.error("Only the person who asked can cancel this."))
            if not await self.confirmations.close(pending.nonce, "cancelled"):
                return await self._lost_race(attempt, pending.nonce)
            return await self._refuse(attempt, "cancelled", "cancelled by the requester",
                                      Reply.text(f"Cancelled /{pending.command}."))
        approver = ""
        if pending.approvals_needed >= 2:
            if is_requester:
                return await self._refuse(attempt, "denied", "self-approval refused",
                                          Reply.error("Self-approval is refused: a second admin must confirm."))
            if role < Role.ADMIN:
                return await self._refuse(attempt, "denied", f"second approver needs admin, has {role.label}",
                                          Reply.error("Only an admin can give the second approval."))
            approver = actor.key
        elif not is_requester:
            return await self._refuse(attempt, "denied", "pressed by someone other than the requester",
                                      Reply.error("Only the person who asked can confirm this."))
        # Re-check the requester now: a role revoked or a chat de-listed since the request wins.
        spec = self.registry.get(pending.command)
        req_role = role if is_requester else await self.access.authorize(requester, chat)
        args: object = None
        allowed = spec is not None and req_role >= spec.role
        if spec is not None and allowed:
            try:
                args = spec.parse(pending.tokens)
            except UsageError:
                allowed = False
        if spec is None or not allowed or self._limit_refusal(spec, args, requester, req_role):
            await self.confirmations.close(pending.nonce, "cancelled")
            return await self._refuse(attempt, "denied", "requester no longer authorized",
                                      Reply.error("Refused: the requester is no longer allowed to do this."))
        if not await self.confirmations.close(pending.nonce, "confirmed", approver):
            return await self._lost_race(attempt, pending.nonce)
        run_as = dataclasses.replace(attempt, actor=actor if is_requester else requester, command=spec.name)
        return await self._run(spec, run_as, req_role, args, "confirmed", approver, confirmer=actor)

    async def _lost_race(self: Dispatcher, attempt: Attempt, nonce: str) -> Reply | None:
        """The conditional close found nothing open: someone else used it, or it just expired."""
        again = await self.confirmations.get(nonce)
        if again is not None and again.used_at is None:
            await self.confirmations.close(nonce, "expired")
            return await self._refuse(attempt, "expired", "pressed after expiry",
                                      Reply.error(f"This confirmation expired; send /{attempt.command} again."))
        return await self._refuse(attempt, "invalid", "confirmation already used",
                                  Reply.error("This confirmation was already used."))
