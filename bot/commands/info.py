"""Read-only commands (viewer role): what the service is doing and how it has done.

Each asks :class:`~core.trading.views.TradingService` for a frozen view and turns it into blocks of
pre-formatted strings. No markup and no platform knowledge here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from bot import format as fmt
from bot.context import CommandContext
from bot.errors import CommandError
from bot.identity import CONSOLE
from bot.notify.formats import Style, exit_reason
from bot.registry import NAME_RE, arg, command
from bot.reply import Block, KeyValues, Reply, Table, Text, TextStyle, more_buttons
from core.trading import PositionView

# --- help and identity -------------------------------------------------------------------------


@dataclass(frozen=True)
class HelpArgs:
    command: str | None = arg(None, help="a command to explain")


@command("help", aliases=("start",), args=HelpArgs, help="List the commands you may use, or explain one",
         group="Status & info", usage="/help close explains /close. The list shows only what your role allows.")
async def help_(ctx: CommandContext, args: HelpArgs) -> Reply:
    if args.command:
        name = args.command.lstrip("/").lower()
        spec = ctx.registry.get(name) if NAME_RE.match(name) else None
        if spec is None or spec.role > ctx.role:
            raise CommandError("No such command for your role. Send /help for the list.")
        items = [("minimum role", spec.role.label),
                 ("confirmation", "yes" if spec.asks_confirmation(ctx.settings) else "no")]
        if spec.aliases:
            items.append(("aliases", ", ".join(f"/{a}" for a in spec.aliases)))
        return Reply((Text(spec.usage_text()), KeyValues(f"/{spec.name}", tuple(items))))
    # one short section per group, each command a plain line (never a grid: on Telegram a command in a
    # code block cannot be tapped)
    sections = tuple(KeyValues(group, tuple((spec.synopsis(), spec.help + (" (asks for confirmation)"
                                                                           if spec.asks_confirmation(ctx.settings)
                                                                           else "")) for spec in specs))
                     for group, specs in ctx.registry.groups(ctx.role))
    return Reply((Text(f"Commands for your role ({ctx.role.label}). /help <command> explains one."), *sections))


@command("whoami", group="Status & info", help="Show your platform id, chat and role")
async def whoami(ctx: CommandContext, args: None) -> Reply:
    a = ctx.actor
    boot = ctx.access.bootstrap_role(a.platform, a.user_id)
    if a.platform == CONSOLE:
        source = "the console operator is always admin"
    else:
        source = "settings" if boot is ctx.role else "granted from chat"
    name = (("name", a.display),) if a.display else ()  # as the platform says; shown beside the id elsewhere
    return Reply((KeyValues("You", (
        *name, ("platform", a.platform), ("user id", a.user_id), ("chat", f"{ctx.chat.chat_id} ({ctx.chat.kind})"),
        ("role", ctx.role.label), ("role from", source),
    )),))


# --- status and positions ----------------------------------------------------------------------

STATE_MARK = {"running": "🟢", "paused": "⏸", "killed": "🛑"}
_STATE_STYLE: dict[str, TextStyle] = {"killed": "error", "paused": "warning"}


def _common_quote(positions: Sequence[PositionView]) -> str:
    """The quote currency every position shares (then the title names it once, not every cell), or ""."""
    quotes = {p.quote for p in positions}
    return quotes.pop() if len(quotes) == 1 else ""


def _money_cell(value: Decimal, quote: str, common: str) -> str:
    return fmt.signed(value, quote) if not common else fmt.signed(value, common).removesuffix(f" {common}")


def _position_rows(positions: Sequence[PositionView], common: str) -> tuple[tuple[str, ...], ...]:
    return tuple((p.pair, fmt.qty(p.qty, p.qty_step), fmt.price(p.entry_price, p.price_tick),
                  fmt.price(p.mark_price, p.price_tick), _money_cell(p.unrealized_pnl, p.quote, common),
                  fmt.pct(p.unrealized_pct), fmt.price(p.stop, p.price_tick)) for p in positions)


_POSITION_HEADERS = ("pair", "qty", "entry", "mark", "PnL", "PnL %", "stop")
_POSITION_OPTIONAL = ("stop", "entry", "PnL %")  # a narrow table leaves these out first; records show all


def _positions_table(title: str, positions: Sequence[PositionView]) -> Table:
    common = _common_quote(positions)
    title += f", PnL in {common}" if common else ""
    return Table(title, _POSITION_HEADERS, _position_rows(positions, common), key=("pair",),
                 optional=_POSITION_OPTIONAL)


def _compact_positions(positions: Sequence[PositionView]) -> Table:
    """/status: one short row per position (pair, quantity, unrealized PnL and %), phone-width."""
    common = _common_quote(positions)
    title = f"Open positions ({len(positions)})" + (f", PnL in {common}" if common else "")
    rows = tuple((p.pair, fmt.qty(p.qty, p.qty_step),
                  f"{_money_cell(p.unrealized_pnl, p.quote, common)} ({fmt.pct(p.unrealized_pct)})") for p in positions)
    return Table(title, ("pair", "qty", "PnL"), rows, key=("pair",))


def _totals_by_quote(positions: Sequence[PositionView]) -> str:
    """``value 6,250.00 USD · unrealized +12.30 USD`` (one pair of figures per quote currency)."""
    sums: dict[str, list[Decimal]] = {}
    for p in positions:
        value_pnl = sums.setdefault(p.quote, [Decimal(0), Decimal(0)])
        value_pnl[0] += p.value
        value_pnl[1] += p.unrealized_pnl
    return " · ".join(f"value {fmt.money(v, q)} · unrealized {fmt.signed(u, q)}" for q, (v, u) in sums.items())


@command("status", help="State, equity, today's PnL, unrealized PnL and open positions, at a glance",
         group="Status & info")
async def status(ctx: CommandContext, args: None) -> Reply:
    st = await ctx.services.status()
    q = st.quote
    today = fmt.pnl(st.today_pnl, st.today_pnl_pct, q)
    paper = f"{st.paper_label} · " if st.paper_label else ""  # simulated money on real prices: say so first
    headline = (f"{STATE_MARK.get(st.state, '')} {st.state.capitalize()} · {paper}equity {fmt.money(st.equity, q)} · "
                f"today {today} · unrealized {fmt.signed(st.unrealized, q)}").strip()
    blocks: list[Block] = [Text(headline, _STATE_STYLE.get(st.state, "plain"))]
    if st.state != "running":
        since = ""
        if st.state_changed_at is not None:
            by = await ctx.access.names.label(st.state_changed_by) if st.state_changed_by else "the system"
            since = f" since {ctx.clock_time(st.state_changed_at)} by {by}"
        why = f": {st.state_reason}" if st.state_reason else ""
        todo = ("No new orders. An admin must /rearm, then /resume." if st.state == "killed"
                else "Open positions keep their stops and exits. /resume to trade.")
        blocks.append(Text(f"{st.state.capitalize()}{since}{why}\n{todo}",
                           "error" if st.state == "killed" else "warning"))
    ages = [a for a in st.data_age_s.values() if a is not None]
    missing = [p for p, a in sorted(st.data_age_s.items()) if a is None]
    data = f"{fmt.age(max(ages))} old" if ages else "none yet"
    if ages and missing:
        data += f" (none for {', '.join(missing)})"
    mode = f"{st.paper_label} (simulated orders and balances)" if st.paper_label else f"{st.mode} on {st.venue}"
    blocks.append(KeyValues("Details", (("mode", mode), ("open orders", str(st.open_orders)),
                                        ("market data", data))))
    if st.positions:
        blocks.append(_compact_positions(st.positions))
    else:
        blocks.append(Text("No open positions."))
    return Reply(tuple(blocks))


@command("positions", group="Status & info", help="Open positions with entry, mark, unrealized PnL and stop")
async def positions(ctx: CommandContext, args: None) -> Reply:
    rows = await ctx.services.positions()
    if not rows:
        return Reply.text("No open positions.")
    return Reply((_positions_table(f"Open positions ({len(rows)})", rows), Text(_totals_by_quote(rows))))


@command("balance", aliases=("balances",), help="Balances per currency, with their value in the quote currency",
         group="Status & info")
async def balance(ctx: CommandContext, args: None) -> Reply:
    rows = await ctx.services.balances()
    if not rows:
        return Reply.text("No balances.")
    quote = next((b.quote for b in rows if b.quote), "")

    def amount(currency: str, value: Decimal) -> str:
        return fmt.money(value, currency) if currency == quote else fmt.qty(value)

    table = Table("Balances", ("currency", "total", "available", "value"), tuple(
        (b.currency, amount(b.currency, b.total), amount(b.currency, b.available), fmt.money(b.value_in_quote, b.quote))
        for b in rows), optional=("available",))
    known = [b.value_in_quote for b in rows if b.value_in_quote is not None]
    blocks: list[Block] = [table]
    if known and quote:
        blocks.append(Text(f"Total value {fmt.money(sum(known, Decimal(0)), quote)}"
                           + (" (some currencies have no price yet)" if len(known) < len(rows) else "")))
    return Reply(tuple(blocks))


# --- performance -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PnlArgs:
    period: Literal["all", "today", "week", "month"] = arg("all", help="the period to sum")


@command("pnl", aliases=("profit",), args=PnlArgs, help="Profit and loss: realized, unrealized, win rate, drawdown",
         group="Profit & trades", usage="Periods: today, week (since Monday), month (since the 1st), all (default).")
async def pnl(ctx: CommandContext, args: PnlArgs) -> Reply:
    p = await ctx.services.pnl(args.period)
    q = p.quote
    since = f" since {ctx.when(p.start)}" if p.start else ""
    dd = f"{fmt.money(p.max_drawdown, q)} ({fmt.pct(-p.max_drawdown_pct) if p.max_drawdown_pct else '0.00%'})"
    if p.drawdown_start and p.drawdown_end:
        dd += f" from {ctx.clock_time(p.drawdown_start)} to {ctx.clock_time(p.drawdown_end)}"
    items = (
        ("realized", fmt.signed(p.realized, q)),
        ("unrealized", fmt.signed(p.unrealized, q)),
        ("total", fmt.signed(p.realized + p.unrealized, q)),
        ("fees", fmt.money(p.fees, q)),
        ("trades", f"{p.trades} ({p.wins} won, {p.losses} lost)"),
        ("win rate", fmt.ratio(p.win_rate)),
        ("profit factor", fmt.number(p.profit_factor)),
        ("expectancy", fmt.signed(p.expectancy, q)),
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


def _period_label(unit: str, start: date) -> str:
    if unit == "day":
        return fmt.day(start)
    if unit == "week":
        return f"from {fmt.day(start)}"
    return f"{start:%b %Y}"


async def _periods(ctx: CommandContext, unit: Literal["day", "week", "month"], n: int, title: str) -> Reply:
    rows = await ctx.services.periods(unit, n)
    return Reply((Table(f"{title} ({ctx.timezone})", (unit, "realized", "trades", "fees"), tuple(
        (_period_label(unit, r.start), fmt.signed(r.realized, r.quote), str(r.trades), fmt.money(r.fees, r.quote))
        for r in rows), optional=("fees",)),))


@command("daily", group="Profit & trades", args=DaysArgs, help="Realized PnL per day")
async def daily(ctx: CommandContext, args: DaysArgs) -> Reply:
    return await _periods(ctx, "day", args.n, f"Daily PnL, last {args.n} days")


@command("weekly", group="Profit & trades", args=WeeksArgs, help="Realized PnL per week")
async def weekly(ctx: CommandContext, args: WeeksArgs) -> Reply:
    return await _periods(ctx, "week", args.n, f"Weekly PnL, last {args.n} weeks")


@command("monthly", group="Profit & trades", args=MonthsArgs, help="Realized PnL per month")
async def monthly(ctx: CommandContext, args: MonthsArgs) -> Reply:
    return await _periods(ctx, "month", args.n, f"Monthly PnL, last {args.n} months")


@dataclass(frozen=True)
class TradesArgs:
    n: int = arg(10, min=1, max=50, help="how many trades per page")
    page: int = arg(1, min=1, max=50, help="which page, 1 = the newest")


@command("trades", args=TradesArgs, help="The latest closed trades, newest first (open ones: /positions)",
         group="Profit & trades", usage="/trades 20 shows the last 20; /trades 20 2 the 20 before them.")
async def trades(ctx: CommandContext, args: TradesArgs) -> Reply:
    skip = args.n * (args.page - 1)
    fetched = await ctx.services.trades(skip + args.n + 1)  # one more than shown: is there a next page?
    rows = [t for t in fetched if t.closed_at is not None][skip:]
    if not rows:
        return Reply.text("No closed trades yet." if args.page == 1 else f"No trades on page {args.page}.")
    more = len(rows) > args.n
    rows = rows[: args.n]
    first = skip + 1
    title = (f"Closed trades {first}-{skip + len(rows)}, newest first" if args.page > 1
             else f"Last {len(rows)} closed trades")
    style = Style(timezone=ctx.timezone)
    table = Table(title, ("pair", "qty", "entry", "exit", "PnL", "closed", "reason"), tuple(
        (t.pair, fmt.qty(t.qty, t.qty_step), fmt.price(t.entry_price, t.price_tick),
         fmt.price(t.exit_price, t.price_tick), fmt.pnl(t.pnl, t.pnl_pct, t.quote), ctx.clock_time(t.closed_at),
         fmt.clip(exit_reason(t.exit_reason, style), 40))
        for t in rows), key=("pair",), optional=("reason", "entry", "qty"),
        more=f"Older trades: /trades {args.n} {args.page + 1}" if more else "")
    return Reply((table, *more_buttons(table.more, f"trades {args.n} {args.page + 1}")))


@command("performance", group="Profit & trades", help="Realized PnL per pair, best first")
async def performance(ctx: CommandContext, args: None) -> Reply:
    rows = await ctx.services.performance()
    if not rows:
        return Reply.text("No closed trades yet.")
    return Reply((Table("Performance per pair", ("pair", "trades", "PnL", "win rate"), tuple(
        (r.pair, str(r.trades), fmt.signed(r.pnl, fmt.quote_of(r.pair)), fmt.ratio(r.win_rate)) for r in rows)),))


@command("health", group="Status & info", help="Component health, counters and memory")
async def health(ctx: CommandContext, args: None) -> Reply:
    h = await ctx.services.health()
    blocks: list[Block] = [KeyValues("Health: OK" if h.ok else "Health: DEGRADED", tuple(sorted(h.components.items())))]
    service = [(k, v) for k, v in (("leader", h.leader or ("none" if h.instance_id else "")),
                                   ("instance", h.instance_id),
                                   ("uptime", fmt.age(h.uptime_s) if h.uptime_s is not None else "")) if v]
    if service:
        blocks.append(KeyValues("Service", tuple(service)))
    extra = [(k, str(v)) for k, v in sorted(h.counters.items())]
    if h.rss_mb is not None:
        extra.append(("memory (RSS)", f"{h.rss_mb:.0f} MB"))
    if extra:
        blocks.append(KeyValues("Counters", tuple(extra)))
    return Reply(tuple(blocks))

