"""Running one command that has passed every check: its context, its audit trail, its errors.

Shared by typed commands (:class:`~bot.dispatcher.Dispatcher`) and confirmed ones
(:class:`~bot.presses.PressHandler`). State-changing commands leave an audit row before they run, so a
crash half-way still leaves a trace; only a :class:`~bot.errors.CommandError`'s message (or a
standby's "not now") reaches the chat, anything else a reference id.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.audit import AuditLog, Decision
from bot.context import CommandContext
from bot.errors import CommandError
from bot.identity import AccessControl, Actor, Role
from bot.outcomes import Attempt, Outcomes
from bot.registry import CommandSpec, Registry
from bot.reply import Reply
from core.settings import ChatSettings
from core.trading import ServiceUnavailable, TradingService
from exchanges.clock import Clock

log = logging.getLogger("tradectl.bot.dispatcher")


class CommandRunner:
    """Builds a command's :class:`~bot.context.CommandContext` and runs its handler."""

    def __init__(self, *, registry: Registry, services: TradingService, access: AccessControl, audit: AuditLog,
                 settings: ChatSettings, clock: Clock, timezone: str, outcomes: Outcomes) -> None:
        self.registry = registry
        self.services = services
        self.access = access
        self.audit = audit
        self.settings = settings
        self.clock = clock
        self.timezone = timezone
        self.outcomes = outcomes

    def context(self, attempt: Attempt, role: Role, approved_by: str = "") -> CommandContext:
        return CommandContext(actor=attempt.actor, chat=attempt.chat, role=role, ref_id=attempt.ref,
                              services=self.services, access=self.access, audit=self.audit, registry=self.registry,
                              settings=self.settings, clock=self.clock, approved_by=approved_by,
                              timezone=self.timezone)

    def limit_refusal(self, spec: CommandSpec, args: object, actor: Actor, role: Role) -> str | None:
        """Why a trader limited to some pairs may not run this call, or None."""
        allowed = self.access.pair_limit(actor, role)
        if allowed is None:
            return None
        for pair in spec.pairs_in(args):
            if pair not in allowed:
                return f"You may use /{spec.name} only for {', '.join(allowed) or 'no pairs'}."
        return None

    def started_entry(self, attempt: Attempt, decision: Decision, approved_by: str, by: Actor) -> dict[str, Any]:
        """The audit row a state-changing command leaves before it runs (a crash mid-way leaves it)."""
        note = f"requested by {attempt.actor.key}, approved by {approved_by}; " if approved_by else ""
        return self.outcomes.row(attempt, decision, note + "started", by)

    async def run(self, spec: CommandSpec, attempt: Attempt, role: Role, args: object, decision: Decision,
                  approved_by: str = "", confirmer: Actor | None = None,
                  started_row: int | None = None) -> Reply | None:
        ctx = self.context(attempt, role, approved_by)
        note = f"requested by {attempt.actor.key}, approved by {approved_by}; " if approved_by else ""
        by = confirmer or attempt.actor
        # State-changing commands leave a row before they run, so a crash mid-way still leaves a trace.
        row_id = started_row  # written already when a confirmation was closed (in the same transaction)
        if spec.mutates and row_id is None:
            row_id = await self.audit.write(self.started_entry(attempt, decision, approved_by, by))
        final: Decision
        try:
            reply = await spec.handler(ctx, args)
            final, result = decision, note + reply.summary()
        except CommandError as exc:
            reply, final, result = Reply.error(exc.message), "failed", note + exc.message
        except ServiceUnavailable as exc:  # a standby, or leadership changing hands: say so plainly
            reply, final, result = Reply.error(str(exc)), "failed", note + str(exc)
        except Exception as exc:
            log.exception("/%s failed (reference %s)", spec.name, attempt.ref)
            reply = Reply.error(f"Something went wrong, reference {attempt.ref}.")
            final, result = "failed", f"{note}internal error {type(exc).__name__}"
        log.info("/%s -> %s", spec.name, final)
        if row_id is not None:
            await self.audit.finish(row_id, final, result)
            return reply
        return await self.outcomes.refuse(attempt, final, result, reply, actor=by)
