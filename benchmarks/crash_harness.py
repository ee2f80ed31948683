"""Crash harness: `tradectl run` killed at random moments, its database checked after every round.

Runs the real service (the embedded default: paper venue replaying the bundled candles, console
chat on stdin) on SQLite and on PostgreSQL, and per round:

1. starts it and waits for its first processed candle (the *recovery time* is measured from the
   previous round's signal to that candle);
2. lets it trade for a random while, then SIGKILLs or SIGTERMs it; in some rounds a ``/kill`` is
   confirmed on the console a few milliseconds before the SIGKILL;
3. checks, from the database alone, the invariants a crash must never break:

   - client order ids unique, and 1:1 with the venue's orders;
   - every venue fill applied once (never twice; one not yet applied at the crash is applied after
     the restart);
   - each position's quantities equal the sum of its orders' fills;
   - balances: the venue's totals equal the start plus our ledger plus fills not applied yet;
   - no candle's effects applied twice (one equity snapshot per candle, at most one fill per order
     per candle) and none skipped (no gap in the replayed candles);
   - no order left ``new`` for a closed position after a restart;
   - a confirmed kill always ends killed (checked after the restart);
   - every alert delivered (to a webhook fake on loopback), none twice.

At the end the service runs once more, delivers its alerts and stops with SIGTERM, and everything
is checked again. It prints the rounds, the violations and the recovery times.

    python benchmarks/crash_harness.py                      # 20 rounds on SQLite and on PostgreSQL
    python benchmarks/crash_harness.py --rounds 50 --db sqlite --seed 7
    python benchmarks/crash_harness.py --restart-only --rounds 10 --speed 50 --db sqlite
        # only SIGKILL -> first processed candle on the embedded default (the fast-restart figure)

    python benchmarks/crash_harness.py --db postgres --outage-share 0.5
        # also stop the database for 5-15 s under the running service in half of the rounds

PostgreSQL comes from ``--pg-url`` or ``TRADECTL_TEST_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); the harness creates a database of its own and drops it.
With ``--outage-share`` it runs a private cluster instead (``initdb`` and ``pg_ctl`` on PATH).
tests/core/app/test_crash_harness.py runs a bounded version of it.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import random
import re
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlmodel import select  # noqa: E402

from persistence.db import Database  # noqa: E402
from persistence.models import (  # noqa: E402
    ConfirmationRow,
    EquitySnapshot,
    FillRow,
    LedgerEntry,
    OrderRow,
    OutboxRow,
    PaperBalanceRow,
    PaperFillRow,
    PaperOrderRow,
    PositionRow,
    RuntimeValue,
    TradingStateRow,
)

PG_URL = os.environ.get("TRADECTL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PAIR = "BTC/USD"
START_BALANCES = {"USD": Decimal("10000")}
_NONCE = re.compile(r"yes ([A-Za-z0-9_-]{16})")


# -- the service as a process ---------------------------------------------------------------------


class Service:
    """One `tradectl run` process: console on a stdin pipe, output in files under ``work``."""

    def __init__(self, work: Path, env: dict[str, str], index: int) -> None:
        self.work, self.env, self.index = work, env, index
        self.out_path = work / f"run{index:03d}.out"
        self.err_path = work / f"run{index:03d}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:  # the child keeps its own copies
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "core.app.cli", "run", cwd=self.work, env=self.env, stdin=asyncio.subprocess.PIPE,
                stdout=out, stderr=err)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def output(self) -> str:
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""

    def log(self) -> str:
        return self.err_path.read_text(errors="replace") if self.err_path.exists() else ""

    async def send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()

    async def wait_output(self, pattern: re.Pattern[str], after: int, timeout: float) -> re.Match[str] | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.alive:
            m = pattern.search(self.output(), after)
            if m:
                return m
            await asyncio.sleep(0.01)
        return None

    def signal(self, sig: signal.Signals) -> float:
        assert self.proc is not None
        try:
            self.proc.send_signal(sig)
        except ProcessLookupError:
            pass  # it had exited already; the caller finds out from the exit code
        return time.monotonic()

    async def wait(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return None


# -- a webhook that counts what it receives -------------------------------------------------------


class AlertSink:
    """Slack-style incoming webhook on loopback; keeps every message body it accepted."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, str]] = []  # (monotonic arrival time, body)
        self._runner: Any = None
        self.url = ""

    async def __aenter__(self) -> AlertSink:
        from aiohttp import web

        async def hook(request: web.Request) -> web.Response:
            body = await request.json()
            text = str(body.get("text", "")) + "\n" + json.dumps(body.get("blocks", ""))
            self.messages.append((time.monotonic(), text))
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hooks/alerts", hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hooks/alerts"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _norm(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z.]+", "", html.unescape(text))


