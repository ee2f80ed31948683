"""Commands that change trading (trader and admin roles). Each submits one intent and reports.

The engine applies intents on its own loop and persists the result; a refused intent (for example
/resume while killed) becomes a :class:`~bot.errors.CommandError` with the engine's own words,
which say what to do instead. Confirmations, roles and stale-message checks happen before any of
these functions run (see :mod:`bot.dispatcher`).

A close or a kill reports what it did from the typed values the engine hands back
(:class:`~core.trading.intents.ClosedPosition`, :class:`~core.trading.intents.OpenItem`): every position closed with
its exit and PnL, and the totals (count, value, realized PnL, fees) per quote currency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot import format as fmt
from bot.context import CommandContext
from bot.errors import CommandError
from bot.identity import Role
from bot.prompts import close_prompt, closeall_prompt, kill_prompt
from bot.registry import arg, command
from bot.reply import Block, KeyValues, Reply, Table, Text, choice_buttons
from core.trading import (
    CloseAll,
    ClosedPosition,
    ClosePosition,
    IntentResult,
    Kill,
    OpenItem,
    OpenKind,
    PauseEntries,
    Rearm,
    Resume,
)

HALTED = "Trading stays halted until an admin sends /rearm (then /resume)."


def intent_reply(result: IntentResult) -> Reply:
    """Success shows the message and any details; a refusal raises so the audit log says ``failed``."""
    if not result.ok:
        raise CommandError("\n".join((result.message, *result.details)))
    blocks: list[Block] = [Text(result.message, "success")]
    if result.details:
        blocks.append(Text("\n".join(result.details)))
    return Reply(tuple(blocks))


def closed_blocks(closed: Sequence[ClosedPosition]) -> list[Block]:
    """The positions closed, one row each, and their totals per quote currency."""
    if not closed:
        return []
    rows = tuple((c.pair, fmt.qty(c.qty, c.qty_step), fmt.price(c.exit_price, c.price_tick),
                  fmt.pnl(c.pnl, c.pnl_pct, c.quote)) for c in closed)
    blocks: list[Block] = [Table("Closed", ("pair", "qty", "exit", "PnL"), rows, key=("pair",), optional=("qty",))]
    sums: dict[str, list[Decimal]] = {}
    counts: dict[str, int] = {}
    for c in closed:
        value_pnl_fees = sums.setdefault(c.quote, [Decimal(0), Decimal(0), Decimal(0)])
        value_pnl_fees[0] += c.value
        value_pnl_fees[1] += c.pnl
        value_pnl_fees[2] += c.fees
        counts[c.quote] = counts.get(c.quote, 0) + 1
    for quote, (value, pnl, fees) in sums.items():
        title = "Totals" if len(sums) == 1 else f"Totals in {quote}"
        blocks.append(KeyValues(title, (("closed", fmt.count(counts[quote], "position")),
                                        ("value", fmt.money(value, quote)),
                                        ("realized PnL", fmt.signed(pnl, quote)), ("fees", fmt.money(fees, quote)))))
    return blocks


def _items(items: Sequence[OpenItem]) -> str:
    """``ETH/USD 0.704, SOL/USD 19.8 (sell order)``."""
    def one(i: OpenItem) -> str:
        what = " ".join(x for x in (i.side, "order") if x) if i.what == OpenKind.ORDER else ""
        return f"{i.pair} {fmt.qty(i.qty, i.qty_step)}" + (f" ({what})" if what else "")

    return ", ".join(one(i) for i in items)


def close_reply(result: IntentResult) -> Reply:
    """What /close and /closeall did: closed positions with totals, exits still waiting for a fill."""
    if not result.ok:
        raise CommandError("\n".join((result.message, *result.details)))
    if not result.closed and not result.pending:
        return Reply.text("No open positions: nothing to close.")
    parts = []
    if result.closed:
        parts.append(f"Closed {fmt.count(len(result.closed), 'position')}")
    if result.pending:
        parts.append(f"{fmt.count(len(result.pending), 'exit')} sent, waiting for the fill")
    blocks: list[Block] = [Text(". ".join(parts) + ".", "success"), *closed_blocks(result.closed)]
    if result.pending:
        blocks.append(Text(f"Waiting for the fill: {_items(result.pending)}. /positions shows when they are closed."))
    return Reply(tuple(blocks))


def kill_reply(result: IntentResult) -> Reply:
    """What /kill did: plainly "nothing was open", or the positions closed (with totals), the orders
    cancelled, and anything still open. An incomplete kill is a failure (so the audit log says so)."""
    done = []
    if result.closed:
        done.append(f"closed {fmt.count(len(result.closed), 'position')}")
    if result.cancelled:
        done.append(f"cancelled {fmt.count(len(result.cancelled), 'order')}")
    if not result.ok and not (done or result.pending):  # refused (e.g. this instance is a standby)
        raise CommandError("\n".join((result.message, *result.details)))
    if not result.ok:
        so_far = f" ({', '.join(done)})" if done else ""
        lines = [f"🛑 Trading is KILLED, but NOT everything is flat yet{so_far}."]
        if result.pending:
            lines.append(f"Still open: {_items(result.pending)}.")
        lines.append("Send /kill again to retry closing them. " + HALTED)
        raise CommandError("\n".join(lines))
    if not done:
        return Reply((Text("🛑 Trading is KILLED. Nothing was open: no positions to close, no orders to cancel.",
                           "success"), Text(HALTED)))
    blocks: list[Block] = [Text(f"🛑 Trading is KILLED: {' and '.join(done)}.", "success"),
                           *closed_blocks(result.closed)]
    if result.cancelled:
        blocks.append(Text(f"Cancelled: {_items(result.cancelled)}."))
    blocks.append(Text(HALTED))
    return Reply(tuple(blocks))


@dataclass(frozen=True)
class ReasonArgs:
    reason: str = arg("", kind="text", help="why (shown in /status and the audit log)")


@dataclass(frozen=True)
class PairArgs:
    pair: str | None = arg(None, kind="pair",
                           help="the pair, e.g. BTC/USD (without it: the open positions, to choose from)")


@command("pause", role=Role.TRADER, args=ReasonArgs, help="Stop new entries; open positions keep their stops and exits",
         group="Trading", usage="The pause is stored and survives restarts. /resume ends it.")
async def pause(ctx: CommandContext, args: ReasonArgs) -> Reply:
    reason = args.reason or f"paused from chat by {ctx.actor.key}"
    return intent_reply(await ctx.services.submit(PauseEntries(requested_by=ctx.requested_by, reason=reason)))


@command("resume", group="Trading", role=Role.TRADER, help="Allow new entries again after /pause",
         usage="After /kill, an admin must /rearm first.")
async def resume(ctx: CommandContext, args: None) -> Reply:
    return intent_reply(await ctx.services.submit(Resume(requested_by=ctx.requested_by)))


async def closable(ctx: CommandContext) -> tuple[str, ...]:
    """The pairs with an open position that this actor may close (a trader's pair limit applies)."""
    allowed = ctx.access.pair_limit(ctx.actor, ctx.role)
    return tuple(p.pair for p in await ctx.services.positions() if allowed is None or p.pair in allowed)


@command("close", group="Trading", role=Role.TRADER, confirm=True, destructive=True, args=PairArgs, prompt=close_prompt,
         confirm_when=lambda args: args.pair is not None,
         help="Close one position at market",
         usage="Example: /close BTC/USD. Without a pair: the open positions you may close, a button for each.")
async def close(ctx: CommandContext, args: PairArgs) -> Reply:
    if args.pair is None:
        positions = {p.pair: p for p in await ctx.services.positions()}
        pairs = [pair for pair in await closable(ctx) if pair in positions]
        if not pairs:
            return Reply.text("No open positions to close.")
        rows = tuple((pair, fmt.qty(positions[pair].qty, positions[pair].qty_step),
                      fmt.signed(positions[pair].unrealized_pnl, positions[pair].quote)) for pair in pairs)
        # A button per pair runs /close <pair> as the presser, which then asks for confirmation as typed
        return Reply((Table("Open positions", ("pair", "qty", "PnL"), rows, key=("pair",)),
                      Text(f"Send /close {pairs[0]} (or another pair above) to close one, or press its button."),
                      *choice_buttons([(pair, f"close {pair}") for pair in pairs])))
    if args.pair not in ctx.services.pairs:
        raise CommandError(f"Unknown pair {args.pair}; traded pairs: {', '.join(ctx.services.pairs)}")
    return close_reply(await ctx.services.submit(ClosePosition(requested_by=ctx.requested_by, pair=args.pair)))


@command("closeall", group="Trading", role=Role.ADMIN, confirm=True, destructive=True, prompt=closeall_prompt,
         help="Close every open position at market (entries stay allowed; /pause first to stop them)")
async def closeall(ctx: CommandContext, args: None) -> Reply:
    return close_reply(await ctx.services.submit(CloseAll(requested_by=ctx.requested_by)))


@command("kill", group="Trading", role=Role.ADMIN, confirm=True, destructive=True, args=ReasonArgs, prompt=kill_prompt,
         help="Emergency stop: halt trading, cancel orders, flatten every position",
         usage="Stays halted across restarts until an admin sends /rearm.")
async def kill(ctx: CommandContext, args: ReasonArgs) -> Reply:
    reason = args.reason or f"kill from chat by {ctx.actor.key}"
    return kill_reply(await ctx.services.submit(Kill(requested_by=ctx.requested_by, reason=reason)))


@command("rearm", group="Trading", role=Role.ADMIN, help="Lift a kill; trading stays paused until /resume")
async def rearm(ctx: CommandContext, args: None) -> Reply:
    return intent_reply(await ctx.services.submit(Rearm(requested_by=ctx.requested_by)))
