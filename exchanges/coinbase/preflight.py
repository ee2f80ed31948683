"""Coinbase's part of the preflight (:func:`exchanges.preflight.run_preflight` does the rest).

``/key_permissions`` states what the key may do; a key that ``can_transfer`` could move funds
off the exchange and is refused. The clock matters more here than elsewhere: every request's JWT
is valid for two minutes from our clock's ``now``.
"""

from __future__ import annotations

from datetime import datetime

from exchanges._http import dec, utc_from_epoch, utc_from_iso
from exchanges.base import PreflightCheck
from exchanges.coinbase.rest import CoinbaseRest

NAME = "no transfer permission"


async def permission_check(rest: CoinbaseRest) -> PreflightCheck:
    p = await rest.request("GET", "/key_permissions", retry=True)
    if p.get("can_transfer"):
        return PreflightCheck(NAME, False, "the key can transfer funds; create a key with View and Trade only")
    if not p.get("can_trade"):
        return PreflightCheck(NAME, False, "the key cannot trade; add the Trade permission")
    return PreflightCheck(NAME, True, f"view={bool(p.get('can_view'))} trade=True transfer=False "
                                      f"(portfolio {p.get('portfolio_type', '?')})")


async def venue_time(rest: CoinbaseRest) -> datetime:
    t = await rest.request("GET", "/time", retry=True, auth=False)
    return utc_from_epoch(dec(t["epochMillis"]) / 1000) if t.get("epochMillis") else utc_from_iso(t["iso"])
