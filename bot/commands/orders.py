"""Orders by hand: /buy and /sell (trader), /orders (viewer), /cancel (trader; /cancel all: admin).

``/buy <pair> <amount> [@ <limit>] [force]``: the amount in base units (``0.01``) or in the quote
currency with its code (``250USD``, ``250 USD``); ``@ 64000`` makes it a limit order. The
confirmation shows the order priced by the engine at the moment of asking: the quantity after
rounding to the venue's step, the expected price, value, fee at the venue's rate and the total.
The engine checks everything again when the confirmed order runs (:mod:`core.trading.manual`).

``force`` skips the risk limits (and a pause), never the kill: admins only. The registry has no
per-argument roles, so this module refuses it for other roles, before the confirmation is asked and
again when the confirmed command runs. The same goes for ``/cancel all``, which is admin like
/closeall (it withdraws every order, whoever placed it), while ``/cancel <id>`` is trader like
/close. The audit log keeps the arguments (``force`` among them) and the result, which names the
override.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bot import format as fmt
from bot.context import CommandContext
from bot.errors import CommandError, UsageError
from bot.identity import Role
from bot.prompts import Prompt, expiry
from bot.registry import arg, command
from bot.reply import Block, KeyValues, Reply, Table, Text
from core.trading import CancelOrders, IntentResult, ListOrders, OrderQuote, OrderView, PlaceOrder, Side

_NUMBER = re.compile(r"^[0-9]{1,15}(\.[0-9]{1,18})?$|^\.[0-9]{1,18}$")  # ASCII digits only
_AMOUNT = re.compile(r"^(?P<number>[^A-Za-z]*?)\s*(?P<code>[A-Za-z]{2,10})?$")
FORCE = "force"


@dataclass(frozen=True)
class OrderArgs:
    pair: str = arg(kind="pair", help="the pair, e.g. BTC/USD")
    amount: str = arg(kind="text", help="0.01 (base units) or 250USD (quote), optionally @ <limit price>, force")


@dataclass(frozen=True, slots=True)
class Parsed:
    qty: Decimal | None
    quote_amount: Decimal | None
    limit: Decimal | None
    force: bool


def _number(text: str, what: str) -> Decimal:
    token = text.strip()
    if token.startswith("-"):
        raise UsageError(f"{what} must be more than 0, not {token[:20]}")
    if not _NUMBER.match(token):
        raise UsageError(f"{what} must be a number like 0.01 (digits and a dot), not {token[:20]!r}")
    try:
        value = Decimal(token)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise UsageError(f"{what} must be a number") from None
    if value <= 0:
        raise UsageError(f"{what} must be more than 0")
    return value


def parse_amount(pair: str, text: str) -> Parsed:
    """``0.01``, ``0.01 BTC``, ``250USD``, ``250 USD``, each optionally ``@ 64000`` / ``@64000`` and ``force``."""
    base, _, quote = pair.partition("/")
    words = text.split()
    force = bool(words) and words[-1].lower() == FORCE
    if force:
        words.pop()
    amount_text, at, limit_text = " ".join(words).partition("@")
    limit = _number(limit_text, "the limit price") if at else None
    amount_text = amount_text.strip()
    if not amount_text:
        raise UsageError("give an amount: 0.01 (in " + base + f") or 250{quote} (in {quote})")
    m = _AMOUNT.match(amount_text)
    number = m.group("number").strip() if m is not None else ""
    # no digits before a currency code ("NaN", "Infinity") or no code after them ("1e309"): not a number
    value = _number(number or amount_text, "the amount")
    code = ((m.group("code") if m is not None else None) or "").upper()
    if code in ("", base):
        return Parsed(value, None, limit, force)
    if code == quote:
        return Parsed(None, value, limit, force)
    raise UsageError(f"the amount is in {base} (0.01) or in {quote} (250{quote}), not {code}")


def _request(ctx: CommandContext, args: OrderArgs, side: Side, *, preview: bool) -> PlaceOrder:
    parsed = parse_amount(args.pair, args.amount)
    if parsed.force and ctx.role < Role.ADMIN:
        raise CommandError("force (overriding the risk limits) is for admins only; nothing was done")
    return PlaceOrder(requested_by=ctx.requested_by, pair=args.pair, side=side, qty=parsed.qty,
                      quote_amount=parsed.quote_amount, limit_price=parsed.limit, force=parsed.force, preview=preview)


def _refused(result: IntentResult) -> CommandError:
    text = result.message
    return CommandError(text[0].upper() + text[1:] + ("" if text.endswith(".") else ".") + " Nothing was done.")


def _how(q: OrderQuote) -> str:
    if q.limit_price is None:
        return "at market"
    return f"limit @ {fmt.price(q.limit_price, q.price_tick)}"


async def order_prompt(ctx: CommandContext, args: Any, expires_at: datetime, side: Side) -> Prompt:
    """Prices the order with the engine (which checks it): refused at once when it would be refused."""
    result = await ctx.services.submit(_request(ctx, args, side, preview=True))
    if not result.ok or result.quote is None:
        raise _refused(result)
    q = result.quote
    verb = "Buys" if side == Side.BUY else "Sells"
    amount = f"{fmt.qty(q.qty, q.qty_step)} {q.base}"
    asked = f" ({q.requested}" + (f", rounded down to the {fmt.qty(q.qty_step)} {q.base} step)" if q.rounded else ")")
    # the amount as asked, when it says more than the quantity: given in the quote currency, or rounded
    # ("125000000 PEPE" beside "125,000,000 PEPE" would only repeat it)
    in_base = not q.rounded and q.requested.split() == [f"{q.qty.normalize():f}", q.base]
    lines = [f"Confirm /{side} {q.pair} {_how(q)}.",
             f"{verb} {amount}{'' if in_base else asked} at ≈ {fmt.price(q.price, q.price_tick)}.",
             f"Value ≈ {fmt.money(q.value, q.quote)}, fee ≈ {fmt.money(q.fee, q.quote)} "
             f"({'maker' if q.maker else 'taker'} {q.fee_rate * 100:.2f}%).",
             f"{'You pay' if side == Side.BUY else 'You receive'} ≈ {fmt.money(q.total, q.quote)}."]
    if q.limit_price is not None:
        lines.append(f"Market now {fmt.price(q.market_price, q.price_tick)}; the order rests until the market reaches "
                     f"the limit (/orders, /cancel).")
    if side == Side.BUY and q.stop is not None:
        lines.append(f"Managed like the strategy's positions: stop {fmt.price(q.stop, q.price_tick)}, /close, /kill.")
    if side == Side.SELL and q.position_qty is not None:
        left = q.position_qty - q.qty
        lines.append("Closes the position." if left <= 0 else
                     f"The position keeps {fmt.qty(left, q.qty_step)} {q.base} (its stop stays).")
    if q.overridden:
        lines.append(f"⚠ Overrides the risk limits (admin): {'; '.join(q.overridden)}.")
    lines.append(expiry(ctx, expires_at))
    return Prompt("\n".join(lines), f"{'Buy' if side == Side.BUY else 'Sell'} {q.pair}")


async def buy_prompt(ctx: CommandContext, args: Any, expires_at: datetime) -> Prompt:
    return await order_prompt(ctx, args, expires_at, Side.BUY)


async def sell_prompt(ctx: CommandContext, args: Any, expires_at: datetime) -> Prompt:
    return await order_prompt(ctx, args, expires_at, Side.SELL)


def placed_reply(result: IntentResult, side: Side) -> Reply:
    """What the order did: filled (price, fee) or resting, with its id for /cancel."""
    if not result.ok or not result.orders:
        raise _refused(result)
    o = result.orders[0]
    q = result.quote
    quote = o.quote
    base = o.pair.partition("/")[0]
    verb = "Bought" if side == Side.BUY else "Sold"
    override = " Risk limits overridden by an admin (force)." if q is not None and q.overridden else ""
    if o.filled_qty >= o.qty and o.avg_price is not None:
        head = (f"{verb} {fmt.qty(o.filled_qty, o.qty_step)} {base} at {fmt.price(o.avg_price, o.price_tick)}, "
                f"fee {fmt.money(o.fee, quote)}.{override}")
    elif o.filled_qty > 0:
        head = (f"{verb} {fmt.qty(o.filled_qty, o.qty_step)} of {fmt.qty(o.qty, o.qty_step)} {base} so far; "
                f"the rest waits for the market.{override}")
    else:
        what = f"limit {side} @ {fmt.price(o.limit_price, o.price_tick)}" if o.limit_price is not None else side
        head = f"Order placed: {what} {fmt.qty(o.qty, o.qty_step)} {base}, waiting for the market.{override}"
    items = [("order", o.short_id), ("status", o.status), ("quantity", f"{fmt.qty(o.qty, o.qty_step)} {base}")]
    if o.avg_price is not None:
        items += [("price", fmt.price(o.avg_price, o.price_tick)), ("value", fmt.money(o.filled_qty * o.avg_price,
                                                                                         quote)),
                  ("fee", fmt.money(o.fee, quote))]
    if o.limit_price is not None:
        items.append(("limit", fmt.price(o.limit_price, o.price_tick)))
    blocks: list[Block] = [Text(head, "success"), KeyValues(f"{o.pair} {side}", tuple(items))]
    if o.filled_qty < o.qty:
        blocks.append(Text(f"/orders lists it; /cancel {o.short_id} withdraws it."))
    elif side == Side.BUY:
        blocks.append(Text("/positions shows the position; its stop and exits are managed like the strategy's."))
    return Reply(tuple(blocks))


@command("buy", role=Role.TRADER, confirm=True, destructive=True, args=OrderArgs, prompt=buy_prompt,
         group="Orders & pairs", help="Buy by hand at market or at a limit (a position managed like the strategy's)",
         usage="Examples: /buy BTC/USD 0.01, /buy BTC/USD 250USD, /buy ETH/USD 0.5 @ 3000. "
               "Risk limits apply; an admin may add force to override them (never a kill).")
async def buy(ctx: CommandContext, args: OrderArgs) -> Reply:
    return placed_reply(await ctx.services.submit(_request(ctx, args, Side.BUY, preview=False)), Side.BUY)


@command("sell", role=Role.TRADER, confirm=True, destructive=True, args=OrderArgs, prompt=sell_prompt,
         group="Orders & pairs", help="Sell some or all of an open position by hand, at market or at a limit",
         usage="Examples: /sell BTC/USD 0.005, /sell BTC/USD 100USD, /sell BTC/USD 0.01 @ 70000. Spot, long-only: "
               "a sell without a position (a short) is refused.")
async def sell(ctx: CommandContext, args: OrderArgs) -> Reply:
    return placed_reply(await ctx.services.submit(_request(ctx, args, Side.SELL, preview=False)), Side.SELL)


def order_rows(orders: tuple[OrderView, ...], now: datetime) -> tuple[tuple[str, ...], ...]:
    def price(o: OrderView) -> str:
        return fmt.price(o.limit_price, o.price_tick) if o.limit_price is not None else "market"

    def qty(o: OrderView) -> str:
        done = f"{fmt.qty(o.filled_qty, o.qty_step)}/" if o.filled_qty > 0 else ""
        return done + fmt.qty(o.qty, o.qty_step)

    return tuple((o.short_id, o.pair, o.side, qty(o), price(o), fmt.ago(o.created_at, now)) for o in orders)


@command("orders", group="Orders & pairs", help="List the open orders (id, pair, side, quantity, price, age)",
         usage="/cancel <id> withdraws one (trader); /cancel all withdraws every one (admin).")
async def orders(ctx: CommandContext, args: None) -> Reply:
    result = await ctx.services.submit(ListOrders(requested_by=ctx.requested_by))
    if not result.ok:
        raise _refused(result)
    if not result.orders:
        return Reply.text("No open orders.")
    rows = order_rows(result.orders, ctx.clock.now())
    return Reply((Table(f"Open orders ({len(rows)})", ("id", "pair", "side", "qty", "price", "age"), rows,
                        key=("id", "pair"), optional=("age",)),
                  Text(f"/cancel {result.orders[0].short_id} withdraws one.")))


@dataclass(frozen=True)
class CancelArgs:
    order: str = arg(help="the order id /orders shows, or all")


def _cancel_request(ctx: CommandContext, args: CancelArgs, *, preview: bool) -> CancelOrders:
    everything = args.order.lower() == "all"
    if everything and ctx.role < Role.ADMIN:
        raise CommandError("/cancel all is for admins (like /closeall); cancel one order with /cancel <id> "
                           "(see /orders). Nothing was done.")
    return CancelOrders(requested_by=ctx.requested_by, order_id="" if everything else args.order,
                        everything=everything, pairs=ctx.access.pair_limit(ctx.actor, ctx.role), preview=preview)


async def cancel_prompt(ctx: CommandContext, args: Any, expires_at: datetime) -> Prompt:
    result = await ctx.services.submit(_cancel_request(ctx, args, preview=True))
    if not result.ok:
        raise _refused(result)
    if not result.orders:
        raise CommandError("No open orders: nothing to cancel." + (f" ({result.details[0]}: /cancel leaves those "
                                                                    "alone)" if result.details else ""))
    named = [f"{o.short_id} {o.side} {fmt.qty(o.qty - o.filled_qty, o.qty_step)} {o.pair}"
             + (f" @ {fmt.price(o.limit_price, o.price_tick)}" if o.limit_price is not None else "")
             for o in result.orders[:4]]
    if len(result.orders) > 4:
        named.append(f"and {len(result.orders) - 4} more")
    lines = [f"Confirm /cancel {args.order}.", f"Cancels {fmt.count(len(result.orders), 'order')}: {', '.join(named)}.",
             *(f"{d[0].upper()}{d[1:]}." for d in result.details),
             "Open positions stay open, with their stops.", expiry(ctx, expires_at)]
    # "Yes, ...": the other button is the dispatcher's plain "Cancel" (keep the question), which must not look alike
    return Prompt("\n".join(lines), "Yes, cancel all orders" if args.order.lower() == "all"
                  else f"Yes, cancel {args.order}")


@command("cancel", role=Role.TRADER, confirm=True, destructive=True, args=CancelArgs, prompt=cancel_prompt,
         group="Orders & pairs", help="Cancel one open order by its id, or all of them (admin)",
         usage="Example: /cancel 3fa9c1 (the id /orders shows). /cancel all is for admins.")
async def cancel(ctx: CommandContext, args: CancelArgs) -> Reply:
    result = await ctx.services.submit(_cancel_request(ctx, args, preview=False))
    if not result.ok:
        raise _refused(result)
    if not result.orders:
        return Reply.text("No open orders: nothing was cancelled." + (f" ({result.details[0]})" if result.details
                                                                      else ""))
    rows = order_rows(result.orders, ctx.clock.now())
    blocks: list[Block] = [Text(f"Cancelled {fmt.count(len(rows), 'order')}.", "success"),
                           Table("Cancelled", ("id", "pair", "side", "qty", "price", "age"), rows, key=("id", "pair"),
                                 optional=("age",))]
    if result.details:
        blocks.append(Text("; ".join(result.details).capitalize() + "."))
    return Reply(tuple(blocks))
