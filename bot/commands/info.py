"""Read-only commands (viewer role): what the service is doing and how it has done.

Each asks :class:`~core.views.TradingService` for a frozen view and turns it into blocks of
pre-formatted strings. No markup and no platform knowledge here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot import format as fmt
from bot.context import CommandContext
from bot.errors import CommandError
from bot.identity import CONSOLE
from bot.registry import NAME_RE, arg, command, needs_confirmation
from bot.reply import Block, KeyValues, Reply, Table, Text
from core.views import PositionView

# --- help and identity -------------------------------------------------------------------------


@dataclass(frozen=True)
class HelpArgs:
    command: str | None = arg(None, help="a command to explain")


@command("help", aliases=("start",), args=HelpArgs, help="List the commands you may use, or explain one",
         usage="/help close explains /close. The list shows only what your role allows.")
async def help_(ctx: CommandContext, args: HelpArgs) -> Reply:
    if args.command:
        name = args.command.lstrip("/").lower()
        spec = ctx.registry.get(name) if NAME_RE.match(name) else None
        if spec is None or spec.role > ctx.role:
            raise CommandError("No such command for your role. Send /help for the list.")
        items = [("minimum role", spec.role.label),
                 ("confirmation", "yes" if needs_confirmation(spec, ctx.settings) else "no")]
        if spec.aliases:
            items.append(("aliases", ", ".join(f"/{a}" for a in spec.aliases)))
        return Reply((Text(spec.usage_text()), KeyValues(f"/{spec.name}", tuple(items))))
    rows = []
    for spec in ctx.registry.visible(ctx.role):
        note = " (asks for confirmation)" if needs_confirmation(spec, ctx.settings) else ""
        rows.append((spec.synopsis(), spec.help + note))
    return Reply((Table(f"Commands for your role ({ctx.role.label})", ("command", "what it does"), tuple(rows)),))


@command("whoami", help="Show your platform id, chat and role")
async def whoami(ctx: CommandContext, args: None) -> Reply:
    a = ctx.actor
    boot = ctx.access.bootstrap_role(a.platform, a.user_id)
    if a.platform == CONSOLE:
        source = "the console operator is always admin"
    else:
        source = "settings" if boot is ctx.role else "granted from chat"
    return Reply((KeyValues("You", (
        ("platform", a.platform), ("user id", a.user_id), ("chat", f"{ctx.chat.chat_id} ({ctx.chat.kind})"),
        ("role", ctx.role.label), ("role from", source),
    )),))


# --- status and positions ----------------------------------------------------------------------


def _position_rows(positions: tuple[PositionView, ...] | list[PositionView]) -> tuple[tuple[str, ...], ...]:
    return tuple((p.pair, fmt.qty(p.qty), fmt.price(p.entry_price), fmt.price(p.mark_price),
                  fmt.signed(p.unrealized_pnl), fmt.pct(p.unrealized_pct), fmt.price(p.stop)) for p in positions)


_POSITION_HEADERS = ("pair", "qty", "entry", "mark", "PnL", "PnL %", "stop")


@command("status", help="State, mode, equity, open positions, today's PnL, data freshness, leader")
async def status(ctx: CommandContext, args: None) -> Reply:
    st = await ctx.services.status()
    blocks: list[Block] = []
    if st.state == "killed":
        blocks.append(Text("Trading is KILLED: no new orders. An admin must /rearm, then /resume.", "error"))
    elif st.state == "paused":
        blocks.append(Text("Entries are paused; open positions are still managed. /resume to trade.", "warning"))
    state = st.state + (f" ({st.state_reason})" if st.state_reason else "")
    items = [("state", state)]
    if st.state_changed_at is not None:
        items.append(("since", f"{fmt.when(st.state_changed_at)} by {st.state_changed_by or 'system'}"))
    ages = ", ".join(f"{pair} {fmt.age(s)}" for pair, s in sorted(st.data_age_s.items())) or "no pairs"
    items += [
        ("mode", f"{st.mode} on {st.venue}"),
        ("equity", fmt.money(st.equity, st.quote)),
        ("cash", fmt.money(st.cash, st.quote)),
        ("open positions", str(len(st.positions))),
        ("open orders", str(st.open_orders)),
        ("today's PnL", fmt.signed(st.today_pnl, st.quote)),
        ("data age", ages),
        ("leader", st.leader or "none"),
        ("instance", st.instance_id or "-"),
        ("uptime", fmt.age(st.uptime_s)),
    ]
    blocks.append(KeyValues("Status", tuple(items)))
    if st.positions:
        blocks.append(Table("Open positions", _POSITION_HEADERS, _position_rows(st.positions)))
    return Reply(tuple(blocks))


@command("positions", help="Open positions with entry, mark, unrealized PnL and stop")
async def positions(ctx: CommandContext, args: None) -> Reply:
    rows = await ctx.services.positions()
    if not rows:
        return Reply.text("No open positions.")
    return Reply((Table(f"Open positions ({len(rows)})", _POSITION_HEADERS, _position_rows(rows)),))


@command("balance", aliases=("balances",), help="Balances per currency, with their value in the quote currency")
async def balance(ctx: CommandContext, args: None) -> Reply:
    rows = await ctx.services.balances()
    if not rows:
        return Reply.text("No balances.")
    return Reply((Table("Balances", ("currency", "total", "available", "value"), tuple(
        (b.currency, fmt.qty(b.total), fmt.qty(b.available), fmt.money(b.value_in_quote)) for b in rows)),))


# --- performance -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PnlArgs:
    period: Literal["all", "today", "week", "month"] = arg("all", help="the period to sum")


@command("pnl", aliases=("profit",), args=PnlArgs, help="Profit and loss: realized, unrealized, win rate, drawdown",
         usage="Periods: today, week (since Monday), month (since the 1st), all (default).")
async def pnl(ctx: CommandContext, args: PnlArgs) -> Reply:
    p = await ctx.services.pnl(args.period)
    since = f" since {fmt.when(p.start)}" if p.start else ""
    dd = f"{fmt.money(p.max_drawdown)} ({fmt.pct(-p.max_drawdown_pct) if p.max_drawdown_pct else '0.00%'})"
    if p.drawdown_start and p.drawdown_end:
        dd += f" from {fmt.when(p.drawdown_start)} to {fmt.when(p.drawdown_end)}"
    items = (
        ("realized", fmt.signed(p.realized)),
        ("unrealized", fmt.signed(p.unrealized)),
        ("total", fmt.signed(p.realized + p.unrealized)),
        ("fees", fmt.money(p.fees)),
        ("trades", f"{p.trades} ({p.wins} won, {p.losses} lost)"),
        ("win rate", fmt.ratio(p.win_rate)),
        ("profit factor", fmt.number(p.profit_factor)),
        ("expectancy", fmt.signed(p.expectancy)),
        ("max drawdown", dd),
        ("best pair", p.best_pair or fmt.DASH),
        ("worst pair", p.worst_pair or fmt.DASH),
    )
    return Reply((KeyValues(f"PnL, {p.period}{since}", items),))


@dataclass(frozen=True)
class DaysArgs:
    n: int = arg(7, min=1, max=90, help="how many days")


@dataclass(frozen=True)
class WeeksArgs:
    n: int = arg(4, min=1, max=52, help="how many weeks")


@dataclass(frozen=True)
class MonthsArgs:
    n: int = arg(6, min=1, max=24, help="how many months")


async def _periods(ctx: CommandContext, unit: Literal["day", "week", "month"], n: int, title: str) -> Reply:
    rows = await ctx.services.periods(unit, n)
    return Reply((Table(title, (unit, "realized", "trades", "fees"), tuple(
        (r.start.isoformat(), fmt.signed(r.realized), str(r.trades), fmt.money(r.fees)) for r in rows)),))


@command("daily", args=DaysArgs, help="Realized PnL per day")
async def daily(ctx: CommandContext, args: DaysArgs) -> Reply:
    return await _periods(ctx, "day", args.n, f"Daily PnL, last {args.n} days")


@command("weekly", args=WeeksArgs, help="Realized PnL per week")
async def weekly(ctx: CommandContext, args: WeeksArgs) -> Reply:
    return await _periods(ctx, "week", args.n, f"Weekly PnL, last {args.n} weeks")


@command("monthly", args=MonthsArgs, help="Realized PnL per month")
async def monthly(ctx: CommandContext, args: MonthsArgs) -> Reply:
    return await _periods(ctx, "month", args.n, f"Monthly PnL, last {args.n} months")


@dataclass(frozen=True)
class TradesArgs:
    n: int = arg(10, min=1, max=50, help="how many trades")


@command("trades", args=TradesArgs, help="The latest trades, newest first")
async def trades(ctx: CommandContext, args: TradesArgs) -> Reply:
    rows = await ctx.services.trades(args.n)
    if not rows:
        return Reply.text("No trades yet.")
    return Reply((Table(f"Last {len(rows)} trades", ("pair", "qty", "entry", "exit", "PnL", "PnL %", "closed", "reason"),
                        tuple((t.pair, fmt.qty(t.qty), fmt.price(t.entry_price), fmt.price(t.exit_price),
                               fmt.signed(t.pnl), fmt.pct(t.pnl_pct), fmt.when(t.closed_at) if t.closed_at else "open",
                               fmt.clip(t.exit_reason, 40)) for t in rows)),))


@command("performance", help="Realized PnL per pair, best first")
async def performance(ctx: CommandContext, args: None) -> Reply:
    rows = await ctx.services.performance()
    if not rows:
        return Reply.text("No closed trades yet.")
    return Reply((Table("Performance per pair", ("pair", "trades", "PnL", "win rate"), tuple(
        (r.pair, str(r.trades), fmt.signed(r.pnl), fmt.ratio(r.win_rate)) for r in rows)),))


@command("health", help="Component health, counters and memory")
async def health(ctx: CommandContext, args: None) -> Reply:
    h = await ctx.services.health()
    blocks: list[Block] = [KeyValues("Health: OK" if h.ok else "Health: DEGRADED", tuple(sorted(h.components.items())))]
    extra = [(k, str(v)) for k, v in sorted(h.counters.items())]
    if h.rss_mb is not None:
        extra.append(("memory (RSS)", f"{h.rss_mb:.0f} MB"))
    if extra:
        blocks.append(KeyValues("Counters", tuple(extra)))
    return Reply(tuple(blocks))

