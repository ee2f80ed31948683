"""The metrics and health-endpoint listener of a real service, scraped over HTTP.

The service is built by the composition root (``core.app.wiring.build_components``) with metrics enabled
on a free port and started like ``tradectl run`` starts it; the paper venue trades the bundled replay.
Readiness is checked against a database that really goes away (PostgreSQL refuses the service's login
role and drops its connections) and against a schema that is not at head.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from core.app.standby import LeaderBoundService
from core.app.wiring import build_components
from core.ops.loop_lag import LoopLagMonitor
from core.ops.metrics import MetricsServer
from core.runtime.lifecycle import Component, stop_all
from core.settings.config import load_settings
from core.settings.settings_models import MetricsSettings
from core.trading import EventBus, Kill
from core.trading.events import Killed
from persistence.db import Database
from persistence.migrate import upgrade
from tests.conftest import PG_URL, require_pg
from tests.core.waiting import eventually
from tests.persistence.outage import TablesAway

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
DOCS = Path(__file__).resolve().parents[3] / "docs"
METRIC_NAME = re.compile(r"\btradectl_[a-z_]+\b")


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def exported(text: str) -> set[str]:
    """The metric names a scrape shows (families without samples yet included), counters with ``_total``."""
    names = {f.name + "_total" if f.type == "counter" else f.name for f in text_string_to_metric_families(text)}
    base = {n.removesuffix("_total") for n in names}  # a counter's or a histogram's name
    return {n for n in names if not (n.endswith("_created") and n.removesuffix("_created") in base)}


def check_docs(names: set[str]) -> None:
    """docs/metrics.md lists every series the service exports; its alert rules and dashboard use only those."""
    yaml = pytest.importorskip("yaml")
    listed = set(METRIC_NAME.findall((DOCS / "metrics.md").read_text()))
    assert names - listed == set(), "exported but not in docs/metrics.md"
    assert listed - names == set(), "in docs/metrics.md but not exported"
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {"TradectlLeaderMissing", "TradectlStaleMarketData", "TradectlOutboxBacklog", "TradectlKillEngaged",
            "TradectlEventLoopLag"} <= alerts
    used = {m for e in exprs for m in METRIC_NAME.findall(e)}
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    used |= {m for p in dashboard["panels"] for t in p["targets"] for m in METRIC_NAME.findall(t["expr"])}
    used = {_histogram(m, names) for m in used}
    assert used and used - names == set(), "docs use series the service does not export"


def _histogram(name: str, names: set[str]) -> str:
    """A histogram's ``_bucket``/``_sum``/``_count`` series as the histogram's name."""
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return base if base in names else name


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the series of ``name`` whose labels include ``labels`` (0 when there is none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def has(samples: Samples, name: str) -> bool:
    return any(n == name for n, _ in samples)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[list[Component], MetricsServer]]:
    settings = load_settings(env={
        "DATABASE_URL": f"sqlite:///{tmp_path}/svc.db", "TRADECTL_SERVICE__DATA_DIR": str(tmp_path),
        "TRADECTL_CHAT__CONSOLE": "off", "TRADECTL_REPLAY__SPEED": "400",
        "TRADECTL_LEADER__FOLLOWER_POLL_S": "0.1",
        "TRADECTL_METRICS__ENABLED": "true", "TRADECTL_METRICS__PORT": "0",
        "TRADECTL_TRADING__STALE_DATA_S": "100000000",  # watched (so the stale-data series exist), never reached
    }, dotenv_path=None)
    db = Database(settings.database.url)
    await db.start()
    await upgrade(db)
    failures: list[object] = []
    built = await build_components(settings, db, on_failure=failures.append, stop_event=asyncio.Event(),
                                   exit_after_input=False, version="test")
    started: list[Component] = []
    try:
        for comp in built:
            await comp.start()
            started.append(comp)
        (metrics,) = [c for c in built if isinstance(c, MetricsServer)]
        yield started, metrics
        assert not failures
    finally:
        await stop_all(started, 10)
        await db.stop()


async def scrape(client: httpx.AsyncClient) -> Samples:
    res = await client.get("/metrics")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/plain")
    return parse(res.text)


async def test_disabled_by_default(sqlite_db: Database) -> None:
    settings = load_settings(env={"TRADECTL_CHAT__CONSOLE": "off"}, dotenv_path=None)
    built = await build_components(settings, sqlite_db, on_failure=lambda f: None, stop_event=asyncio.Event(),
                                   exit_after_input=False, version="test")
    assert not any(isinstance(c, MetricsServer) for c in built)


async def test_a_paper_run_moves_the_counters_and_a_kill_flips_the_state_gauge(
        service: tuple[list[Component], MetricsServer]) -> None:
    _, metrics = service
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics.port}", timeout=10) as client:
        first = await scrape(client)
        assert value(first, "tradectl_orders_total", outcome="placed") == 0
        assert has(first, "tradectl_process_resident_memory_bytes")

        async def traded() -> bool:
            now = await scrape(client)
            return (value(now, "tradectl_orders_total", venue="paper", outcome="placed") >= 1
                    and value(now, "tradectl_fills_total", venue="paper") >= 1
                    and value(now, "tradectl_trading_state", state="running") == 1)

        await eventually(traded, timeout=90, what="an order placed and filled on the replay, seen in /metrics")
        now = await scrape(client)
        assert value(now, "tradectl_leader", group="default") == 1
        assert value(now, "tradectl_leader_epoch", group="default") >= 1
        assert value(now, "tradectl_events_total", kind="order_placed") >= 1
        assert value(now, "tradectl_equity_quote", quote="USD") > 0
        assert has(now, "tradectl_event_loop_lag_seconds")
        assert value(now, "tradectl_market_data_stale", pair="BTC/USD") == 0
        assert value(now, "tradectl_market_data_stale_after_seconds") == 100000000
        assert value(now, "tradectl_kills_total") == 0

        result = await metrics.service.submit(Kill(requested_by="test"))
        assert result.ok, result.message

        async def killed() -> bool:
            now = await scrape(client)
            return (value(now, "tradectl_trading_state", state="killed") == 1
                    and value(now, "tradectl_trading_state", state="running") == 0
                    and value(now, "tradectl_kills_total") == 1)

        await eventually(killed, timeout=30, what="the kill in the state gauge and the kill counter")
        after = await scrape(client)
        assert value(after, "tradectl_trading_state_changes_total", state="killed") == 1
        check_docs(exported((await client.get("/metrics")).text))

        live = await client.get("/livez")
        assert live.status_code == 200
        body = live.json()
        assert body["live"] is True and body["loop_lag_s"] >= 0 and body["loop_lag_max_s"] >= 0
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["role"] == "leader"


def standalone(db: Database) -> MetricsServer:
    """The listener alone, on a standby's service (no engine): what readiness needs and nothing more."""
    return MetricsServer(MetricsSettings(enabled=True, port=0, readiness_timeout_s=2), db, events=EventBus(),
                         service=LeaderBoundService(("BTC/USD",), lambda: None, lambda: None), epoch=lambda: None,
                         loop_lag=LoopLagMonitor(), group="default", venue="paper")


