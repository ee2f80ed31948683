"""The preflight of a ccxt venue (:func:`exchanges.preflight.run_preflight` does the shared part).

What ccxt lets us check, and what it does not:

- **keys**: ccxt knows which credentials each exchange needs (``requiredCredentials``: key, secret,
  and for some a password/passphrase); a missing one fails here by name, before any request. Then the
  shared check reads the balances, which proves the key authenticates.
- **no withdrawal permission**: ccxt has no unified call for a key's permissions. Where the exchange
  has a way we know, it is asked: Kraken's ``WithdrawInfo`` probe (as the native adapter; refused with
  *Permission denied* when the key cannot withdraw) and Coinbase's ``key_permissions``
  (``can_transfer``). Elsewhere the check fails saying it cannot be detected: the operator checks the
  key on the exchange's website and sets ``ccxt.allow_withdraw_keys = true`` to accept that.
- **clock skew**: ``fetch_time`` where the exchange has it; otherwise the check passes saying it was
  not measured (ccxt signs with the local clock; a skewed host is refused by the venue and shows up as
  an authentication error).
- **minimums**: from ``load_markets`` (``limits.amount.min``, ``limits.cost.min``) per pair.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from exchanges.base import PreflightCheck
from exchanges.ccxt._lib import ccxt
from exchanges.ccxt._venue import CcxtVenue
from exchanges.ccxt.convert import utc_ms
from exchanges.ccxt.errors import call
from exchanges.errors import AuthError, ExchangeError, MalformedResponse, TemporaryError
from exchanges.preflight import run_preflight

NAME = "no withdrawal permission"
PROBE_WITHDRAW_KEY = "tradectl-preflight-no-such-key"


def credentials_check(venue: CcxtVenue) -> PreflightCheck:
    required = [k for k, needed in (venue.ex.requiredCredentials or {}).items() if needed]
    missing = [k for k in required if not getattr(venue.ex, k, None)]
    if missing:
        names = {"apiKey": "api_key", "secret": "api_secret", "password": "password"}
        listed = ", ".join(f"ccxt.{names.get(k, k)}" for k in missing)
        return PreflightCheck("credentials", False, f"{venue.exchange_id} needs {listed} (not set)")
    return PreflightCheck("credentials", True, f"{venue.exchange_id} needs {', '.join(required)}: all set")


async def withdraw_check(venue: CcxtVenue, *, keys_ok: bool) -> PreflightCheck:
    if not keys_ok:
        return PreflightCheck(NAME, False, "unknown: the key does not authenticate")
    ex = venue.ex
    try:
        if isinstance(ex, ccxt.async_support.kraken):
            try:
                probe = {"asset": "XBT", "key": PROBE_WITHDRAW_KEY, "amount": "0.001"}
                await call(ex.privatePostWithdrawInfo(probe), ex)
            except AuthError:
                return PreflightCheck(NAME, True, "the key cannot withdraw (Withdraw Funds is off)")
            except ExchangeError as exc:
                if isinstance(exc, TemporaryError):
                    raise
            return PreflightCheck(NAME, False, "the key has the Withdraw Funds permission; create one without it")
        if isinstance(ex, ccxt.async_support.coinbase):
            perms = await call(ex.v3PrivateGetBrokerageKeyPermissions(), ex)
            if perms.get("can_transfer") is False:
                return PreflightCheck(NAME, True, "the key cannot transfer funds (can_transfer is false)")
            return PreflightCheck(NAME, False, "the key can transfer funds out; create one without transfer")
    except TemporaryError as exc:
        return PreflightCheck(NAME, False, f"unknown: {exc}")
    return PreflightCheck(NAME, False, f"cannot be detected through ccxt on {venue.exchange_id}: check on the "
                          "exchange that the key cannot withdraw, then set ccxt.allow_withdraw_keys = true")


async def ccxt_preflight(venue: CcxtVenue, pairs: list[str]) -> list[PreflightCheck]:
    first = credentials_check(venue)

    async def permission(keys_ok: bool) -> PreflightCheck:
        return await withdraw_check(venue, keys_ok=keys_ok)

    async def venue_time() -> datetime:
        if not venue.ex.has.get("fetchTime"):
            return venue.clock.now()  # nothing to compare with: reported as not measured below
        moment = utc_ms(await call(venue.ex.fetch_time(), venue.ex))
        if moment is None:
            raise MalformedResponse(f"{venue.name} fetch_time gave no time")
        # venues answering in whole seconds (Kraken) are truncated: the midpoint is half a second later
        return moment + timedelta(milliseconds=500) if moment.microsecond == 0 else moment

    checks = await run_preflight(venue, pairs, clock=venue.clock, max_skew_s=venue.max_clock_skew_s,
                                 holdings="currencies", permission=permission, venue_time=venue_time)
    if not venue.ex.has.get("fetchTime"):
        checks = [PreflightCheck(c.name, True, f"not measured: ccxt's {venue.exchange_id} has no fetch_time")
                  if c.name == "clock skew" else c for c in checks]
    return [first, *checks]
