"""Button presses on a pending confirmation: the rules of who may press what, and when.

The dispatcher hands each press on a confirmation it found to a :class:`PressHandler`, kept apart
because these rules are the security core of confirmations and deserve to be read on their own:

- a used, expired or other-chat confirmation does nothing;
- once a prompt is over (confirmed, cancelled, expired, used, refused for good) the answer is
  ``settled`` and every adapter takes the buttons off; a press refused only for the presser (someone
  other than the requester, a standby) leaves them for the right person;
- only the requester may cancel, and — unless the two-person rule applies — confirm;
- under the two-person rule only a *different* admin may confirm;
- the requester's role is checked again at the press (a revocation in between wins);
- the single use is enforced by one conditional UPDATE (see :class:`~bot.confirmations.ConfirmationStore`);
- a press on an instance that cannot run the command now (a standby) is refused *without* using
  the confirmation up, so the same button works once leadership is settled;
- the confirmation's close and the command's "started" audit row commit together, then the command
  runs with no other database round trip before it; once it has finished, whatever its outcome, the
  confirmation is marked executed. A confirmed command a crash interrupted is therefore still on
  record, unexecuted, and the engine completes it on start (:mod:`core.trading.confirmed`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Protocol, runtime_checkable

from bot.confirmations import ConfirmationStore, Pending
from bot.errors import UsageError
from bot.identity import AccessControl, Role
from bot.outcomes import Attempt, Outcomes, settle
from bot.registry import CommandSpec, Registry
from bot.reply import Reply
from bot.runner import CommandRunner
from core.trading import TradingService, mark_executed
from exchanges.clock import Clock

log = logging.getLogger("tradectl.bot.presses")


@runtime_checkable
class Availability(Protocol):
    """A trading service that can say it cannot run commands right now (a standby: see
    :class:`core.app.standby.LeaderBoundService`). Services without it are always available."""

    def unavailable(self) -> str | None: ...


class PressHandler:
    """Decides a press of Confirm or Cancel on a pending confirmation, and runs the confirmed command.

    ``outcomes`` audits every decision; ``runner`` runs the command as the typed path does."""

    def __init__(self, *, confirmations: ConfirmationStore, registry: Registry, access: AccessControl,
                 services: TradingService, clock: Clock, outcomes: Outcomes, runner: CommandRunner) -> None:
        self.confirmations = confirmations
        self.registry = registry
        self.access = access
        self.services = services
        self.clock = clock
        self.outcomes = outcomes
        self.runner = runner

    def _unavailable(self) -> str | None:
        return self.services.unavailable() if isinstance(self.services, Availability) else None

    async def press(self, attempt: Attempt, role: Role, action: str, pending: Pending) -> Reply | None:
        refuse = self.outcomes.refuse
        actor, chat = attempt.actor, attempt.chat
        if pending.used_at is not None:
            return settle(await refuse(
                attempt, "invalid", f"confirmation already {pending.outcome or 'used'}",
                Reply.error(f"This confirmation was already used ({pending.outcome or 'closed'}).")))
        if pending.platform != actor.platform or pending.chat_id != chat.chat_id:
            return await refuse(attempt, "denied", "pressed in another chat",
                                Reply.error("This confirmation belongs to another chat."))
        if pending.expired(self.clock.now()):
            await self.confirmations.close(pending.nonce, "expired")
            return settle(await refuse(attempt, "expired", "pressed after expiry",
                                       Reply.error(f"This confirmation expired; send /{pending.command} again.")))
        requester = pending.requester
        is_requester = actor.same_user(requester)
        if action == "cancel":
            if not is_requester:
                return await refuse(attempt, "denied", "cancel by someone other than the requester",
                                    Reply.error("Only the person who asked can cancel this."))
            if not await self.confirmations.close(pending.nonce, "cancelled"):
                return await self._lost_race(attempt, pending.nonce)
            return settle(await refuse(attempt, "cancelled", "cancelled by the requester",
                                       Reply.text(f"Cancelled /{pending.command}: nothing was done.")))
        approver = ""
        if pending.approvals_needed >= 2:
            if is_requester:
                return await refuse(attempt, "denied", "self-approval refused",
                                    Reply.error("Self-approval is refused: a second admin must confirm."))
            if role < Role.ADMIN:
                return await refuse(attempt, "denied", f"second approver needs admin, has {role.label}",
                                    Reply.error("Only an admin can give the second approval."))
            approver = actor.key
        elif not is_requester:
            return await refuse(attempt, "denied", "pressed by someone other than the requester",
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
        if spec is None or not allowed or self.runner.limit_refusal(spec, args, requester, req_role):
            await self.confirmations.close(pending.nonce, "refused")
            return settle(await refuse(attempt, "denied", "requester no longer authorized",
                                       Reply.error("Refused: the requester is no longer allowed to do this.")))
        waiting = self._unavailable()
        if waiting is not None:
            return await refuse(attempt, "failed", f"not run, confirmation kept: {waiting}", Reply.error(
                f"Not run: {waiting}. This confirmation is still valid until it expires: press Confirm again."))
        run_as = dataclasses.replace(attempt, actor=actor if is_requester else requester, command=spec.name)
        started = self.runner.started_entry(run_as, "confirmed", approver, actor) if spec.mutates else None
        audit = self.runner.audit
        try:
            async with self.confirmations.db.begin() as conn:
                closed = await self.confirmations.close_in(conn, pending.nonce, "confirmed", approver)
                row_id = await audit.add(conn, started) if closed and started is not None else None
        except Exception:
            log.exception("could not write the audit row with the confirmation; closing it alone")
            closed, row_id = await self.confirmations.close(pending.nonce, "confirmed", approver), None
        if not closed:
            return await self._lost_race(attempt, pending.nonce)
        reply = await self.runner.run(spec, run_as, req_role, args, "confirmed", approver, confirmer=actor,
                                      started_row=row_id)
        await self._executed(spec, pending.nonce, reply)
        return settle(reply)

    async def _executed(self, spec: CommandSpec, nonce: str, reply: Reply | None) -> None:
        """Record that a confirmed command has run. Not when this instance lost the leadership meanwhile:
        the command may have been refused for that, and the next leader completes it on start (the
        commands it completes are safe to repeat). A failed record is only logged: at worst the
        command is completed once more on the next start."""
        if self._unavailable() is not None:
            log.warning("/%s: leadership changed while it ran; left for the next leader to complete", spec.name)
            return
        failed = reply is not None and any(getattr(b, "style", "") == "error" for b in reply.blocks)
        try:
            await mark_executed(self.confirmations.db, nonce, f"/{spec.name} {'failed' if failed else 'done'}")
        except Exception:
            log.exception("/%s ran but could not be marked executed", spec.name)

    async def _lost_race(self, attempt: Attempt, nonce: str) -> Reply | None:
        """The conditional close found nothing open: someone else used it, or it just expired."""
        again = await self.confirmations.get(nonce)
        if again is not None and again.used_at is None:
            await self.confirmations.close(nonce, "expired")
            return settle(await self.outcomes.refuse(
                attempt, "expired", "pressed after expiry",
                Reply.error(f"This confirmation expired; send /{attempt.command} again.")))
        return settle(await self.outcomes.refuse(attempt, "invalid", "confirmation already used",
                                                 Reply.error("This confirmation was already used.")))
