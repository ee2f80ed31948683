"""Commands that change trading (trader and admin roles). Each submits one intent and reports.

The engine applies intents on its own loop and persists the result; a refused intent (for example
/resume while killed) becomes a :class:`~bot.errors.CommandError` with the engine's own words,
which say what to do instead. Confirmations, roles and stale-message checks happen before any of
these functions run (see :mod:`bot.dispatcher`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.context import CommandContext
from bot.errors import CommandError
from bot.identity import Role
from bot.prompts import close_prompt, closeall_prompt, kill_prompt
from bot.registry import arg, command
from bot.reply import Block, Reply, Text
from core.intents import ClosePosition, CloseAll, IntentResult, Kill, PauseEntries, Rearm, Resume


def intent_reply(result: IntentResult) -> Reply:
    """Success shows the message and any details; a refusal raises so the audit log says ``failed``."""
    if not result.ok:
        raise CommandError("\n".join((result.message, *result.details)))
    blocks: list[Block] = [Text(result.message, "success")]
    if result.details:
        blocks.append(Text("\n".join(result.details)))
    return Reply(tuple(blocks))


@dataclass(frozen=True)
class ReasonArgs:
    reason: str = arg("", kind="text", help="why (shown in /status and the audit log)")


@dataclass(frozen=True)
class PairArgs:
    pair: str = arg(kind="pair", help="the pair, e.g. BTC/USD")


@command("pause", role=Role.TRADER, args=ReasonArgs, help="Stop new entries; open positions keep their stops and exits",
         usage="The pause is stored and survives restarts. /resume ends it.")
async def pause(ctx: CommandContext, args: ReasonArgs) -> Reply:
    reason = args.reason or f"paused from chat by {ctx.actor.key}"
    return intent_reply(await ctx.services.submit(PauseEntries(requested_by=ctx.requested_by, reason=reason)))


@command("resume", role=Role.TRADER, help="Allow new entries again after /pause",
         usage="After /kill, an admin must /rearm first.")
async def resume(ctx: CommandContext, args: None) -> Reply:
    return intent_reply(await ctx.services.submit(Resume(requested_by=ctx.requested_by)))


@command("close", role=Role.TRADER, confirm=True, destructive=True, args=PairArgs, prompt=close_prompt,
         help="Close one position at market", usage="Example: /close BTC/USD")
async def close(ctx: CommandContext, args: PairArgs) -> Reply:
    if args.pair not in ctx.services.pairs:
        raise CommandError(f"Unknown pair {args.pair}; traded pairs: {', '.join(ctx.services.pairs)}")
    return intent_reply(await ctx.services.submit(ClosePosition(requested_by=ctx.requested_by, pair=args.pair)))


@command("closeall", role=Role.ADMIN, confirm=True, destructive=True, prompt=closeall_prompt,
         help="Close every open position at market (entries stay allowed; /pause first to stop them)")
async def closeall(ctx: CommandContext, args: None) -> Reply:
    return intent_reply(await ctx.services.submit(CloseAll(requested_by=ctx.requested_by)))


@command("kill", role=Role.ADMIN, confirm=True, destructive=True, args=ReasonArgs, prompt=kill_prompt,
         help="Emergency stop: halt trading, cancel orders, flatten every position",
         usage="Stays halted across restarts until an admin sends /rearm.")
async def kill(ctx: CommandContext, args: ReasonArgs) -> Reply:
    reason = args.reason or f"kill from chat by {ctx.actor.key}"
    return intent_reply(await ctx.services.submit(Kill(requested_by=ctx.requested_by, reason=reason)))


@command("rearm", role=Role.ADMIN, help="Lift a kill; trading stays paused until /resume")
async def rearm(ctx: CommandContext, args: None) -> Reply:
    return intent_reply(await ctx.services.submit(Rearm(requested_by=ctx.requested_by)))
