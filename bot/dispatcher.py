"""The dispatcher: every adapter's two entry points, and the one authorization middleware.

``handle_text`` takes a message, ``handle_callback`` a button press; both return a
:class:`~bot.reply.Reply` to render, or None to stay silent. A command button's press
(``run:trades 10 2``) takes the very path of the typed text ``/trades 10 2``. Between input and
command function sit, in order, for every command alike:

    input hygiene -> well-formed ids -> allowlist (in memory) -> rate limit (kill lane apart)
    -> [duplicate update] -> [fresh role] -> known command -> role -> arguments
    -> argument limits (trader pairs) -> stale message -> confirmation -> run

Input is made valid text first (:mod:`bot.inbound`). The allowlist and the rate limit are decided in
memory (the settings, and role grants cached for a few seconds), so traffic from strangers and floods
from a rate-limited sender cost no database write but one aggregated audit row per sender, chat and
minute (:mod:`bot.floods`). The rate limit comes right after the allowlist so that floods of unknown
or malformed commands count too. The kill lane (``/kill``, ``/closeall``, ``/pause`` from a role that
may run them, and confirmation presses) has its own generous budget: no amount of other traffic from
the same actor refuses it. Each attempt is audited before its reply is returned, whatever the
decision. Commands never check permissions themselves.

Anything with a side effect (a state-changing command, a new confirmation, a button press) first
records its platform update id in its own transaction, so a redelivered update never acts twice.
Everything else (reads, refusals) records the update id in the same transaction as its audit row,
after running, and stays silent if it turns out to be a redelivery: one round trip fewer on the hot
path, and repeating a read is harmless.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.audit import AuditLog, Decision, new_ref_id
from bot.confirmations import (
    ConfirmationObserver,
    ConfirmationStore,
    cancel_payload,
    confirm_payload,
    parse_payload,
)
from bot.errors import CommandError, UsageError
from bot.floods import FloodLog
from bot.identity import CONSOLE, AccessControl, Actor, ChatRef, Role
from bot.inbound import clean_text
from bot.outcomes import Attempt, Outcomes, settle
from bot.presses import PressHandler
from bot.prompts import Prompt, expiry
from bot.ratelimit import KILL_LANE_PER_MINUTE, RateLimiter, in_kill_lane
from bot.registry import NAME_RE, CommandSpec, Registry, needs_confirmation
from bot.reply import MAX_PAYLOAD_BYTES, Button, Buttons, Reply, Text, command_line
from bot.runner import CommandRunner
from bot.updates import ProcessedUpdates, UpdateRef
from core.runtime import bind
from core.settings import ChatSettings
from core.trading import TradingService
from exchanges.clock import Clock, SystemClock

log = logging.getLogger("tradectl.bot.dispatcher")
_ID_RE = re.compile(r"^[A-Za-z0-9_.:@+-]{1,64}$")
_PLATFORM_RE = re.compile(r"^[a-z]{1,16}$")
PROMPT_TIMEOUT_S = 2.0  # a prompt reads the engine's views; a busy engine must not hold up /kill's question


def split_command(text: str) -> tuple[str, list[str]] | None:
    """``"/Close@mybot btc/usd"`` -> ``("close", ["btc/usd"])``; None when the text is not a command."""
    if not isinstance(text, str):
        return None
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    parts = stripped[1:].split()
    if not parts:
        return "", []
    return parts[0].split("@", 1)[0].lower()[:64], parts[1:]


def well_formed(actor: Actor, chat: ChatRef) -> bool:
    """Platform ids are short printable tokens; anything else cannot be on an allowlist."""
    return all(isinstance(v, str) and _ID_RE.match(v) for v in (actor.user_id, chat.chat_id)) and all(
        isinstance(v, str) and _PLATFORM_RE.match(v) for v in (actor.platform, chat.platform))


class DispatchObserver(ConfirmationObserver, Protocol):
    """What the dispatcher reports as it decides (the metrics, when enabled: ``core.ops.instruments``).

    ``command`` is always a registered command's name, ``"unknown"`` (anything else typed) or ``"button"``
    (a press that is no confirmation of ours), so an observer can use it as a bounded label; ``decision``
    is the audit row's decision as first written."""

    def command_attempt(self, command: str, decision: str) -> None: ...
    def command_dispatched(self, command: str, seconds: float) -> None: ...


