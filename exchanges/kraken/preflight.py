"""Kraken's part of the preflight (:func:`exchanges.preflight.run_preflight` does the rest).

Kraken has no endpoint listing a key's permissions, so the withdrawal check asks ``WithdrawInfo``
(which only quotes a fee, never moves funds) for a withdrawal key that cannot exist: a key without
the *Withdraw Funds* permission is refused with ``EGeneral:Permission denied``; any other answer
means the key could withdraw.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from exchanges._http import utc_from_epoch
from exchanges.base import PreflightCheck
from exchanges.errors import AuthError, ExchangeError, TemporaryError
from exchanges.kraken.rest import KrakenRest

PROBE_WITHDRAW_KEY = "tradectl-preflight-no-such-key"


async def venue_time(rest: KrakenRest) -> datetime:
    result = await rest.public("Time")
    # unixtime is truncated to whole seconds: its midpoint is half a second later
    return utc_from_epoch(result["unixtime"]) + timedelta(milliseconds=500)


async def withdraw_check(rest: KrakenRest, *, keys_ok: bool) -> PreflightCheck:
    name = "no withdrawal permission"
    if not keys_ok:
        return PreflightCheck(name, False, "unknown: the key does not authenticate")
    try:
        await rest.private("WithdrawInfo", {"asset": "XBT", "key": PROBE_WITHDRAW_KEY, "amount": "0.001"},
                           retry=True)
    except AuthError:
        return PreflightCheck(name, True, "the key cannot withdraw (Withdraw Funds is off)")
    except TemporaryError as exc:
        return PreflightCheck(name, False, f"unknown: {exc}")
    except ExchangeError:
        pass
    return PreflightCheck(name, False, "the key has the Withdraw Funds permission; create one without it")
