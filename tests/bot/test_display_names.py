"""Display names: remembered when seen, shown beside the stable id (which stays the identity)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, text
from sqlmodel import select

from bot.harness import ChatHarness
from bot.identity import FRESH_NAME_S, Actor, DisplayNames, NameSource, StoredName
from persistence.db import Database
from persistence.migrate import upgrade
from persistence.models import DisplayNameRow
from persistence.types import UTCDateTime
from tests.bot.conftest import GROUP, STRANGER, TRADER
from tests.fakes.clock import ManualClock

PROFILE, HANDLE = NameSource.PROFILE, NameSource.HANDLE


async def names(db: Database) -> dict[str, str]:
    async with db.session() as s:
        rows = (await s.exec(select(DisplayNameRow))).all()
    return {f"{r.platform}:{r.user_id}": r.name for r in rows}


async def test_names_are_remembered_for_people_with_a_role_and_shown_beside_ids(db: Database, h: ChatHarness) -> None:
    await h.send("/whoami", chat=GROUP)
    await h.send("/status", as_=TRADER, chat=GROUP)
    await h.send("/status", as_=STRANGER, chat=GROUP)  # refused: a stranger's name is never stored
    assert await names(db) == {"telegram:1": "alice", "telegram:2": "bob"}
    roles = (await h.send("/roles", chat=GROUP)).reply
    assert roles is not None
    assert "alice (telegram:1) | admin | settings" in roles.plain_text()
    assert "bob (telegram:2) | trader | settings" in roles.plain_text()
    audit = (await h.send("/audit", chat=GROUP)).reply
    assert audit is not None and "| bob (telegram:2) | /status |" in audit.plain_text()


async def test_the_latest_name_wins_and_the_id_still_decides(db: Database, h: ChatHarness) -> None:
    await h.send("/status", as_=TRADER)
    renamed = Actor("telegram", "2", "Robert ‮evil")  # a new name, with a bidi override
    assert "Robert" in (await h.send("/whoami", as_=renamed)).text
    assert (await names(db))["telegram:2"] == "Robert \ufffdevil"  # stored clean
    impostor = Actor("telegram", "666", "bob")  # a name grants nothing
    assert "Not authorized" in (await h.send("/pause", as_=impostor)).text
    assert "telegram:666" not in await names(db)


async def test_a_handle_never_replaces_a_fresh_profile_name_and_a_profile_name_always_replaces_a_handle(
        db: Database) -> None:
    """Slack's handle is a stand-in while the name is looked up. Each write comes from a process of its own
    here (what it last wrote saves it no write), as two replicas, or two commands racing, would make them."""
    clock = ManualClock()

    async def write(name: str, source: NameSource) -> StoredName | None:
        names = DisplayNames(db, clock)
        await names.remember(Actor("slack", "U0ALICE001", name, source))
        return await DisplayNames(db, clock).stored("slack", "U0ALICE001")

    assert await write("alice.h", HANDLE) == StoredName("alice.h", HANDLE, clock.now())  # no name known yet
    clock.advance(1)
    named = StoredName("Alice", PROFILE, clock.now())
    assert await write("Alice", PROFILE) == named  # the lookup's answer
    clock.advance(1)
    assert await write("alice.h", HANDLE) == named  # a kill-lane press that did not wait for it, landing last
    clock.advance(FRESH_NAME_S - 2)  # the name is a second short of a day old: still fresh
    assert await write("alice.h", HANDLE) == named
    clock.advance(1)
    assert await write("alice.h", HANDLE) == StoredName("alice.h", HANDLE, clock.now())  # a day old: replaced
    clock.advance(1)
    assert await write("alice", HANDLE) == StoredName("alice", HANDLE, clock.now())  # handle over handle
    assert await write("Alice B.", PROFILE) == StoredName("Alice B.", PROFILE, clock.now())
    assert await write("Alice C.", PROFILE) == StoredName("Alice C.", PROFILE, clock.now())  # name over name


async def test_a_profile_name_equal_to_the_handle_is_stored_as_a_name(db: Database) -> None:
    """users.info falls back to the account name, which is also the handle: the same text, now a name."""
    clock = ManualClock()
    names = DisplayNames(db, clock)
    await names.remember(Actor("slack", "U0ALICE001", "alice.h", HANDLE))
    await names.remember(Actor("slack", "U0ALICE001", "alice.h", PROFILE))
    assert await DisplayNames(db, clock).stored("slack", "U0ALICE001") == StoredName("alice.h", PROFILE, clock.now())


async def test_the_migration_counts_slack_names_of_unknown_source_as_handles(empty_db: Database) -> None:
    """Before revision 0009 nothing said whether a Slack row was a looked-up name or a handle: counted as a
    handle, it is looked up once more; Telegram and Discord send their users' names with every update."""
    await upgrade(empty_db, "0008")
    seen = datetime(2024, 5, 1, 12, tzinfo=UTC)
    insert = text("INSERT INTO display_names (platform, user_id, name, seen_at) VALUES (:p, :u, :n, :t)"
                  ).bindparams(bindparam("t", type_=UTCDateTime()))
    async with empty_db.begin() as conn:
        for platform, user_id, name in (("slack", "U0ALICE001", "Alice"), ("telegram", "1", "alice"),
                                        ("discord", "80351110224678912", "Alice")):
            await conn.execute(insert, {"p": platform, "u": user_id, "n": name, "t": seen})
    await upgrade(empty_db)
    names = DisplayNames(empty_db, ManualClock())
    assert await names.stored("slack", "U0ALICE001") == StoredName("Alice", HANDLE, seen)
    assert await names.stored("telegram", "1") == StoredName("alice", PROFILE, seen)
    assert await names.stored("discord", "80351110224678912") == StoredName("Alice", PROFILE, seen)
    assert await names.label("slack:U0ALICE001") == "Alice (slack:U0ALICE001)"  # shown as it was meanwhile