# -- invariants -----------------------------------------------------------------------------------


@dataclass
class Checker:
    """Invariants read from the database; remembers what must be settled by the next round."""

    db: Database
    group: str = "default"
    unapplied: set[str] = field(default_factory=set)  # venue fills not applied at the last check
    stale_new: set[str] = field(default_factory=set)  # orders `new` for a closed position at the last check
    candles: list[datetime] = field(default_factory=list)

    async def state(self) -> str:
        async with self.db.read() as s:
            row = await s.get(TradingStateRow, self.group)
        return row.state if row is not None else "running"

    async def cursor(self) -> str | None:
        async with self.db.read() as s:
            row = await s.get(RuntimeValue, f"last_candle:{PAIR}")
        return row.value if row is not None else None

    async def confirmed(self, nonce: str) -> bool:
        async with self.db.read() as s:
            row = await s.get(ConfirmationRow, nonce)
        return row is not None and row.outcome == "confirmed"

    async def outbox_pending(self) -> int:
        async with self.db.read() as s:
            rows = (await s.exec(select(OutboxRow.status))).all()
        return sum(1 for st in rows if st == "pending")

    async def check(self, *, settled: bool = False) -> list[str]:
        """Violations now (``settled``: the service stopped cleanly, everything must be applied)."""
        async with self.db.read() as s:
            orders = list((await s.exec(select(OrderRow))).all())
            fills = list((await s.exec(select(FillRow))).all())
            positions = list((await s.exec(select(PositionRow))).all())
            ledger = list((await s.exec(select(LedgerEntry))).all())
            snaps = list((await s.exec(select(EquitySnapshot.ts))).all())
            venue_orders = list((await s.exec(select(PaperOrderRow))).all())
            venue_fills = list((await s.exec(select(PaperFillRow))).all())
            balances = list((await s.exec(select(PaperBalanceRow))).all())
        out: list[str] = []
        by_coid = Counter(o.client_order_id for o in orders)
        out += [f"client order id {c} used by {n} orders" for c, n in by_coid.items() if n > 1]
        ours = {o.client_order_id: o for o in orders}
        venue_by_coid = {v.client_order_id: v for v in venue_orders}
        out += [f"venue order {v.client_order_id} has no order of ours" for v in venue_orders
                if v.client_order_id not in ours]
        for o in orders:
            v = venue_by_coid.get(o.client_order_id)
            if o.venue_order_id and (v is None or v.venue_order_id != o.venue_order_id):
                out.append(f"order {o.client_order_id} names venue order {o.venue_order_id}, "
                           "which the venue does not have")

        applied = Counter(f.fill_id for f in fills)
        out += [f"fill {f} applied {n} times" for f, n in applied.items() if n > 1]
        unapplied = {vf.fill_id for vf in venue_fills if vf.fill_id not in applied}
        out += [f"venue fill {f} still not applied after a restart" for f in sorted(self.unapplied & unapplied)]
        if settled:
            out += [f"venue fill {f} not applied at a clean stop" for f in sorted(unapplied - self.unapplied)]
        self.unapplied = unapplied

        fills_by_coid: dict[str, list[FillRow]] = defaultdict(list)
        for f in fills:
            fills_by_coid[f.client_order_id].append(f)
        for p in positions:
            mine = [f for o in orders if o.position_id == p.id for f in fills_by_coid[o.client_order_id]]
            bought = sum((f.qty for f in mine if f.side == "buy"), Decimal(0))
            sold = sum((f.qty for f in mine if f.side == "sell"), Decimal(0))
            if bought != p.entry_qty or sold != p.exit_qty or p.qty != p.entry_qty - p.exit_qty:
                out.append(f"position {p.id} ({p.status}): entry {p.entry_qty} exit {p.exit_qty} qty {p.qty}, "
                           f"but its fills bought {bought} and sold {sold}")

        expect: dict[str, Decimal] = defaultdict(Decimal, START_BALANCES)
        for e in ledger:
            expect[e.currency] += e.amount
        for vf in venue_fills:
            if vf.fill_id in unapplied:
                base, quote = vf.pair.split("/")
                sign = 1 if vf.side == "buy" else -1
                expect[base] += sign * vf.qty
                expect[quote] -= sign * vf.qty * vf.price
                expect[vf.fee_currency or quote] -= vf.fee
        for b in balances:
            if b.total != expect[b.currency]:
                out.append(f"balance {b.currency}: venue {b.total}, "
                           f"start + ledger + unapplied fills {expect[b.currency]}")

        count = Counter(snaps)
        out += [f"candle at {ts.isoformat()} processed {n} times" for ts, n in count.items() if n > 1]
        per_candle = Counter((vf.client_order_id, vf.ts) for vf in venue_fills)
        out += [f"order {c} filled {n} times on the candle at {ts.isoformat()}"
                for (c, ts), n in per_candle.items() if n > 1]
        out += self._gaps(sorted(count))

        closed = {p.id for p in positions if p.status == "closed"}
        stale = {o.client_order_id for o in orders if o.status == "new" and o.position_id in closed}
        out += [f"order {c} still `new` for a closed position after a restart" for c in sorted(self.stale_new & stale)]
        if settled:
            out += [f"order {c} left `new` for a closed position at a clean stop"
                    for c in sorted(stale - self.stale_new)]
        self.stale_new = stale
        return out

    def _gaps(self, processed: list[datetime]) -> list[str]:
        """Replayed candles between the first and last processed one that left no snapshot."""
        if len(processed) < 2:
            return []
        if not self.candles:
            from exchanges.replay import load_bundled

            self.candles = [c.ts for c in load_bundled(PAIR).candles]
        seen = set(processed)
        # a snapshot is stamped with the market clock at the candle: its open or its close time
        offset = max((timedelta(0), timedelta(hours=1)),
                     key=lambda d: sum(1 for t in self.candles[:200] if t + d in seen))
        expected = [t + offset for t in self.candles if processed[0] <= t + offset <= processed[-1]]
        missing = [t for t in expected if t not in seen]
        if not missing:
            return []
        return [f"{len(missing)} candles skipped (first {missing[0].isoformat()})"]

    async def outbox_last_id(self) -> int:
        async with self.db.read() as s:
            ids = (await s.exec(select(OutboxRow.id))).all()
        return max((i for i in ids if i is not None), default=0)

    async def outbox_violations(self, sink: AlertSink, up_to: int, kills: list[float]) -> tuple[list[str], list[str]]:
        """Every alert up to id ``up_to`` delivered (later ones were raised by the final stop itself),
        and none received more often than it was stored. Returns (violations, repeats explained by a
        SIGKILL (at monotonic times ``kills``) within a second after the first copy arrived: the one
        repeat docs/alerts.md admits, a crash between the platform accepting a message and its mark)."""
        async with self.db.read() as s:
            rows = list((await s.exec(select(OutboxRow))).all())
        out = [f"alert {r.id} ({r.event_type}) not delivered: {r.status} {r.last_error[:80]}"
               for r in rows if r.status != "delivered" and (r.id or 0) <= up_to]
        repeats: list[str] = []
        received = [_norm(m) for _, m in sink.messages]
        texts = Counter(_norm(json.loads(r.payload).get("text", "")) for r in rows)
        for text in sorted(texts, key=len, reverse=True):  # longest first: a short text may be inside a long one
            arrivals: list[float] = []
            for i, m in enumerate(received):
                while text and text in m:
                    arrivals.append(sink.messages[i][0])
                    m = m.replace(text, "", 1)
                received[i] = m
            if len(arrivals) <= texts[text]:
                continue
            first, later = arrivals[0], arrivals[1:]
            crash = any(first <= k <= first + 1.0 and any(a > k for a in later) for k in kills)
            line = f"alert delivered {len(arrivals)} times for {texts[text]} row(s): {text[:100]}"
            (repeats if crash and len(arrivals) == texts[text] + 1 else out).append(line)
        return out, repeats