async def test_readyz_is_503_while_postgresql_refuses_us_and_200_after() -> None:
    require_pg()
    import asyncpg

    role = schema = "tc_ready_" + secrets.token_hex(4)
    admin = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    await admin.execute(f"CREATE ROLE {role} LOGIN")
    await admin.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {role}")
    db = Database(make_url(PG_URL).set(username=role).render_as_string(hide_password=False), schema=schema)
    await db.start()
    server = standalone(db)
    try:
        await upgrade(db)
        await server.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
            ok = await client.get("/readyz")
            assert ok.status_code == 200, ok.text
            assert ok.json()["role"] == "standby" and ok.json()["ready"] is True

            await admin.execute(f"ALTER ROLE {role} NOLOGIN")
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
            down = await client.get("/readyz")
            assert down.status_code == 503
            assert "database unreachable" in down.json()["reason"]
            assert (await client.get("/livez")).status_code == 200  # the process is alive, only not ready
            assert (await client.get("/metrics")).status_code == 200  # shows what it can

            await admin.execute(f"ALTER ROLE {role} LOGIN")
            await eventually(lambda: _ready(client), timeout=20, what="/readyz 200 once the database is back")
    finally:
        await server.stop()
        await admin.execute(f"ALTER ROLE {role} LOGIN")
        await db.stop()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


async def test_readyz_is_503_while_the_schema_is_not_at_head(sqlite_db: Database) -> None:
    server = standalone(sqlite_db)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client, \
                TablesAway(sqlite_db, "alembic_version") as away:
            assert (await client.get("/readyz")).status_code == 200
            await away.start()
            res = await client.get("/readyz")
            assert res.status_code == 503 and "schema is at empty" in res.json()["reason"]
            await away.end()
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await server.stop()


async def test_two_services_in_one_process_keep_their_own_registries(sqlite_db: Database) -> None:
    one, two = standalone(sqlite_db), standalone(sqlite_db)
    await one.start()
    await two.start()
    try:
        assert one.port != two.port
        one.counters.count(Killed(by="test", complete=True))
        async with httpx.AsyncClient(timeout=10) as client:
            a = parse((await client.get(f"http://127.0.0.1:{one.port}/metrics")).text)
            b = parse((await client.get(f"http://127.0.0.1:{two.port}/metrics")).text)
        assert value(a, "tradectl_kills_total") == 1 and value(b, "tradectl_kills_total") == 0
    finally:
        await two.stop()
        await one.stop()


def test_loop_lag_keeps_an_average_and_a_windowed_maximum() -> None:
    now = [0.0]
    lag = LoopLagMonitor(window_s=10, alpha=0.5, clock=lambda: now[0])
    lag.record(0.4)
    now[0] = 1
    lag.record(0.0)
    cur = lag.current()
    assert (cur.last_s, cur.ewma_s, cur.max_s) == (0.0, 0.2, 0.4)
    now[0] = 20  # the 0.4 s stall left the window
    lag.record(-0.001)  # a coarse clock's negative oversleep counts as none
    assert lag.current().max_s == 0.0


async def test_the_loop_lag_task_sees_a_blocked_loop() -> None:
    import time

    lag = LoopLagMonitor(interval_s=0.05)
    await lag.start()
    try:
        await asyncio.sleep(0.1)
        time.sleep(0.3)  # noqa: ASYNC251 - blocking the loop is what this test measures
        await eventually(lambda: lag.current().max_s >= 0.2, timeout=5, what="the stall measured")
    finally:
        await lag.stop()
