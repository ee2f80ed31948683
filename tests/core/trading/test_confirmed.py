"""The confirmed-intent journal: a confirmed command not marked executed is found again on start."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from core.trading.confirmed import ConfirmedRequest, mark_executed, unfinished
from persistence.db import Database
from persistence.models import ConfirmationRow


def _row(nonce: str, command: str, outcome: str, used: datetime | None) -> ConfirmationRow:
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    return ConfirmationRow(nonce=nonce, platform="telegram", user_id="42", chat_id="c1", command=command,
                           args=json.dumps(["flat"]), created_at=now, expires_at=now + timedelta(minutes=1),
                           used_at=used, outcome=outcome)


async def test_unfinished_lists_confirmed_unexecuted_commands_until_marked(db: Database) -> None:
    t = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
    async with db.session() as s:
        s.add(_row("n-kill-00000001", "kill", "confirmed", t))
        s.add(_row("n-kill-00000002", "kill", "cancelled", t))
        s.add(_row("n-kill-00000003", "kill", "", None))
        s.add(_row("n-close-0000004", "close", "confirmed", t + timedelta(seconds=1)))
    found = await unfinished(db, ("kill", "close"))
    assert found == [
        ConfirmedRequest("n-kill-00000001", "kill", ("flat",), "telegram:42", "c1", t),
        ConfirmedRequest("n-close-0000004", "close", ("flat",), "telegram:42", "c1", t + timedelta(seconds=1)),
    ]
    assert [r.nonce for r in await unfinished(db, ("kill",))] == ["n-kill-00000001"]
    await mark_executed(db, "n-kill-00000001", "killed")
    await mark_executed(db, "n-kill-00000001", "a late duplicate")
    assert [r.nonce for r in await unfinished(db, ("kill", "close"))] == ["n-close-0000004"]
    async with db.read() as s:
        row = await s.get(ConfirmationRow, "n-kill-00000001")
    assert row is not None and row.executed_at is not None and row.result == "killed"
    assert await unfinished(db, ()) == []


async def test_upgrade_does_not_replay_confirmations_confirmed_before_the_journal(empty_db: Database) -> None:
    from sqlalchemy import text

    from persistence.migrate import upgrade

    await upgrade(empty_db, "0002")
    async with empty_db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO confirmations (nonce, platform, user_id, chat_id, command, args, ref_id, approvals_needed,"
            " approved_by, created_at, expires_at, used_at, outcome) VALUES ('old-kill-0000001', 'telegram', '42',"
            " 'c1', 'kill', '[]', '', 1, '', :t, :t, :t, 'confirmed')"),
            {"t": "2024-05-01 12:00:00.000000+00:00" if empty_db.is_sqlite else datetime(2024, 5, 1, tzinfo=UTC)})
    await upgrade(empty_db)
    assert await unfinished(empty_db, ("kill",)) == []
