"""Strangers cost nothing: traffic that is not allowlisted is refused in memory, answered sparingly and
audited in aggregate (one row per sender, chat and minute, with a count); every map holding it is bounded."""

from __future__ import annotations

from sqlmodel import func, select

from bot.app import build_dispatcher
from bot.harness import ChatHarness
from bot.identity import Actor, ChatRef
from bot.ratelimit import RateLimiter
from core.settings.settings_models import ChatSettings
from persistence.db import Database
from persistence.models import AuditRow, ProcessedUpdateRow
from tests.bot.conftest import ADMIN, BASE_SETTINGS, GROUP, STRANGER, VIEWER, MakeHarness
from tests.bot.fake_trading import FakeTrading
from tests.bot.sql_counter import statements, writes
from tests.fakes.clock import ManualClock

NOT_ALLOWED = ChatRef("telegram", "-999", "group")
STRANGER_DM = ChatRef("telegram", STRANGER.user_id, "private")


async def _count(db: Database, model: type) -> int:
    async with db.session() as s:
        return int((await s.exec(select(func.count()).select_from(model))).one())


async def test_a_stranger_flood_costs_one_row_per_chat_and_minute(make_harness: MakeHarness, db: Database,
                                                                  fake: FakeTrading, clock: ManualClock) -> None:
    h = await make_harness()
    replies = []
    for i in range(150):
        replies.append(await h.send("/kill" if i % 2 else "/status", as_=STRANGER, update_id=f"s{i}"))
    for i in range(50):
        replies.append(await h.send("/pause", as_=STRANGER, chat=NOT_ALLOWED, update_id=f"g{i}"))
    assert [r.text for r in replies if not r.silent] == ["Not authorized."]  # told once, then silence
    assert fake.intents == []
    assert await _count(db, ProcessedUpdateRow) == 0  # a stranger's update is never recorded
    assert await _count(db, AuditRow) == 2
    await h.dispatcher.flush()
    rows = await h.dispatcher.audit.recent(10)
    assert sorted((r.chat_id, r.decision, r.attempts) for r in rows) == [("-999", "denied", 50), ("666", "denied", 150)]
    # The next minute opens a new window; the closed one keeps its count.
    clock.advance(60)
    await h.send("/status", as_=STRANGER)
    assert [r.attempts for r in await h.dispatcher.audit.recent(10, chat_id="666")] == [1, 150]


async def test_strangers_are_refused_before_any_database_write(make_harness: MakeHarness, db: Database) -> None:
    h = await make_harness()
    await h.send("/status", as_=STRANGER)  # opens the minute's audit row
    with statements(db) as seen:
        for i in range(100):
            await h.send("/kill", as_=STRANGER, update_id=str(i))
            await h.press("cf:AAAAAAAAAAAAAAAA", as_=STRANGER, update_id=f"p{i}")
            await h.send("/pause", as_=ADMIN, chat=NOT_ALLOWED, update_id=f"a{i}")  # an admin, in a chat not allowed
    assert len(writes(seen)) == 1  # the admin's first attempt in that chat; nothing per message
    assert all(not s.upper().startswith("INSERT") or "audit_log" in s for s in seen)


async def test_many_strangers_in_one_chat_share_a_row_and_few_answers(make_harness: MakeHarness,
                                                                      db: Database) -> None:
    h = await make_harness()
    floods = h.dispatcher.floods
    answered = 0
    for i in range(60):
        sent = await h.send("/kill", as_=Actor("telegram", str(5000 + i)), chat=NOT_ALLOWED)
        answered += not sent.silent
    assert answered == floods.replies_per_chat
    await h.dispatcher.flush()
    rows = await h.dispatcher.audit.recent(100, chat_id="-999")
    assert len(rows) == floods.rows_per_chat + 1
    shared = rows[0]
    assert (shared.user_id, shared.attempts) == ("*", 60 - floods.rows_per_chat)
    assert "more than 20 senders" in shared.result


async def test_every_map_is_bounded(db: Database, clock: ManualClock) -> None:
    """500 strangers against max_actors=100: the limiter's 'told already' map used to keep all 500."""
    settings = ChatSettings(**BASE_SETTINGS)
    limiter = RateLimiter(settings.rate_limit_per_minute, clock, max_actors=100)
    dispatcher = build_dispatcher(db, FakeTrading(), settings, clock=clock)
    dispatcher.limiter = limiter
    dispatcher.floods.max_windows = 100
    h = ChatHarness(dispatcher)
    for i in range(500):
        await h.send("/status", as_=Actor("telegram", str(10_000 + i)))
    for i in range(150):
        await h.send("/status", as_=VIEWER, chat=ChatRef("telegram", str(-(10_000 + i)), "group"))
    assert len(limiter._warned) <= 100
    assert len(limiter._hits) <= 100
    assert len(dispatcher.floods) <= 100 and dispatcher.floods.tracked_chats <= 100
    # Evicted windows were closed with their count written, not dropped.
    await dispatcher.flush()
    assert sum(r.attempts for r in await dispatcher.audit.recent(1000) if r.user_id != VIEWER.user_id) >= 500


async def test_rate_limited_floods_are_audited_in_aggregate(make_harness: MakeHarness, db: Database) -> None:
    h = await make_harness(rate_limit_per_minute=3)
    for i in range(200):
        await h.send("/status", as_=VIEWER, chat=GROUP, update_id=str(i))
    await h.dispatcher.flush()
    rows = await h.dispatcher.audit.recent(300, user_id=VIEWER.user_id)
    assert sorted((r.decision, r.attempts) for r in rows) == [("allowed", 1)] * 3 + [("rate_limited", 197)]


async def test_urgent_never_touches_the_database(make_harness: MakeHarness, db: Database) -> None:
    h = await make_harness()
    with statements(db) as seen:
        for _ in range(50):
            assert h.dispatcher.urgent(ADMIN, GROUP, text="/kill")
            assert not h.dispatcher.urgent(STRANGER, STRANGER_DM, text="/kill")
            assert h.dispatcher.urgent(VIEWER, GROUP, payload="cf:AAAAAAAAAAAAAAAA")
    assert seen == []


def test_the_limiter_forgets_whom_it_told(clock: ManualClock) -> None:
    """500 strangers told "not authorized" with max_actors=100 used to leave 500 entries behind."""
    limiter = RateLimiter(30, clock, max_actors=100)
    for i in range(500):
        assert limiter.should_warn(f"unauth:telegram:{i}")
    assert len(limiter._warned) == 100
    assert not limiter.should_warn("unauth:telegram:499")  # the recent ones are still remembered
