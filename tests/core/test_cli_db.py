"""`tradectl db upgrade|current` and `tradectl health` on both engines, as a deployer runs them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app
from core.heartbeat import Heartbeat, check_health
from persistence.db import Database
from persistence.migrate import head_revision

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
