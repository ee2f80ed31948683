"""The ccxt venue's preflight against the fakes: credentials by name, the withdrawal probe (Kraken) and
key permissions (Coinbase), clock skew from fetch_time, balances and minimum orders."""

from __future__ import annotations

from decimal import Decimal

from exchanges.base import PreflightCheck
from exchanges.ccxt import CcxtExchange
from tests.exchanges.ccxt.harness import FAST, ccxt_venue
from tests.exchanges.fakes import FakeCoinbase, FakeKraken


def by_name(checks: list[PreflightCheck]) -> dict[str, PreflightCheck]:
    return {c.name: c for c in checks}


async def test_a_clean_kraken_key_passes_every_check() -> None:
    async with ccxt_venue(FakeKraken()) as (venue, market):
        market.set_balance("USD", Decimal(1000))
        await market.set_price("BTC/USD", Decimal(20000))
        checks = by_name(await venue.preflight(["BTC/USD"]))
        assert all(c.ok for c in checks.values()), checks
        assert set(checks) == {"credentials", "api key", "no withdrawal permission", "clock skew", "balances",
                               "minimum order BTC/USD"}
        assert "min qty 0.0001 BTC" in checks["minimum order BTC/USD"].detail
        assert "min notional 0.5 USD" in checks["minimum order BTC/USD"].detail


async def test_kraken_withdraw_permission_skew_and_an_unknown_pair_fail_by_name() -> None:
    async with ccxt_venue(FakeKraken(key_can_withdraw=True)) as (venue, market):
        market.set_balance("USD", Decimal(1000))
        await market.set_price("BTC/USD", Decimal(20000))
        market.fake.server_time_offset_s = 30
        checks = by_name(await venue.preflight(["BTC/USD", "NOPE/USD"]))
        withdraw = checks["no withdrawal permission"]
        assert not withdraw.ok and "Withdraw Funds" in withdraw.detail
        assert not checks["clock skew"].ok and "NTP" in checks["clock skew"].detail
        assert not checks["minimum order NOPE/USD"].ok
        assert checks["api key"].ok and checks["minimum order BTC/USD"].ok


async def test_coinbase_key_permissions_are_read() -> None:
    for can_transfer in (False, True):
        async with ccxt_venue(FakeCoinbase(can_transfer=can_transfer)) as (venue, market):
            market.set_balance("USD", Decimal(1000))
            await market.set_price("BTC/USD", Decimal(20000))
            checks = by_name(await venue.preflight(["BTC/USD"]))
            check = checks["no withdrawal permission"]
            assert check.ok is (not can_transfer), check
            assert all(c.ok for name, c in checks.items() if name != "no withdrawal permission"), checks


async def test_missing_credentials_are_named_and_no_secret_is_shown() -> None:
    async with FakeKraken() as fake:
        venue = CcxtExchange("kraken", fake.api_key, None, rest_url=fake.rest_url, **FAST)
        try:
            checks = by_name(await venue.preflight(["BTC/USD"]))
            assert not checks["credentials"].ok and "ccxt.api_secret" in checks["credentials"].detail
            assert not checks["api key"].ok
            assert all(fake.api_key not in c.detail for c in checks.values())
        finally:
            await venue.stop()
