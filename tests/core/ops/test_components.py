"""Component health: a chat adapter that is down makes `tradectl health` exit non-zero with the reason, and
/health say DEGRADED; on SQLite and PostgreSQL, through the CLI as a container health check runs it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.app.cli import app
from core.ops.components import ComponentHealth, ComponentPublisher, read_problems, with_components
from core.ops.heartbeat import Heartbeat, check_health
from core.trading.views import HealthView
from persistence.db import Database

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/components.db"
    return request.getfixturevalue("pg_database_url")


def test_tradectl_health_reports_a_down_component_and_exits_non_zero(fresh_url: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: a fresh heartbeat was all it looked at, so a leader whose Telegram never connected was "healthy".
    monkeypatch.chdir(tmp_path)
    env = {"DATABASE_URL": fresh_url}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    health = ComponentHealth()

    async def publish(step: str) -> None:
        db = Database(fresh_url)
        await db.start()
        publisher = ComponentPublisher(db, health, instance_id="host:1:abc")
        if step == "down":
            await Heartbeat(db, instance_id="host:1:abc", group="default", interval_s=5, version="t").beat()
            health.report("telegram", "up", "polling (epoch 3)")
            health.down("telegram", "unexpected answer to getMe (KeyError: 'id'); retrying in 8s")
        elif step == "up":
            publisher._written = "?"  # another process: it does not know what the first one wrote
            health.up("telegram", "polling (epoch 3)")
        await publisher.publish()
        await db.stop()

    asyncio.run(publish("down"))
    down = runner.invoke(app, ["health"], env=env)
    assert down.exit_code == 1, down.output
    assert "unhealthy: degraded: telegram down (unexpected answer to getMe (KeyError: 'id'); retrying in 8s)" \
        in down.output
    asyncio.run(publish("up"))
    up = runner.invoke(app, ["health"], env=env)
    assert up.exit_code == 0 and up.output.startswith("healthy:"), up.output


async def test_the_publisher_writes_on_change_and_forgets_gone_instances(db: Database) -> None:
    health = ComponentHealth()
    await Heartbeat(db, instance_id="a:1:x", group="default", interval_s=5, version="t").beat()
    stale = ComponentPublisher(db, ComponentHealth(), instance_id="gone:9:z")
    stale._health.down("slack", "cannot connect")
    await stale.publish()  # an instance that died while degraded, its heartbeat since deleted
    assert [p.name for p in await read_problems(db, "gone:9:z")] == ["slack"]
    publisher = ComponentPublisher(db, health, instance_id="a:1:x", min_interval_s=0.01)
    await publisher.start()
    try:
        health.down("discord", "refused: LoginFailure")
        await _eventually(lambda: _problems(db, "a:1:x"), ["discord"])
        health.up("discord", "connected")
        await _eventually(lambda: _problems(db, "a:1:x"), [])
        assert await read_problems(db, "gone:9:z") == ()  # pruned at start
        assert (await check_health(db, group="default", stale_s=30)).healthy
    finally:
        await publisher.stop()


async def _problems(db: Database, instance_id: str) -> list[str]:
    return [p.name for p in await read_problems(db, instance_id)]


async def _eventually(probe, expected: object, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while (got := await probe()) != expected:
        if loop.time() > end:
            raise AssertionError(f"expected {expected!r}, still {got!r}")
        await asyncio.sleep(0.02)


def test_health_view_lists_components_and_is_degraded_while_one_is_down() -> None:
    health = ComponentHealth()
    health.report("telegram", "idle", "connected; polls only while leader")
    view = with_components(HealthView(ok=True, components={"role": "standby"}), health)
    assert view.ok and view.components["telegram"] == "idle: connected; polls only while leader"
    health.down("telegram:send", "sending to chat 5 failed (NetworkError: Bad Gateway); retrying")
    view = with_components(HealthView(ok=True, components={}), health)
    assert not view.ok and view.components["telegram:send"].startswith("down: sending to chat 5 failed")
