"""`tradectl db upgrade|current` and `tradectl health` on both engines, as a deployer runs them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from core.app.cli import app
from core.ops.heartbeat import Heartbeat, check_health
from persistence.db import Database
from persistence.migrate import current_revision, head_revision

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cli.db"
    return request.getfixturevalue("pg_database_url")


def test_db_upgrade_then_current(fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"DATABASE_URL": fresh_url}
    before = runner.invoke(app, ["db", "current"], env=env)
    assert before.exit_code == 0, before.output
    assert "out of date" in before.output
    up = runner.invoke(app, ["db", "upgrade"], env=env)
    assert up.exit_code == 0, up.output
    assert f"-> {head_revision()}" in up.output
    after = runner.invoke(app, ["db", "current"], env=env)
    assert "up to date" in after.output


def test_health_needs_a_fresh_heartbeat(fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"DATABASE_URL": fresh_url, "TRADECTL_SERVICE__HEARTBEAT_STALE_S": "1"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    no_beat = runner.invoke(app, ["health"], env=env)
    assert no_beat.exit_code == 1 and "no instance" in no_beat.output

    async def beat() -> None:
        db = Database(fresh_url)
        await db.start()
        hb = Heartbeat(db, instance_id="test:1:abc", group="default", interval_s=5, version="t")
        await hb.beat()
        assert (await check_health(db, group="default", stale_s=5)).healthy
        assert not (await check_health(db, group="other", stale_s=5)).healthy
        await db.stop()

    asyncio.run(beat())
    ok = runner.invoke(app, ["health"], env=env)
    assert ok.exit_code == 0, ok.output
    import time

    time.sleep(1.5)
    stale = runner.invoke(app, ["health"], env=env)
    assert stale.exit_code == 1 and "stale" in stale.output


def test_health_with_unreachable_database_is_unhealthy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["health"], env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert res.exit_code == 1
    assert "unhealthy" in res.output


def _tradectl(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """The real command in its own process, as a container's entrypoint runs it."""
    code = "import sys; from core.app.cli import main; sys.argv[0] = 'tradectl'; main()"
    return subprocess.Popen([sys.executable, "-c", code, *args], env={**os.environ, **env}, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("attempt", range(3))
def test_two_upgrades_at_once_on_an_empty_database_both_succeed(fresh_url: str, tmp_path: Path, attempt: int) -> None:
    """What two replicas do at their first start: both exit 0 and the schema is at head."""
    env = {"DATABASE_URL": fresh_url, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    procs = [_tradectl("db", "upgrade", env=env, cwd=tmp_path) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, f"{out}\n{err}"
    assert sorted(out.split(": ", 1)[1].strip() for out, _ in results) == sorted(
        [f"empty -> {head_revision()}", f"{head_revision()} -> {head_revision()}"])

    async def revision() -> str | None:
        db = Database(fresh_url)
        await db.start()
        try:
            return await current_revision(db)
        finally:
            await db.stop()

    assert asyncio.run(revision()) == head_revision()


def test_a_failed_upgrade_says_why_in_one_line(fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    async def squat() -> None:  # a table of the same name left by something else
        db = Database(fresh_url)
        await db.start()
        async with db.begin() as conn:
            await conn.execute(text("CREATE TABLE leases (x INTEGER)"))
        await db.stop()

    asyncio.run(squat())
    res = runner.invoke(app, ["db", "upgrade"], env={"DATABASE_URL": fresh_url})
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith("upgrade failed on ") and "leases" in lines[0] and "already exists" in lines[0]
    assert "Traceback" not in res.output and "[SQL" not in res.output and "sqlalche.me" not in res.output
