"""Checks a live venue must pass before real money moves (``tradectl check --live``).

Each live adapter's ``preflight(pairs)`` (:class:`exchanges.base.LiveExchange`) returns a list of
:class:`PreflightCheck`, built by :func:`run_preflight` here from the two things that differ per venue:
how to ask whether the key can move funds off the exchange, and how to read the venue's clock. A
check never raises: a failing call becomes ``ok=False`` with the reason, so the operator sees every
problem at once. Details never contain credentials.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal

from exchanges.base import Balance, Exchange, Market, PreflightCheck
from exchanges.clock import Clock
from exchanges.errors import ExchangeError

__all__ = ["PreflightCheck", "balances_check", "clock_skew_check", "guarded", "min_order_check", "run_preflight"]

DEFAULT_MAX_SKEW_S = 5.0


async def guarded(name: str, check: Callable[[], Awaitable[PreflightCheck]]) -> PreflightCheck:
    """Run one check; an exchange error becomes a failed check instead of an exception."""
    try:
        return await check()
    except ExchangeError as exc:
        return PreflightCheck(name, False, f"{type(exc).__name__}: {exc}")


def clock_skew_check(venue_time: datetime, local_before: datetime, local_after: datetime,
                     max_skew_s: float = DEFAULT_MAX_SKEW_S) -> PreflightCheck:
    """Compare the venue's clock with the midpoint of our request (halves the network delay)."""
    local_mid = local_before + (local_after - local_before) / 2
    skew = (venue_time - local_mid).total_seconds()
    ok = abs(skew) <= max_skew_s
    detail = f"venue clock {skew:+.2f}s from ours (limit ±{max_skew_s:g}s)"
    if not ok:
        detail += "; sync this host's clock (NTP) before trading"
    return PreflightCheck("clock skew", ok, detail)


def balances_check(balances: dict[str, Balance]) -> PreflightCheck:
    funded = sorted((b for b in balances.values() if b.total > 0), key=lambda b: b.currency)
    if not funded:
        return PreflightCheck("balances", False, "the account holds nothing; fund it before trading")
    listed = ", ".join(f"{b.currency} {b.available.normalize():f} free of {b.total.normalize():f}" for b in funded)
    return PreflightCheck("balances", True, listed)


def min_order_check(pair: str, market: Market | None, balances: dict[str, Balance],
                    price: Decimal | None = None) -> PreflightCheck:
    """The venue trades ``pair`` and the quote balance covers one minimum-sized order."""
    name = f"minimum order {pair}"
    if market is None:
        return PreflightCheck(name, False, f"{pair} is not traded on this venue")
    parts = [f"min qty {market.min_qty.normalize():f} {market.base}",
             f"step {market.qty_step.normalize():f}", f"tick {market.price_tick.normalize():f}"]
    if market.min_notional:
        parts.append(f"min notional {market.min_notional.normalize():f} {market.quote}")
    ok = True
    if price is not None:
        need = max(market.min_qty * price, market.min_notional)
        quote = balances.get(market.quote)
        base = balances.get(market.base)
        have_quote = quote.available if quote else Decimal(0)
        have_base = base.available if base else Decimal(0)
        parts.append(f"a minimum buy costs ~{need.quantize(Decimal('0.01'))} {market.quote}, "
                     f"{have_quote.normalize():f} free")
        ok = have_quote >= need or have_base >= market.min_qty
        if not ok:
            parts.append("not enough funds for even one minimum order")
    return PreflightCheck(name, ok, "; ".join(parts))


async def run_preflight(venue: Exchange, pairs: list[str], *, clock: Clock, max_skew_s: float, holdings: str,
                        permission: Callable[[bool], Awaitable[PreflightCheck]],
                        venue_time: Callable[[], Awaitable[datetime]]) -> list[PreflightCheck]:
    """The checks every live venue runs, in this order: the key authenticates (reading balances),
    ``permission(keys_ok)`` (the venue's own withdrawal/transfer question), clock skew against
    ``venue_time()``, the balances, and one minimum order per pair at the current ask.

    ``holdings`` names what the balance count counts on this venue ("account(s)")."""
    checks: list[PreflightCheck] = []
    balances: dict[str, Balance] = {}

    async def keys() -> PreflightCheck:
        balances.update(await venue.balances())
        return PreflightCheck("api key", True, f"authenticated; {len(balances)} {holdings}")

    async def skew() -> PreflightCheck:
        before = clock.now()
        moment = await venue_time()
        after = clock.now()
        return clock_skew_check(moment, before, after, max_skew_s)

    checks.append(await guarded("api key", keys))
    checks.append(await permission(checks[0].ok))
    checks.append(await guarded("clock skew", skew))
    if checks[0].ok:
        checks.append(balances_check(balances))
    markets = await venue.markets()
    for pair in pairs:
        price = None
        if pair in markets:
            try:
                price = (await venue.ticker(pair)).ask
            except ExchangeError:
                price = None
        checks.append(min_order_check(pair, markets.get(pair), balances, price))
    return checks