# -- one backend ----------------------------------------------------------------------------------


@dataclass
class Report:
    backend: str
    rounds: int = 0
    signals: Counter[str] = field(default_factory=Counter)
    kills_confirmed: int = 0  # Confirm pressed just before the crash
    kills_recorded: int = 0  # ... and the confirmation was used before the process died
    last_signal: float | None = None  # monotonic time of the last round's signal
    last_signal_wall: float = 0.0
    phases: list[tuple[float, float, float]] = field(default_factory=list)  # boot, lease, engine (s after the signal)
    sigkills: list[float] = field(default_factory=list)  # monotonic times
    repeats: list[str] = field(default_factory=list)  # alerts repeated by a SIGKILL between post and mark
    outages: int = 0
    outage_recovery_s: list[float] = field(default_factory=list)  # database back -> next processed candle
    recovery_s: list[float] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        rec = self.recovery_s
        signals = ", ".join(f"{k} {v}" for k, v in sorted(self.signals.items()))
        head = (f"{self.backend}: {self.rounds} rounds ({signals}), "
                f"{self.kills_confirmed} kills confirmed just before a crash "
                f"({self.kills_recorded} recorded before it), "
                f"{len(self.violations)} violations")
        lines = [head]
        if rec:
            lines.append(f"  recovery (signal -> first processed candle): median {statistics.median(rec):.2f} s, "
                         f"max {max(rec):.2f} s, min {min(rec):.2f} s (n={len(rec)})")
        if self.outages:
            back = self.outage_recovery_s
            lines.append(f"  {self.outages} database outages; database back -> next candle: "
                         + (f"median {statistics.median(back):.2f} s, max {max(back):.2f} s" if back else "never"))
        if self.phases:
            boot, lease, engine = (statistics.median(p[i] for p in self.phases) for i in range(3))
            lines.append(f"  medians after the signal: first log line {boot:.2f} s, leader {lease:.2f} s, "
                         f"engine started {engine:.2f} s")
        lines += [f"  VIOLATION {v}" for v in self.violations]
        lines += [f"  repeated by a SIGKILL between the post and its mark (docs/alerts.md): {r}" for r in self.repeats]
        return lines


