"""The rounds on one database kind: start the service, let it trade, end it (SIGKILL, SIGTERM, SIGKILL
just after a confirmed /kill or a confirmed manual order), check the database; then a final clean run."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from benchmarks.crash import manual_invariants
from benchmarks.crash.cluster import PrivateCluster, backend_database
from benchmarks.crash.endings import Outages, confirm_kill_then_crash, first_candle, phases, settle_kill
from benchmarks.crash.invariants import Checker
from benchmarks.crash.manual import KINDS, Asked, ManualRounds
from benchmarks.crash.process import AlertSink, Service, poll, service_env, stop, upgrade
from benchmarks.crash.report import Report
from persistence.db import Database
from persistence.models import ConfirmationRow


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How the rounds end: shares drawn per round, or ``plan`` fixing each round's ending ("kill",
    "sigkill", "sigterm", "manual" or "manual:<kind>" with a kind of :data:`~benchmarks.crash.manual.KINDS`)."""

    rounds: int
    kill_share: float = 0.3
    term_share: float = 0.2
    manual_share: float = 0.0
    run_s: tuple[float, float] = (0.3, 3.0)
    restart_only: bool = False
    plan: tuple[str, ...] = ()
    kill_at_close: bool = False

    def ending(self, n: int, rng: random.Random) -> str:
        roll = rng.random()  # drawn with a plan too: a seed gives the same run times either way
        if self.plan:
            return self.plan[n % len(self.plan)]
        if self.restart_only or roll >= self.kill_share + self.term_share + self.manual_share:
            return "sigkill"
        if roll < self.kill_share:
            return "kill"
        return "sigterm" if roll < self.kill_share + self.term_share else "manual"


