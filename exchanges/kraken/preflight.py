"""Kraken preflight: what ``tradectl check --live`` verifies before trading real money.

Kraken has no endpoint listing a key's permissions, so the withdrawal check asks ``WithdrawInfo``
(which only quotes a fee, never moves funds) for a withdrawal key that cannot exist: a key without
the *Withdraw Funds* permission is refused with ``EGeneral:Permission denied``; any other answer
means the key could withdraw.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from exchanges._http import utc_from_epoch
from exchanges.base import Balance
from exchanges.errors import AuthError, ExchangeError, TemporaryError
from exchanges.preflight import PreflightCheck, balances_check, clock_skew_check, guarded, min_order_check

if TYPE_CHECKING:
    from exchanges.kraken.adapter import KrakenExchange

PROBE_WITHDRAW_KEY = "tradectl-preflight-no-such-key"


async def run_preflight(venue: KrakenExchange, pairs: list[str]) -> list[PreflightCheck]:
    checks: list[PreflightCheck] = []
    balances: dict[str, Balance] = {}

    async def keys() -> PreflightCheck:
        balances.update(await venue.balances())
        return PreflightCheck("api key", True, f"authenticated; {len(balances)} asset(s) in the account")

    checks.append(await guarded("api key", keys))
    checks.append(await _withdraw_check(venue, keys_ok=checks[0].ok))

    async def skew() -> PreflightCheck:
        before = venue.clock.now()
        result = await venue.rest.public("Time")
        after = venue.clock.now()
        # unixtime is truncated to whole seconds: its midpoint is half a second later
        venue_time = utc_from_epoch(result["unixtime"]) + timedelta(milliseconds=500)
        return clock_skew_check(venue_time, before, after, venue.max_clock_skew_s)

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


async def _withdraw_check(venue: KrakenExchange, *, keys_ok: bool) -> PreflightCheck:
    name = "no withdrawal permission"
    if not keys_ok:
        return PreflightCheck(name, False, "unknown: the key does not authenticate")
    try:
        await venue.rest.private("WithdrawInfo", {"asset": "XBT", "key": PROBE_WITHDRAW_KEY, "amount": "0.001"},
                                 retry=True)
    except AuthError:
        return PreflightCheck(name, True, "the key cannot withdraw (Withdraw Funds is off)")
    except TemporaryError as exc:
        return PreflightCheck(name, False, f"unknown: {exc}")
    except ExchangeError:
        pass
    return PreflightCheck(name, False, "the key has the Withdraw Funds permission; create one without it")