class _ObservedOutcomes(Outcomes):
    """Every attempt's audit row is built by :meth:`Outcomes.row` exactly once (a state-changing command's
    row before it runs, a refusal's or a read's with its outcome, a flood's before it is aggregated): the
    one place an attempt can be counted."""

    def __init__(self, audit: AuditLog, updates: ProcessedUpdates, observer: DispatchObserver,
                 label: Callable[[str], str]) -> None:
        super().__init__(audit, updates)
        self._observer = observer
        self._label = label

    def row(self, attempt: Attempt, decision: Decision, result: str, actor: Actor | None = None) -> dict[str, Any]:
        try:
            self._observer.command_attempt(self._label(attempt.command), decision)
        except Exception:
            log.warning("could not count a command attempt", exc_info=True)
        return super().row(attempt, decision, result, actor)


@dataclass(frozen=True, slots=True)
class _Stop:
    """The middleware decided; ``reply`` (possibly None: silence) is the answer."""

    reply: Reply | None


class Dispatcher:
    """The command core behind every chat adapter.

    Built once by the application (see :func:`bot.app.build_dispatcher`) and shared by all adapters;
    it holds no per-platform state. ``clock`` is wall time (confirmation expiry, stale messages, rate
    limits), never the market clock of a replay.
    """

    def __init__(
        self,
        registry: Registry,
        services: TradingService,
        access: AccessControl,
        confirmations: ConfirmationStore,
        audit: AuditLog,
        settings: ChatSettings,
        clock: Clock | None = None,
        *,
        updates: ProcessedUpdates,
        limiter: RateLimiter | None = None,
        floods: FloodLog | None = None,
        timezone: str = "UTC",
        observer: DispatchObserver | None = None,
    ) -> None:
        self.registry = registry
        self.services = services
        self.access = access
        self.confirmations = confirmations
        self.audit = audit
        self.settings = settings
        self.clock = clock or SystemClock()
        self.updates = updates
        self.limiter = limiter or RateLimiter(settings.rate_limit_per_minute, self.clock)
        self.lane_limiter = RateLimiter(KILL_LANE_PER_MINUTE, self.clock)
        self.floods = floods or FloodLog(audit, self.clock)
        self.timezone = timezone  # service.timezone: replies show local times
        self.observer = observer
        self.outcomes = Outcomes(audit, updates) if observer is None else _ObservedOutcomes(
            audit, updates, observer, self.label)
        self.runner = CommandRunner(registry=registry, services=services, access=access, audit=audit,
                                    settings=settings, clock=self.clock, timezone=timezone, outcomes=self.outcomes)
        self.presses = PressHandler(confirmations=confirmations, registry=registry, access=access,
                                    services=services, clock=self.clock, outcomes=self.outcomes, runner=self.runner)
        unknown = [n for n in settings.stale_commands if registry.get(n) is None]
        if unknown:
            raise ValueError(f"chat.stale_commands: {', '.join(map(repr, unknown))} is not a command")

    def label(self, command: str) -> str:
        """``command`` as a bounded label for an observer: a registered name, ``button`` or ``unknown``."""
        if command == "(button)":
            return "button"
        spec = self.registry.get(command) if NAME_RE.match(command) else None
        return spec.name if spec is not None else "unknown"

    def _dispatched(self, command: str, started: float) -> None:
        if self.observer is not None:
            try:
                self.observer.command_dispatched(self.label(command), time.perf_counter() - started)
            except Exception:
                log.warning("could not time a dispatch", exc_info=True)

    # -- entry points ----------------------------------------------------------------------

    def urgent(self, actor: Actor, chat: ChatRef, text: str | None = None, payload: str | None = None) -> bool:
        """Whether this input belongs in the kill lane, decided in memory (no database, no await).

        True for ``/kill``, ``/closeall`` and ``/pause`` from an actor whose role allows them (typed, or
        a command button carrying them), and for any confirmation button (``cf:``/``cx:``) from an
        allowlisted actor. Adapters call it to let these jump their per-chat queues; it decides nothing
        else (the input still passes every check). Roles come from the settings and the grants as last
        read, so a grant not read yet counts as none."""
        if not well_formed(actor, chat):
            return False
        role = self.access.cached_role(actor, chat)
        if role is Role.NONE:
            return False
        if payload is not None:
            text = command_line(clean_text(payload))  # a command button is in the lane its command is in
            if text is None:
                return parse_payload(clean_text(payload)) is not None
        parsed = split_command(clean_text(text)) if text is not None else None
        if parsed is None:
            return False
        spec = self.registry.get(parsed[0]) if NAME_RE.match(parsed[0]) else None
        return spec is not None and in_kill_lane(spec.name, role >= spec.role)

    async def handle_text(self, actor: Actor, chat: ChatRef, text: str, sent_at: datetime | None = None,
                          update_id: str | None = None, *, epoch: int | None = None) -> Reply | None:
        """A message from ``actor`` in ``chat``. ``sent_at`` is the platform's timestamp (for the stale
        check), ``update_id`` the platform's delivery id (for de-duplication), ``epoch`` the leader term."""
        parsed = split_command(clean_text(text))
        if parsed is None:
            return None  # chatter, not a command: none of our business, not an attempt
        name, tokens = parsed
        started = time.perf_counter()
        update = UpdateRef(actor.platform, update_id, epoch) if update_id is not None else None
        attempt = Attempt(actor, chat, name, " ".join(tokens), new_ref_id(), update)
        with bind(platform=actor.platform, user=actor.user_id, chat=chat.chat_id, command=name, ref=attempt.ref):
            try:
                return await self._text(attempt, tokens, sent_at)
            except Exception:  # noqa: BLE001 - e.g. the database is down: a reference, never a traceback
                return await self._crashed(attempt)
            finally:
                self._dispatched(name, started)

    async def handle_callback(self, actor: Actor, chat: ChatRef, payload: str, update_id: str | None = None,
                              *, epoch: int | None = None) -> Reply | None:
        """A button press carrying ``payload`` (as sent in a :class:`~bot.reply.Button`), or a typed answer.

        A command button (``run:<command line>``) is handled exactly as if the presser had typed the
        line, so a forged one can do nothing the presser could not do by typing; every other payload
        is a confirmation's (``cf:``/``cx:`` and a nonce)."""
        started = time.perf_counter()
        payload = clean_text(payload)  # a payload with a control character is not one we sent: it parses as invalid
        update = UpdateRef(actor.platform, update_id, epoch) if update_id is not None else None
        line = command_line(payload) if len(payload.encode()) <= MAX_PAYLOAD_BYTES else None
        parsed = split_command(line) if line is not None else None
        if parsed is not None:
            name, tokens = parsed
            attempt = Attempt(actor, chat, name, " ".join(tokens), new_ref_id(), update)
            with bind(platform=actor.platform, user=actor.user_id, chat=chat.chat_id, command=name, ref=attempt.ref):
                try:
                    return await self._text(attempt, tokens, None)  # pressed now: never a stale message
                except Exception:  # noqa: BLE001
                    return await self._crashed(attempt)
                finally:
                    self._dispatched(name, started)
        shown = payload[:11] + "..."  # never the whole nonce
        attempt = Attempt(actor, chat, "(button)", shown, new_ref_id(), update)
        with bind(platform=actor.platform, user=actor.user_id, chat=chat.chat_id, ref=attempt.ref):
            try:
                return await self._callback(attempt, payload)
            except Exception:  # noqa: BLE001
                return await self._crashed(attempt)
            finally:
                self._dispatched(attempt.command, started)

    async def _text(self, attempt: Attempt, tokens: list[str], sent_at: datetime | None) -> Reply | None:
        name = attempt.command
        spec = self.registry.get(name) if NAME_RE.match(name) else None
        effects = spec is not None and (spec.mutates or spec.destructive or needs_confirmation(spec, self.settings))
        gate = await self._gate(attempt, effects, spec)
        if not isinstance(gate, tuple):
            return gate.reply
        attempt, role = gate
        if spec is None:
            return await self._unknown(attempt, role)
        return await self._command(spec, attempt, role, tokens, sent_at)

    async def _callback(self, attempt: Attempt, payload: str) -> Reply | None:
        parsed = parse_payload(payload)
        gate = await self._gate(attempt, effects=True, press=parsed is not None)
        if not isinstance(gate, tuple):
            return gate.reply
        attempt, role = gate
        if parsed is None:
            return settle(await self.outcomes.refuse(attempt, "invalid", "malformed button payload",
                                                     Reply.error("This button is not valid.")))
        action, nonce = parsed
        pending = await self.confirmations.get(nonce)
        if pending is None:
            return settle(await self.outcomes.refuse(attempt, "invalid", "unknown confirmation nonce",
                                                     Reply.error("This confirmation is not valid.")))
        attempt = dataclasses.replace(attempt, command=pending.command, args=" ".join(pending.tokens),
                                      ref=pending.ref_id)
        with bind(command=pending.command, ref=pending.ref_id):
            return await self.presses.press(attempt, role, action, pending)

    async def _gate(self, attempt: Attempt, effects: bool, spec: CommandSpec | None = None,
                    press: bool = False) -> tuple[Attempt, Role] | _Stop:
        """The checks every input passes first: well-formed, allowlisted, not flooding, not seen before.

        Allowlist and rate limit are decided in memory, before any database write. With ``effects`` the
        update id is then recorded and the role read fresh from the database (a revocation made on
        another replica stops state changes at once). ``press`` marks a well-formed confirmation press,
        which like ``spec`` in the kill lane draws on the kill lane's budget."""
        actor = attempt.actor
        if not well_formed(actor, attempt.chat):
            return _Stop(await self._unauthorized(attempt))  # no stable id we could ever have allowlisted
        role = await self.access.authorize(actor, attempt.chat, fresh=False)
        if role is Role.NONE:
            return _Stop(await self._unauthorized(attempt))
        lane = press or (spec is not None and in_kill_lane(spec.name, role >= spec.role))
        if not (self.lane_limiter if lane else self.limiter).allow(actor.key):
            return _Stop(await self._rate_limited(attempt, lane))
        if effects and attempt.update is not None:
            fresh = await self.updates.first_time(attempt.update)
            attempt = dataclasses.replace(attempt, update=None)
            if not fresh:
                await self.outcomes.record(attempt, "duplicate", "update already processed")
                return _Stop(None)
        if effects:
            role = await self.access.authorize(actor, attempt.chat)
            if role is Role.NONE:
                return _Stop(await self._unauthorized(attempt))
        return attempt, role

    # -- text commands ---------------------------------------------------------------------

    async def _command(self, spec: CommandSpec, attempt: Attempt, role: Role, tokens: list[str],
                       sent_at: datetime | None) -> Reply | None:
        attempt = dataclasses.replace(attempt, command=spec.name)
        if role < spec.role:
            return await self.outcomes.refuse(attempt, "denied", f"needs {spec.role.label}, has {role.label}",
                                              Reply.error(f"/{spec.name} needs the {spec.role.label} role; "
                                                          f"you are {role.label}."))
        try:
            args = spec.parse(tokens)
        except UsageError as exc:
            return await self.outcomes.refuse(attempt, "invalid", exc.message,
                                              Reply((Text(exc.message, "error"), Text(spec.usage_text()))))
        refusal = self.runner.limit_refusal(spec, args, attempt.actor, role)
        if refusal:
            return await self.outcomes.refuse(attempt, "denied", refusal, Reply.error(refusal))
        needs_confirm = needs_confirmation(spec, self.settings, args)
        if spec.name in self.settings.stale_commands and self._is_stale(sent_at):
            return await self.outcomes.refuse(
                attempt, "stale", f"sent {sent_at.isoformat() if sent_at else '?'}",
                Reply.error(f"Refused: this /{spec.name} was sent more than {self.settings.stale_command_s} s ago "
                            "(a delayed or replayed message). Send it again if you still mean it."))
        if needs_confirm:
            return await self._ask_confirmation(spec, attempt, tuple(tokens), role, args)
        return await self.runner.run(spec, attempt, role, args, "allowed")

    def _two_person(self, spec: CommandSpec, actor: Actor) -> bool:
        # The console is the operator at the machine; there is no second person to ask there.
        return spec.name in self.settings.two_person_commands and actor.platform != CONSOLE

    def _is_stale(self, sent_at: datetime | None) -> bool:
        if sent_at is None:
            return False
        if sent_at.tzinfo is None:
            sent_at = sent_at.replace(tzinfo=UTC)
        return (self.clock.now() - sent_at).total_seconds() > self.settings.stale_command_s

    async def _ask_confirmation(self, spec: CommandSpec, attempt: Attempt, tokens: tuple[str, ...], role: Role,
                                args: object) -> Reply | None:
        """Ask, stating what confirming will do (the command's prompt), or refuse at once when its prompt
        finds nothing to act on. A prompt that cannot be built in time (the engine busy, a standby) never
        stops the question: a generic one is asked instead."""
        two = self._two_person(spec, attempt.actor)
        ttl = self.settings.confirm_ttl_s
        expires_at = self.clock.now() + timedelta(seconds=ttl)
        ctx = self.runner.context(attempt, role)
        prompt = Prompt(f"Confirm {' '.join([f'/{spec.name}', *tokens])}: {spec.help}\n{expiry(ctx, expires_at)}")
        if spec.prompt is not None:
            try:
                prompt = await asyncio.wait_for(spec.prompt(ctx, args, expires_at), PROMPT_TIMEOUT_S)
            except CommandError as exc:
                return await self.outcomes.refuse(attempt, "invalid", exc.message, Reply.error(exc.message))
            except Exception:
                log.warning("/%s: could not state the consequences; asking without them", spec.name, exc_info=True)
        pending = await self.confirmations.create(attempt.actor, attempt.chat, spec.name, tokens, ref_id=attempt.ref,
                                                  ttl_s=ttl, approvals_needed=2 if two else 1)
        text = prompt.text
        if two:
            text += f"\nA second admin must press {prompt.action} (self-approval is refused)."
        awaiting = f"awaiting {'second-admin ' if two else ''}confirmation"
        return await self.outcomes.refuse(attempt, "allowed", awaiting, Reply((
            Text(text, "warning"),
            Buttons((Button(prompt.action, confirm_payload(pending.nonce), "danger"),
                     Button("Cancel", cancel_payload(pending.nonce), "secondary"))),
        )))

    # -- refusals ---------------------------------------------------------------------------

    async def _crashed(self, attempt: Attempt) -> Reply | None:
        log.exception("dispatch failed (reference %s)", attempt.ref)
        return await self.outcomes.refuse(attempt, "failed", "internal error in dispatch",
                                          Reply.error(f"Something went wrong, reference {attempt.ref}."))

    async def _unauthorized(self, attempt: Attempt) -> Reply | None:
        """Not allowlisted: audited in aggregate, answered at most once a minute per sender (and a few
        times per chat), never recorded as a processed update: a stranger's flood costs one row a minute."""
        row = self.outcomes.row(attempt, "denied", "not allowlisted (user or chat)")
        if not await self.floods.note(row):
            return None
        log.warning("unauthorized attempt")  # the first of the minute; the audit row counts the rest
        if self.settings.unauthorized_reply == "silent" or not self._may_warn("unauth:", row):
            return None
        return dataclasses.replace(Reply.error("Not authorized."), private=True)

    async def _rate_limited(self, attempt: Attempt, lane: bool) -> Reply | None:
        limit = KILL_LANE_PER_MINUTE if lane else self.settings.rate_limit_per_minute
        row = self.outcomes.row(attempt, "rate_limited", f"over {limit}/min{' (kill lane)' if lane else ''}")
        if not await self.floods.note(row) or not self._may_warn("", row):
            return None  # told once; answering every flooded message would feed the flood
        return dataclasses.replace(Reply.error(f"Too many commands: at most {limit} per minute. Try again shortly."),
                                   private=True)

    def _may_warn(self, prefix: str, row: dict[str, Any]) -> bool:
        """Once a minute per sender, and within the chat's answer budget."""
        return (self.limiter.should_warn(f"{prefix}{row['platform']}:{row['user_id']}")
                and self.floods.may_reply(row["platform"], row["chat_id"]))

    async def flush(self) -> None:
        """Write the attempt counts of refused floods still held in memory (call on stop)."""
        await self.floods.flush()

    async def _unknown(self, attempt: Attempt, role: Role) -> Reply | None:
        near = self.registry.nearest(attempt.command, role) if attempt.command else None
        hint = f" Did you mean /{near}?" if near else ""
        what = f"Unknown command /{attempt.command}." if NAME_RE.match(attempt.command) else "Unknown command."
        return await self.outcomes.refuse(attempt, "unknown", "unknown command",
                                          Reply.error(f"{what}{hint} Send /help for the list."))