async def run_backend(kind: str, *, rounds: int, rng: random.Random, speed: float, pg_url: str,
                      kill_share: float = 0.3, term_share: float = 0.2, run_s: tuple[float, float] = (0.3, 3.0),
                      restart_only: bool = False, plan: tuple[str, ...] = (), kill_at_close: bool = False,
                      extra_env: dict[str, str] | None = None, keep: Path | None = None,
                      outage_share: float = 0.0, outage_s: tuple[float, float] = (5.0, 15.0),
                      progress: bool = True, manual_share: float = 0.0) -> Report:
    """Rounds on one database kind. ``plan`` fixes each round's ending instead of drawing it (see
    :class:`Plan`); ``kill_at_close`` crashes a kill or manual round the moment its confirmation is used
    (instead of 0-80 ms after the press); ``extra_env`` adds settings for the service.
    ``manual_share`` of the rounds type a /buy, /sell or /cancel all, confirm it and crash.
    ``outage_share`` (PostgreSQL only) runs a private cluster and stops it for ``outage_s`` seconds,
    while the service trades, in that share of the rounds."""
    report = Report(kind if not outage_share else f"{kind} with outages")
    if outage_share and kind == "sqlite":
        raise ValueError("database outages need PostgreSQL (a private cluster)")
    how = Plan(rounds=rounds, kill_share=kill_share, term_share=term_share, manual_share=manual_share, run_s=run_s,
               restart_only=restart_only, plan=plan, kill_at_close=kill_at_close)
    with tempfile.TemporaryDirectory(prefix=f"crash-{kind}-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        async with AsyncExitStack() as stack:
            cluster = await stack.enter_async_context(PrivateCluster()) if outage_share else None
            sink = await stack.enter_async_context(AlertSink())
            url = await stack.enter_async_context(backend_database(kind, work, pg_url, cluster))
            env = service_env(url, speed, None if restart_only else sink.url) | (extra_env or {})
            if kind != "sqlite":
                await upgrade(env, work)
            db = Database(url)
            await db.start()
            run = Run(Checker(db), ManualRounds(db), work, env, report, rng, how,
                      Outages(cluster, outage_share, outage_s) if cluster is not None else None, progress)
            try:
                await run.rounds()
                if not restart_only:
                    await run.final(sink)
            finally:
                await db.stop()
    return report


@dataclass
class Run:
    """One backend's rounds, and what the next start must settle (a kill or manual order just before
    the crash)."""

    checker: Checker
    manual: ManualRounds
    work: Path
    env: dict[str, str]
    report: Report
    rng: random.Random
    how: Plan
    outages: Outages | None
    progress: bool
    pending_kill: str | None = None
    pending_manual: Asked | None = None

    async def rounds(self) -> None:
        checker, report, how = self.checker, self.report, self.how
        signalled_at: float | None = None
        for n in range(how.rounds):
            before = await checker.cursor() if signalled_at is not None else None
            svc = Service(self.work, self.env, n)
            await svc.start()
            first = await first_candle(checker, svc, before, 60)
            if first is None:
                report.violations.append(f"round {n}: no candle processed within 60 s of the start\n"
                                         f"{svc.log()[-1500:]}")
                await stop(svc)
                break
            if signalled_at is not None:
                report.recovery_s.append(first - signalled_at)
                found = phases(svc.log(), report.last_signal_wall)
                if found is not None:
                    report.phases.append(found)
            await self.settle(svc)
            await _sleep(self.rng, how.run_s)
            if not svc.alive:
                code = svc.proc.returncode if svc.proc else "?"
                report.violations.append(f"round {n}: the service exited by itself (code {code})\n"
                                         f"{svc.log()[-1500:]}")
                break
            if self.outages is not None and svc.alive:
                await self.outages.maybe(checker, svc, report, self.rng, n)
                await _sleep(self.rng, how.run_s)
            signalled_at, signal_name = await self.end(svc, n, how.ending(n, self.rng))
            report.rounds += 1
            report.signals[signal_name] += 1
            report.last_signal = signalled_at
            if signal_name != "SIGTERM":
                report.sigkills.append(signalled_at)
            report.last_signal_wall = time.time() - (time.monotonic() - signalled_at)
            if not how.restart_only:
                found_now = await checker.check() + await manual_invariants.check(self.manual)
                report.violations += [f"round {n}: {v}" for v in found_now]
            if self.progress:
                rec = f"{report.recovery_s[-1]:.2f} s" if report.recovery_s else "-"
                print(f"  {report.backend} round {n}: recovery {rec} after the last signal; now {signal_name}; "
                      f"violations so far {len(report.violations)}", flush=True)

    async def end(self, svc: Service, n: int, ending: str) -> tuple[float, str]:
        """End the round as drawn; returns when the signal went and its name for the report."""
        if ending == "sigkill":
            at = svc.signal(signal.SIGKILL)
            await svc.wait(30)
            return at, "SIGKILL"
        if ending == "kill":
            self.pending_kill, at = await confirm_kill_then_crash(svc, self.checker, self.rng, n,
                                                                  self.how.kill_at_close)
            self.report.kills_confirmed += self.pending_kill is not None
            return at, "SIGKILL after /kill"
        if ending.startswith("manual"):
            kind = ending.partition(":")[2] or self.rng.choice(KINDS)
            asked, at = await self.manual.then_crash(svc, self.rng, n, kind, self.how.kill_at_close)
            await self._count(asked, kind)
            self.pending_manual = asked
            return at, "SIGKILL after a manual order"
        at = svc.signal(signal.SIGTERM)
        code = await svc.wait(40)
        if code != 0:
            self.report.violations.append(f"round {n}: SIGTERM exit code {code}\n{svc.log()[-1500:]}")
        return at, "SIGTERM"

    async def _count(self, asked: Asked | None, kind: str) -> None:
        """What the database shows of the command right after the crash."""
        r = self.report
        r.manual_typed[kind] += 1
        if asked is None or asked.nonce is None:
            return
        r.manual_confirmed[kind] += 1
        async with self.checker.db.read() as s:
            row = await s.get(ConfirmationRow, asked.nonce)
        if row is not None and row.outcome == "confirmed":
            r.manual_recorded += 1
            r.manual_executed += row.executed_at is not None
            r.manual_orders_at_crash += len(asked.at_crash)

    async def settle(self, svc: Service) -> None:
        """After a restart: what was confirmed just before the crash must have taken effect."""
        if self.pending_kill is not None:
            await settle_kill(self.checker, svc, self.report, self.pending_kill)
            self.pending_kill = None
        asked, self.pending_manual = self.pending_manual, None
        if asked is not None and asked.kind == "cancel" and asked.nonce is not None:
            found = await manual_invariants.settle_cancel(self.manual, asked, svc.log)
            self.report.violations += [f"round {self.report.rounds}: {v}" for v in found]
            self.report.cancels_finished += bool(asked.open_at_crash) and not found

    async def final(self, sink: AlertSink) -> None:
        """Run once more to let everything settle and deliver, stop cleanly, check everything."""
        checker, report = self.checker, self.report
        svc = Service(self.work, self.env, 999)
        before = await checker.cursor()
        await svc.start()
        first = await first_candle(checker, svc, before, 60)
        if first is None:
            report.violations.append(f"final run: no candle processed\n{svc.log()[-1500:]}")
        elif report.last_signal is not None:
            report.recovery_s.append(first - report.last_signal)
        await self.settle(svc)
        await poll(lambda: _none_pending(checker), 30, 0.1)
        delivered_by_now = await checker.outbox_last_id()
        svc.signal(signal.SIGTERM)
        code = await svc.wait(40)
        if code != 0:
            report.violations.append(f"final run: SIGTERM exit code {code}")
        report.violations += [f"final: {v}" for v in await checker.check(settled=True)]
        report.violations += [f"final: {v}" for v in await manual_invariants.check(self.manual)]
        report.manual_orders = len(await self.manual.manual_orders())
        (self.work / "alerts-received.json").write_text(json.dumps(sink.messages, indent=1))
        found, repeats = await checker.outbox_violations(sink, delivered_by_now, report.sigkills)
        report.violations += [f"final: {v}" for v in found]
        report.repeats += repeats
        if self.progress:
            print(f"  {report.backend}: final check done, {len(sink.messages)} alerts received", flush=True)


async def _none_pending(checker: Checker) -> bool:
    return not await checker.outbox_pending()


async def _sleep(rng: random.Random, run_s: tuple[float, float]) -> None:
    await asyncio.sleep(rng.uniform(*run_s))