class PrivateCluster:
    """A PostgreSQL cluster of our own on a free port, so it can be stopped and started mid-run (a
    database outage). Needs ``initdb`` and ``pg_ctl`` on PATH; as root it runs them as ``postgres``."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="crash-pg-"))  # its own: the postgres user must reach it
        self.data = self.base / "pgdata"
        self.port = 0

    def _cmd(self, *args: str) -> list[str]:
        return (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) + list(args)

    async def _run(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(*self._cmd(*args), stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {out.decode(errors='replace')[-1500:]}")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    async def __aenter__(self) -> PrivateCluster:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        if os.geteuid() == 0:
            import shutil

            shutil.chown(self.base, "postgres", "postgres")
        await self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        await self.start()
        return self

    async def start(self) -> None:
        await self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "pg.log"), "-w", "-o",
                        f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1", "start")

    async def stop(self) -> None:
        await self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    async def __aexit__(self, *exc: object) -> None:
        import shutil

        try:
            await self.stop()
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.base, ignore_errors=True)


@asynccontextmanager
async def backend_database(kind: str, work: Path, pg_url: str,
                           cluster: PrivateCluster | None = None) -> AsyncIterator[str]:
    """A fresh database URL of the given kind, dropped afterwards (on ``cluster`` if given)."""
    if kind == "sqlite":
        yield f"sqlite:///{work}/data/tradectl.db"
        return
    import asyncpg

    admin = (cluster.url if cluster is not None else pg_url).replace("postgresql+asyncpg://", "postgresql://")
    name = "tradectl_crash_" + secrets.token_hex(4)
    conn = await asyncpg.connect(admin)
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.close()


def service_env(url: str, speed: float, hook: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECTL_") and k != "DATABASE_URL"}
    env.update({
        "PYTHONPATH": str(ROOT), "DATABASE_URL": url, "TRADECTL_CHAT__CONSOLE": "on",
        "TRADECTL_REPLAY__SPEED": str(speed), "TRADECTL_LOGGING__FORMAT": "text",
    })
    if hook:
        env["TRADECTL_NOTIFY__DESTINATIONS"] = json.dumps([{"name": "hook", "platform": "slack", "target": hook}])
        env["TRADECTL_NOTIFY__DIGEST_AFTER"] = "1000"  # one message per alert: deliveries can be counted
        env["TRADECTL_NOTIFY__PER_DESTINATION_RATE"] = "50"
    return env


async def _upgrade(env: dict[str, str], work: Path) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "core.app.cli", "db", "upgrade", cwd=work,
                                                env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"tradectl db upgrade failed: {out.decode(errors='replace')[-2000:]}")


async def _poll(check: Callable[[], Awaitable[bool]], timeout: float, step: float) -> bool:
    """Ask ``check`` every ``step`` seconds until it says yes or ``timeout`` passes (the service is another
    process: its database is all there is to watch)."""
    end = time.monotonic() + timeout
    while True:
        if await check():
            return True
        if time.monotonic() >= end:
            return False
        await asyncio.sleep(step)


async def _is(state: Awaitable[str], wanted: str) -> bool:
    return await state == wanted


async def _none_pending(checker: Checker) -> bool:
    return not await checker.outbox_pending()


async def _first_candle(checker: Checker, svc: Service, before: str | None, timeout: float) -> float | None:
    """Monotonic time of the first candle this process processed (its cursor moved), or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and svc.alive:
        try:
            now = await checker.cursor()
        except Exception:  # noqa: BLE001 - the schema may not exist yet on a first start
            now = before
        if now is not None and now != before:
            return time.monotonic()
        await asyncio.sleep(0.02)
    return None


