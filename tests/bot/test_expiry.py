"""The expired-prompt sweep on both databases: only prompts past their expiry, unpressed and with a known
message are edited; two replicas sweeping at once edit each prompt once; a pressed prompt never."""

from __future__ import annotations

import asyncio

from bot.confirmations import ConfirmationStore, Pending
from bot.expiry import ExpiredPrompts
from bot.identity import Actor, ChatRef
from persistence.db import Database
from tests.fakes.clock import ManualClock


async def test_two_replicas_edit_each_expired_prompt_once(db: Database) -> None:
    clock = ManualClock()
    store = ConfirmationStore(db, clock)
    actor, chat = Actor("slack", "U1"), ChatRef("slack", "C1", "group")
    posted = await store.create(actor, chat, "close", ("BTC/USD",), ref_id="r1", ttl_s=60)
    pressed = await store.create(actor, chat, "kill", (), ref_id="r2", ttl_s=60)
    unknown = await store.create(actor, chat, "closeall", (), ref_id="r3", ttl_s=60)  # never attached
    other = await store.create(Actor("telegram", "1"), ChatRef("telegram", "1", "private"), "kill", (),
                               ref_id="r4", ttl_s=60)
    for p in (posted, pressed, other):
        await store.attach(p.nonce, f"ref-{p.nonce}")
    assert await store.close(pressed.nonce, "cancelled")
    edits: list[tuple[str, str]] = []

    async def edit(pending: Pending, note: str) -> None:
        edits.append((pending.message_ref, note))

    replicas = [ExpiredPrompts(store, "slack", edit) for _ in range(2)]
    clock.advance(59)
    assert [await r.sweep() for r in replicas] == [0, 0]
    clock.advance(2)
    counts = await asyncio.gather(*(r.sweep() for r in replicas), *(r.sweep() for r in replicas))
    assert sum(counts) == 1
    assert edits == [(f"ref-{posted.nonce}",
                      "⌛ /close BTC/USD: expired at 12:01 UTC — nothing was done; send /close again.")]
    closed = await store.get(posted.nonce)
    assert closed is not None and closed.outcome == "expired" and closed.used_at is not None
    untouched = await store.get(unknown.nonce)
    assert untouched is not None and untouched.used_at is None  # no message known: left to a press
    telegram = await store.get(other.nonce)
    assert telegram is not None and telegram.used_at is None  # another platform's sweep closes it
