"""Kraken nonces across restarts, replicas, clocks behind and database outages, against the fake
venue (which refuses, like Kraken, any nonce not larger than the last one it accepted for the key)."""

from __future__ import annotations

import hashlib
import itertools
import time
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from core.app.live import build_live_exchange
from core.settings.config import load_settings
from exchanges.base import OrderRequest, OrderType, Side
from exchanges.errors import AuthError
from exchanges.kraken import KrakenExchange, StoredNonces
from persistence.db import Database
from tests.exchanges.fakes import UNTHROTTLED, FakeKraken, fast_settings
from tests.persistence.outage import TablesAway

BEHIND_US = 30_000_000  # a clock 30 s behind


def wall_us() -> int:
    return time.time_ns() // 1000


def behind() -> int:
    return wall_us() - BEHIND_US


def ahead() -> int:
    return wall_us() + BEHIND_US


def venue(fake: FakeKraken, nonces: Any = None, **kw: Any) -> KrakenExchange:
    return KrakenExchange(kw.pop("key", fake.api_key), kw.pop("secret", fake.api_secret), rest_url=fake.rest_url,
                          ws_url=fake.ws_url, ws_auth_url=fake.ws_auth_url, tier=UNTHROTTLED, nonces=nonces,
                          **fast_settings(), **kw)


async def stored_rows(db: Database) -> list[tuple[Any, ...]]:
    async with db.connect() as conn:
        result = await conn.execute(text("SELECT key_hash, venue, high_water FROM api_nonces"))
        return [tuple(r) for r in result.all()]


async def test_a_restart_with_the_clock_30s_behind_continues_above_every_nonce_used(db: Database) -> None:
    first = StoredNonces(db, "key-1")
    used = [await first.issue() for _ in range(5)]
    restarted = StoredNonces(db, "key-1", time_us=behind)  # a new process; NTP stepped its clock back
    after = [await restarted.issue() for _ in range(5)]
    assert after[0] > max(used)
    assert after == sorted(set(after))
    other_key = StoredNonces(db, "key-2", time_us=behind)  # each key has its own mark
    assert await other_key.issue() < max(used)


async def test_replicas_reserve_disjoint_blocks_whatever_their_clocks(db: Database) -> None:
    start = wall_us()
    clock_a = itertools.count(start, 97)  # each reading 97 µs later: a block of 1,000 lasts ~10 nonces
    clock_b = itertools.count(start - BEHIND_US, 97)
    a = StoredNonces(db, "key", block_us=1_000, time_us=lambda: next(clock_a))
    b = StoredNonces(db, "key", block_us=1_000, time_us=lambda: next(clock_b))
    issued = [await (a if n % 3 else b).issue() for n in range(300)]
    assert len(set(issued)) == len(issued)  # never the same nonce twice across replicas
    assert a.reservations > 1 and b.reservations > 1


async def test_only_a_hash_of_the_key_is_stored(db: Database) -> None:
    await StoredNonces(db, "my-very-secret-api-key").issue()
    rows = await stored_rows(db)
    assert rows == [(hashlib.sha256(b"kraken\nmy-very-secret-api-key").hexdigest(), "kraken", rows[0][2])]
    assert "my-very-secret-api-key" not in repr(rows)


async def test_a_venue_restarted_with_its_clock_behind_is_not_refused(db: Database, fake: FakeKraken) -> None:
    fake.set_balance("USD", Decimal(100))
    first = venue(fake, StoredNonces(db, fake.api_key))
    await first.start()
    await first.balances()
    await first.stop()
    restarted = venue(fake, StoredNonces(db, fake.api_key, time_us=behind))
    await restarted.start()
    assert (await restarted.balances())["USD"].total == Decimal(100)
    await restarted.stop()
    assert fake.count("BalanceEx") == 2  # accepted at once: no refusal, no retry


