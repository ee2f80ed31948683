"""Coinbase preflight: what ``tradectl check --live`` verifies before trading real money.

``/key_permissions`` states what the key may do; a key that ``can_transfer`` could move funds
off the exchange and is refused. The clock matters more here than elsewhere: every request's JWT
is valid for two minutes from our clock's ``now``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchanges._http import dec, utc_from_epoch, utc_from_iso
from exchanges.base import Balance
from exchanges.errors import ExchangeError
from exchanges.preflight import PreflightCheck, balances_check, clock_skew_check, guarded, min_order_check

if TYPE_CHECKING:
    from exchanges.coinbase.adapter import CoinbaseExchange


async def run_preflight(venue: CoinbaseExchange, pairs: list[str]) -> list[PreflightCheck]:
    checks: list[PreflightCheck] = []
    balances: dict[str, Balance] = {}

    async def keys() -> PreflightCheck:
        balances.update(await venue.balances())
        return PreflightCheck("api key", True, f"authenticated; {len(balances)} account(s)")

    async def permissions() -> PreflightCheck:
        p = await venue.rest.request("GET", "/key_permissions", retry=True)
        if p.get("can_transfer"):
            return PreflightCheck("no transfer permission", False,
                                  "the key can transfer funds; create a key with View and Trade only")
        if not p.get("can_trade"):
            return PreflightCheck("no transfer permission", False, "the key cannot trade; add the Trade permission")
        return PreflightCheck("no transfer permission", True,
                              f"view={bool(p.get('can_view'))} trade=True transfer=False "
                              f"(portfolio {p.get('portfolio_type', '?')})")

    async def skew() -> PreflightCheck:
        before = venue.clock.now()
        t = await venue.rest.request("GET", "/time", retry=True, auth=False)
        after = venue.clock.now()
        venue_time = utc_from_epoch(dec(t["epochMillis"]) / 1000) if t.get("epochMillis") else utc_from_iso(t["iso"])
        return clock_skew_check(venue_time, before, after, venue.max_clock_skew_s)

    checks.append(await guarded("api key", keys))
    checks.append(await guarded("no transfer permission", permissions))
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
