"""`tradectl db backup|restore` in their own processes, as an operator runs them next to the service."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from core.app.instance_lock import InstanceLock
from persistence.migrate import head_revision

ROOT = Path(__file__).resolve().parents[3]


def tradectl(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    code = "import sys; from core.app.cli import main; sys.argv[0] = 'tradectl'; main()"
    clean = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("TRADECTL_")}
    return subprocess.run([sys.executable, "-c", code, *args], env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def count(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM audit_log").fetchone()[0])


def add_audit_rows(path: Path, n: int) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.executemany(
            "INSERT INTO audit_log (ts, ref_id, platform, user_id, chat_id, command, args, decision, result, attempts)"
            " VALUES ('2026-01-01 00:00:00.000000', ?, 'console', 'u', 'c', 'status', '', 'allowed', '', 1)",
            [(f"ref{i}",) for i in range(n)])
        conn.commit()


def test_backup_then_restore_round_trip_on_the_embedded_default(tmp_path: Path) -> None:
    assert tradectl("db", "upgrade", cwd=tmp_path).returncode == 0
    live = tmp_path / "data" / "tradectl.db"
    add_audit_rows(live, 3)
    made = tradectl("db", "backup", "saved/one.db", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "saved/one.db" in made.stdout and f"schema revision {head_revision()}" in made.stdout
    assert "audit_log: 3" in made.stdout and "KiB" in made.stdout
    add_audit_rows(live, 2)
    back = tradectl("db", "restore", "saved/one.db", cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    assert count(live) == 3
    [kept] = [p for p in live.parent.iterdir() if p.name.startswith("tradectl.db.before-restore-")]
    assert count(kept) == 5 and str(kept.relative_to(tmp_path)) in back.stdout
    assert "db upgrade" not in back.stdout  # the same revision: nothing to do


def test_restore_is_refused_while_an_instance_holds_its_lock(tmp_path: Path) -> None:
    assert tradectl("db", "upgrade", cwd=tmp_path).returncode == 0
    live = tmp_path / "data" / "tradectl.db"
    assert tradectl("db", "backup", "b.db", cwd=tmp_path).returncode == 0
    add_audit_rows(live, 4)
    lock = InstanceLock(tmp_path / "data" / "instances", "host:123:abc")  # what a running service holds
    asyncio.run(lock.start())
    try:
        refused = tradectl("db", "restore", "b.db", cwd=tmp_path)
    finally:
        asyncio.run(lock.stop())
    assert refused.returncode == 1
    assert "refused" in refused.stderr and "host:123:abc" in refused.stderr and "stop it first" in refused.stderr
    assert count(live) == 4 and not [p for p in live.parent.iterdir() if "before-restore" in p.name]
    # the instance gone (its lock file left behind by a kill proves nothing), the restore goes ahead
    (tmp_path / "data" / "instances" / "dead:1:x.lock").write_text("1\n")
    done = tradectl("db", "restore", "b.db", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert count(live) == 0


def test_restore_of_a_bad_file_says_why_and_changes_nothing(tmp_path: Path) -> None:
    assert tradectl("db", "upgrade", cwd=tmp_path).returncode == 0
    live = tmp_path / "data" / "tradectl.db"
    (tmp_path / "notes.db").write_text("shopping list\n")
    before = {p.name: p.read_bytes() for p in live.parent.iterdir()}
    for name, reason in (("notes.db", "notes.db is not an SQLite database"),
                         ("nowhere.db", "nowhere.db: no such file")):
        res = tradectl("db", "restore", name, cwd=tmp_path)
        assert res.returncode == 1
        assert res.stderr.strip() == f"restore failed, nothing changed: {reason}"
        assert "Traceback" not in res.stderr
    assert {p.name: p.read_bytes() for p in live.parent.iterdir()} == before


def test_an_older_backup_is_restored_with_the_advice_to_upgrade(tmp_path: Path) -> None:
    assert tradectl("db", "upgrade", "--revision", "0006", cwd=tmp_path, env={
        "DATABASE_URL": f"sqlite:///{tmp_path}/old.db"}).returncode == 0
    res = tradectl("db", "restore", "old.db", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"schema revision 0006 is older than this version's {head_revision()}" in res.stdout
    assert "tradectl db upgrade" in res.stdout


def test_on_postgres_both_print_the_tool_to_use_without_the_password(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql://trader:hunter2@db.internal:5432/books"}
    for action, tool in (("backup", "pg_dump "), ("restore", "pg_restore ")):
        res = tradectl("db", action, "books.dump", cwd=tmp_path, env=env)
        assert res.returncode == 1
        assert "embedded SQLite database only" in res.stderr and tool in res.stderr
        assert "--dbname=postgresql://trader@db.internal:5432/books" in res.stderr
        assert "hunter2" not in res.stderr + res.stdout
    assert not (tmp_path / "books.dump").exists()
