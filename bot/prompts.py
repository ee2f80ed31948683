"""What a confirmation asks: the consequences of this command, now, in words a phone shows at a glance.

A command declared with ``confirm`` may name a prompt function (``@command(..., prompt=kill_prompt)``).
The dispatcher calls it before it creates the confirmation, with the parsed arguments and the moment
the confirmation expires, and it returns a :class:`Prompt`: what will be closed and cancelled (from
the trading service's views at the moment of asking), what stays afterwards, and the label of the
button that acts ("🛑 Kill now", "Close BTC/USD"). It is also where arguments are checked against
the state: raising :class:`~bot.errors.CommandError` refuses the command at once, without a
confirmation (``/close`` for a pair with no open position).

The figures are those of the moment of asking; the command itself acts on what is open when it runs,
and its reply says exactly what it did.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot import format as fmt
from bot.context import CommandContext
from bot.errors import CommandError
from core.trading import PositionView

LISTED = 4  # positions named in a prompt; the rest are counted ("and 3 more")


@dataclass(frozen=True, slots=True)
class Prompt:
    """``text``: the consequences; ``action``: the label of the button that acts (the other is Cancel)."""

    text: str
    action: str = "Confirm"


PromptFn = Callable[[CommandContext, Any, datetime], Awaitable[Prompt]]


def _value(p: PositionView) -> Decimal:
    return abs(p.qty) * (p.mark_price if p.mark_price is not None else p.entry_price)


def _quote(pair: str) -> str:
    return pair.rpartition("/")[2]


def positions_phrase(positions: Sequence[PositionView]) -> str:
    """``2 positions (ETH/USD 0.704, SOL/USD 19.8 ≈ 6,250.00 USD)``: what a close of these sells."""
    named = [f"{p.pair} {fmt.qty(abs(p.qty), getattr(p, 'qty_step', None))}" for p in positions[:LISTED]]
    if len(positions) > LISTED:
        named.append(f"and {len(positions) - LISTED} more")
    totals: dict[str, Decimal] = {}
    for p in positions:
        totals[_quote(p.pair)] = totals.get(_quote(p.pair), Decimal(0)) + _value(p)
    worth = " + ".join(fmt.money(v, q) for q, v in totals.items())
    return f"{fmt.count(len(positions), 'position')} ({', '.join(named)} ≈ {worth})"


def expiry(ctx: CommandContext, expires_at: datetime) -> str:
    """``Expires 14:18 CET (60 s).`` in the service's time zone."""
    seconds = max(0, round((expires_at - ctx.clock.now()).total_seconds()))
    return f"Expires {fmt.clock(expires_at, ctx.timezone, ctx.clock.now())} ({seconds} s)."


async def kill_prompt(ctx: CommandContext, args: Any, expires_at: datetime) -> Prompt:
    status = await ctx.services.status()
    positions = list(status.positions)
    orders = status.open_orders
    if positions or orders:
        acts = []
        if positions:
            acts.append(f"closes {positions_phrase(positions)} at market")
        if orders:
            acts.append(f"cancels {fmt.count(orders, 'order')}")
        what = " and ".join(acts)
        what = what[0].upper() + what[1:] + "."
    else:
        what = "Nothing is open: no positions to close, no orders to cancel."
    lines = ["Confirm /kill: emergency stop.", what,
             "Trading stays halted, across restarts, until an admin sends /rearm.", expiry(ctx, expires_at)]
    return Prompt("\n".join(lines), "🛑 Kill now")


async def closeall_prompt(ctx: CommandContext, args: Any, expires_at: datetime) -> Prompt:
    positions = list((await ctx.services.status()).positions)
    if not positions:
        raise CommandError("No open positions: nothing to close.")
    lines = ["Confirm /closeall.", f"Closes {positions_phrase(positions)} at market.",
             "New entries stay allowed (/pause first to stop them).", expiry(ctx, expires_at)]
    return Prompt("\n".join(lines), "Close all now")


async def close_prompt(ctx: CommandContext, args: Any, expires_at: datetime) -> Prompt:
    pair = args.pair
    if pair not in ctx.services.pairs:
        raise CommandError(f"Unknown pair {pair}; traded pairs: {', '.join(ctx.services.pairs)}.")
    positions = {p.pair: p for p in (await ctx.services.status()).positions}
    position = positions.get(pair)
    if position is None:
        open_now = ", ".join(positions) or "none"
        raise CommandError(f"No open position in {pair}: nothing to close. Open positions: {open_now}.")
    quote = _quote(pair)
    unrealized = fmt.pnl(position.unrealized_pnl, position.unrealized_pct, quote)
    lines = [f"Confirm /close {pair}.",
             f"Closes {pair} {fmt.qty(abs(position.qty), getattr(position, 'qty_step', None))} at market "
             f"(≈ {fmt.money(_value(position), quote)}, unrealized {unrealized}).",
             expiry(ctx, expires_at)]
    return Prompt("\n".join(lines), f"Close {pair}")