async def _settle_kill(checker: Checker, svc: Service, report: Report, nonce: str) -> None:
    """After a restart: a kill confirmed before the crash must end killed; then re-arm and resume."""
    async with checker.db.read() as s:
        row = await s.get(ConfirmationRow, nonce)
    if row is None or row.outcome != "confirmed":
        return  # the press never got through before the crash: nothing was promised
    report.kills_recorded += 1
    await _poll(lambda: _is(checker.state(), "killed"), 20, 0.05)
    if await checker.state() != "killed":
        report.violations.append(f"round {report.rounds}: kill {nonce} confirmed before the crash, "
                                 f"but trading is {await checker.state()} after the restart")
        return
    await svc.send("/rearm")
    await svc.send("/resume")
    await _poll(lambda: _is(checker.state(), "running"), 10, 0.05)


async def run_backend(kind: str, *, rounds: int, rng: random.Random, speed: float, pg_url: str,
                      kill_share: float = 0.3, term_share: float = 0.2, run_s: tuple[float, float] = (0.3, 3.0),
                      restart_only: bool = False, plan: tuple[str, ...] = (), kill_at_close: bool = False,
                      extra_env: dict[str, str] | None = None, keep: Path | None = None,
                      outage_share: float = 0.0, outage_s: tuple[float, float] = (5.0, 15.0),
                      progress: bool = True) -> Report:
    """Rounds on one database kind. ``plan`` fixes each round's ending ("kill", "sigkill", "sigterm")
    instead of drawing it; ``kill_at_close`` crashes a kill round the moment its confirmation is used
    (instead of 0-80 ms after the press); ``extra_env`` adds settings for the service.
    ``outage_share`` (PostgreSQL only) runs a private cluster and stops it for ``outage_s`` seconds,
    while the service trades, in that share of the rounds."""
    report = Report(kind if not outage_share else f"{kind} with outages")
    if outage_share and kind == "sqlite":
        raise ValueError("database outages need PostgreSQL (a private cluster)")
    with tempfile.TemporaryDirectory(prefix=f"crash-{kind}-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        async with AsyncExitStack() as stack:
            cluster = await stack.enter_async_context(PrivateCluster()) if outage_share else None
            sink = await stack.enter_async_context(AlertSink())
            url = await stack.enter_async_context(backend_database(kind, work, pg_url, cluster))
            env = service_env(url, speed, None if restart_only else sink.url) | (extra_env or {})
            if kind != "sqlite":
                await _upgrade(env, work)
            db = Database(url)
            await db.start()
            checker = Checker(db)
            outages = Outages(cluster, outage_share, outage_s) if cluster is not None else None
            try:
                pending_kill = await _rounds(checker, work, env, report, rng, rounds=rounds, kill_share=kill_share,
                                             term_share=term_share, run_s=run_s, restart_only=restart_only, plan=plan,
                                             kill_at_close=kill_at_close, outages=outages, progress=progress)
                if not restart_only:
                    await _final(checker, work, env, report, sink, pending_kill, progress=progress)
            finally:
                await db.stop()
    return report


@dataclass
class Outages:
    cluster: PrivateCluster
    share: float
    seconds: tuple[float, float]

    async def maybe(self, checker: Checker, svc: Service, report: Report, rng: random.Random, n: int) -> None:
        """Stop the database for a while under the running service, start it again, and wait until
        the service processes a candle again."""
        if rng.random() >= self.share:
            return
        before = await checker.cursor()
        await self.cluster.stop()
        await asyncio.sleep(rng.uniform(*self.seconds))
        await self.cluster.start()
        back = time.monotonic()
        report.outages += 1
        again = await _first_candle(checker, svc, before, 90)
        if again is None:
            report.violations.append(f"round {n}: no candle processed within 90 s of the database coming back"
                                     f"\n{svc.log()[-1500:]}")
        else:
            report.outage_recovery_s.append(again - back)


async def _rounds(checker: Checker, work: Path, env: dict[str, str], report: Report, rng: random.Random, *,
                  rounds: int, kill_share: float, term_share: float, run_s: tuple[float, float],
                  restart_only: bool, plan: tuple[str, ...], kill_at_close: bool, outages: Outages | None,
                  progress: bool) -> str | None:
    """The crash rounds; returns the nonce of a kill confirmed just before the last crash, if any."""
    signalled_at: float | None = None
    pending_kill: str | None = None
    for n in range(rounds):
        before = await checker.cursor() if signalled_at is not None else None
        svc = Service(work, env, n)
        await svc.start()
        first = await _first_candle(checker, svc, before, 60)
        if first is None:
            report.violations.append(f"round {n}: no candle processed within 60 s of the start\n{svc.log()[-1500:]}")
            await _stop(svc)
            break
        if signalled_at is not None:
            report.recovery_s.append(first - signalled_at)
            phases = _phases(svc.log(), report.last_signal_wall)
            if phases is not None:
                report.phases.append(phases)
        if pending_kill is not None:
            await _settle_kill(checker, svc, report, pending_kill)
            pending_kill = None
        await asyncio.sleep(rng.uniform(*run_s))
        if not svc.alive:
            code = svc.proc.returncode if svc.proc else "?"
            report.violations.append(f"round {n}: the service exited by itself (code {code})\n{svc.log()[-1500:]}")
            break
        if outages is not None and svc.alive:
            await outages.maybe(checker, svc, report, rng, n)
            await asyncio.sleep(rng.uniform(*run_s))
        roll = rng.random()
        ending = plan[n % len(plan)] if plan else (
            "sigkill" if restart_only or roll >= kill_share + term_share
            else "kill" if roll < kill_share else "sigterm")
        if ending == "sigkill":
            how = "SIGKILL"
            signalled_at = svc.signal(signal.SIGKILL)
            await svc.wait(30)
        elif ending == "kill":
            how = "SIGKILL after /kill"
            pending_kill, signalled_at = await _confirm_kill_then_crash(svc, checker, rng, n, kill_at_close)
            report.kills_confirmed += pending_kill is not None
        else:
            how = "SIGTERM"
            signalled_at = svc.signal(signal.SIGTERM)
            code = await svc.wait(40)
            if code != 0:
                report.violations.append(f"round {n}: SIGTERM exit code {code}\n{svc.log()[-1500:]}")
        report.rounds += 1
        report.signals[how] += 1
        report.last_signal = signalled_at
        if how != "SIGTERM":
            report.sigkills.append(signalled_at)
        report.last_signal_wall = time.time() - (time.monotonic() - signalled_at)
        if not restart_only:
            found = await checker.check()
            report.violations += [f"round {n}: {v}" for v in found]
        if progress:
            rec = f"{report.recovery_s[-1]:.2f} s" if report.recovery_s else "-"
            print(f"  {report.backend} round {n}: recovery {rec} after the last signal; now {how}; "
                  f"violations so far {len(report.violations)}", flush=True)
    return pending_kill


_LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", re.M)


def _phases(log: str, signal_wall: float) -> tuple[float, float, float] | None:
    """Seconds from the signal to the new process's first log line, to its leadership and to its
    engine start, read from the log's UTC timestamps."""
    def at(marker: str | None) -> float | None:
        for m in _LOG_TS.finditer(log):
            line_end = log.find("\n", m.end())
            if marker is None or marker in log[m.end():line_end if line_end >= 0 else None]:
                return datetime.fromisoformat(m.group(1) + "+00:00").timestamp() - signal_wall
        return None

    marks = (at(None), at("became leader"), at("engine started"))
    return None if any(m is None for m in marks) else marks  # type: ignore[return-value]


async def _confirm_kill_then_crash(svc: Service, checker: Checker, rng: random.Random, n: int,
                                  at_close: bool) -> tuple[str | None, float]:
    """Ask for /kill on the console, confirm it, and SIGKILL the process 0-80 ms later (``at_close``:
    the moment the database shows the confirmation used); returns the confirmation's nonce (None if
    the prompt never came) and when the signal went."""
    mark = len(svc.output())
    await svc.send(f"/kill crash harness round {n}")
    m = await svc.wait_output(_NONCE, mark, 15)
    if m is not None:
        await svc.send(f"yes {m.group(1)}")
        if at_close:
            nonce = m.group(1)
            await _poll(lambda: checker.confirmed(nonce), 10, 0.001)
        else:
            await asyncio.sleep(rng.uniform(0, 0.08))
    at = svc.signal(signal.SIGKILL)
    await svc.wait(30)
    return (m.group(1) if m else None), at


async def _final(checker: Checker, work: Path, env: dict[str, str], report: Report, sink: AlertSink,
                 pending_kill: str | None, *, progress: bool) -> None:
    """Run once more to let everything settle and deliver, stop cleanly, check everything."""
    svc = Service(work, env, 999)
    before = await checker.cursor()
    await svc.start()
    first = await _first_candle(checker, svc, before, 60)
    if first is None:
        report.violations.append(f"final run: no candle processed\n{svc.log()[-1500:]}")
    elif report.last_signal is not None:
        report.recovery_s.append(first - report.last_signal)
    if pending_kill is not None:
        await _settle_kill(checker, svc, report, pending_kill)
    await _poll(lambda: _none_pending(checker), 30, 0.1)
    delivered_by_now = await checker.outbox_last_id()
    svc.signal(signal.SIGTERM)
    code = await svc.wait(40)
    if code != 0:
        report.violations.append(f"final run: SIGTERM exit code {code}")
    report.violations += [f"final: {v}" for v in await checker.check(settled=True)]
    (work / "alerts-received.json").write_text(json.dumps(sink.messages, indent=1))
    found, repeats = await checker.outbox_violations(sink, delivered_by_now, report.sigkills)
    report.violations += [f"final: {v}" for v in found]
    report.repeats += repeats
    if progress:
        print(f"  {report.backend}: final check done, {len(sink.messages)} alerts received", flush=True)


async def _stop(svc: Service) -> None:
    if svc.alive:
        svc.signal(signal.SIGKILL)
        await svc.wait(30)


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    reports = []
    for kind in args.db.split(","):
        print(f"== {kind}: {args.rounds} rounds (seed {args.seed}, replay speed {args.speed})", flush=True)
        reports.append(await run_backend(
            kind, rounds=args.rounds, rng=rng, speed=args.speed, pg_url=args.pg_url, kill_share=args.kill_share,
            term_share=args.term_share, run_s=(args.min_run, args.max_run), restart_only=args.restart_only,
            outage_share=args.outage_share if kind != "sqlite" else 0.0, keep=args.keep / kind if args.keep else None))
    print()
    for r in reports:
        print("\n".join(r.lines()))
    return 1 if any(r.violations for r in reports) else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both (comma-separated)")
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--speed", type=float, default=200.0, help="replay candles per second (the default service: 50)")
    p.add_argument("--kill-share", type=float, default=0.3, help="share of rounds confirming /kill before the SIGKILL")
    p.add_argument("--term-share", type=float, default=0.2, help="share of rounds ending with SIGTERM")
    p.add_argument("--min-run", type=float, default=0.3, help="shortest run before the signal (s)")
    p.add_argument("--max-run", type=float, default=3.0, help="longest run before the signal (s)")
    p.add_argument("--restart-only", action="store_true",
                   help="SIGKILL only, no checks: measure SIGKILL -> first processed candle")
    p.add_argument("--pg-url", default=PG_URL)
    p.add_argument("--outage-share", type=float, default=0.0,
                   help="PostgreSQL: run a private cluster and stop it for 5-15 s in this share of the rounds")
    p.add_argument("--keep", type=Path, help="keep the work directories (logs, SQLite file) under this directory")
    sys.exit(asyncio.run(main_async(p.parse_args())))


if __name__ == "__main__":
    main()
