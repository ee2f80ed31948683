"""Kraken request signing and nonces."""

from __future__ import annotations

import asyncio
import threading

import pytest

from exchanges.errors import AuthError
from exchanges.kraken.auth import NonceSource, sign, venue_client_id

# Kraken's REST authentication guide, worked example.
DOC_SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
DOC_NONCE = 1616492376594
DOC_BODY = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
DOC_SIGNATURE = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="


def test_reproduces_krakens_published_api_sign_example() -> None:
    assert sign(DOC_SECRET, "/0/private/AddOrder", DOC_NONCE, DOC_BODY) == DOC_SIGNATURE


def test_signature_depends_on_path_nonce_and_body() -> None:
    assert sign(DOC_SECRET, "/0/private/CancelOrder", DOC_NONCE, DOC_BODY) != DOC_SIGNATURE
    assert sign(DOC_SECRET, "/0/private/AddOrder", DOC_NONCE + 1, DOC_BODY) != DOC_SIGNATURE
    assert sign(DOC_SECRET, "/0/private/AddOrder", DOC_NONCE, DOC_BODY.replace("1.25", "1.26")) != DOC_SIGNATURE


def test_a_secret_that_is_not_base64_is_an_auth_error_without_the_secret_in_it() -> None:
    with pytest.raises(AuthError) as info:
        sign("not*base64*secret", "/0/private/Balance", 1, "nonce=1")
    assert "not*base64*secret" not in str(info.value)


def test_nonces_strictly_increase_even_when_the_clock_stands_still_or_steps_back() -> None:
    readings = iter([1000, 1000, 999, 500, 2000])
    source = NonceSource(time_us=lambda: next(readings))
    assert [source.next() for _ in range(5)] == [1000, 1001, 1002, 1003, 2000]


def test_nonces_continue_after_a_restart_from_the_persisted_value() -> None:
    persisted: list[int] = []
    first = NonceSource(persist=persisted.append, time_us=lambda: 5_000)
    first.next(), first.next()
    # the clock of the restarted process is behind the last nonce the venue saw
    second = NonceSource(last_issued=persisted[-1], time_us=lambda: 4_000)
    assert second.next() == persisted[-1] + 1


def test_nonces_are_unique_across_threads_and_tasks() -> None:
    source = NonceSource(time_us=lambda: 1)
    seen: list[int] = []

    def grab() -> None:
        seen.extend(source.next() for _ in range(500))

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def tasks() -> list[int]:
        async def one() -> int:
            await asyncio.sleep(0)
            return source.next()
        return list(await asyncio.gather(*(one() for _ in range(200))))

    seen.extend(asyncio.run(tasks()))
    assert len(seen) == len(set(seen)) == 2200


@pytest.mark.parametrize("cid", ["tc0123456789abcdef", "a0f970a2-05fa-4e1f-9517-f6702c33cfd1", "short_id-1"])
def test_client_ids_kraken_accepts_are_sent_unchanged(cid: str) -> None:
    assert venue_client_id(cid) == cid


def test_longer_client_ids_map_to_a_stable_uuid() -> None:
    cid = "strategy-breakout-BTC-USD-2024-01-01-0001"
    mapped = venue_client_id(cid)
    assert mapped == venue_client_id(cid) and len(mapped) == 36 and mapped != cid
