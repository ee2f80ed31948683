"""Display names: remembered when seen, shown beside the stable id (which stays the identity)."""

from __future__ import annotations

from sqlmodel import select

from bot.harness import ChatHarness
from bot.identity import Actor
from persistence.db import Database
from persistence.models import DisplayNameRow
from tests.bot.conftest import GROUP, STRANGER, TRADER


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