async def test_tradectl_run_wiring_keeps_nonces_in_the_database(db: Database, fake: FakeKraken) -> None:
    """``build_live_exchange`` (what the trading core uses) after a replica whose clock ran 30 s
    ahead used the key: this instance's clock is 30 s behind that one's."""
    fake.set_balance("USD", Decimal(100))
    settings = load_settings(env={}, dotenv_path=None, overrides={
        "trading": {"mode": "live", "venue": "kraken"},
        "kraken": {"api_key": f"  {fake.api_key}\n", "api_secret": f"{fake.api_secret}\n", "rest_url": fake.rest_url,
                   "ws_url": fake.ws_url}})
    other_replica = venue(fake, StoredNonces(db, fake.api_key, time_us=ahead))
    await other_replica.start()
    await other_replica.balances()
    await other_replica.stop()
    exchange = build_live_exchange(settings, db=db)
    await exchange.start()
    try:
        assert (await exchange.balances())["USD"].total == Decimal(100)
    finally:
        await exchange.stop()
    assert fake.count("BalanceEx") == 2
    [(_, _, high_water)] = await stored_rows(db)
    assert high_water >= fake.last_nonce  # the mark covers every nonce Kraken saw


async def test_an_invalid_nonce_answer_resyncs_and_retries_once(db: Database, fake: FakeKraken) -> None:
    fake.set_balance("USD", Decimal(1_000_000))
    await fake.set_price("BTC/USD", Decimal(30_000))
    v = venue(fake, StoredNonces(db, fake.api_key))
    await v.start()
    try:
        fake.inject("BalanceEx", "error", error="EAPI:Invalid nonce")
        assert (await v.balances())["USD"].total == Decimal(1_000_000)
        assert fake.count("BalanceEx") == 2
        # an order too: Kraken refused it before doing anything, so signing it again is safe
        fake.inject("AddOrder", "error", error="EAPI:Invalid nonce")
        order = await v.place_order(OrderRequest(pair="BTC/USD", side=Side.BUY, type=OrderType.MARKET,
                                                 qty=Decimal("0.01"), client_order_id="nonce-retry-1"))
        assert order.client_order_id == "nonce-retry-1"
        assert len([o for o in fake.orders.values() if o.get("cl_ord_id") == "nonce-retry-1"]) == 1
        fake.inject("BalanceEx", "error", error="EAPI:Invalid nonce", times=2)
        with pytest.raises(AuthError, match="Invalid nonce"):  # once, not forever
            await v.balances()
    finally:
        await v.stop()


async def test_two_replicas_on_one_key_both_get_through(db: Database, fake: FakeKraken) -> None:
    """A takeover in progress, or ``tradectl check --live`` next to the service: the one whose block
    is older is refused once, resyncs above the other and is accepted."""
    fake.set_balance("USD", Decimal(5))
    a = venue(fake, StoredNonces(db, fake.api_key))
    b = venue(fake, StoredNonces(db, fake.api_key, time_us=behind))
    await a.start()
    await b.start()
    try:
        for _ in range(4):
            assert (await a.balances())["USD"].total == Decimal(5)
            assert (await b.balances())["USD"].total == Decimal(5)
    finally:
        await a.stop()
        await b.stop()


async def test_nonces_continue_in_memory_while_the_database_is_away(db: Database, fake: FakeKraken) -> None:
    fake.set_balance("USD", Decimal(5))
    v = venue(fake, StoredNonces(db, fake.api_key, block_us=1, retry_after_s=0.0))
    await v.start()
    try:
        await v.balances()
        async with TablesAway(db, "api_nonces") as outage:
            await outage.start()
            await v.balances()  # the kill switch must still reach the venue
            seen_during = fake.last_nonce
        await v.balances()
    finally:
        await v.stop()
    [(_, _, high_water)] = await stored_rows(db)
    assert high_water >= fake.last_nonce > seen_during  # the mark caught up with what was used meanwhile


async def test_a_pasted_key_with_a_newline_authenticates(fake: FakeKraken) -> None:
    fake.set_balance("USD", Decimal(5))
    v = venue(fake, key=f" {fake.api_key}\n", secret=f"{fake.api_secret}\r\n")
    await v.start()
    try:
        assert (await v.balances())["USD"].total == Decimal(5)
    finally:
        await v.stop()
