"""How a round ends and what follows it: a kill confirmed just before a SIGKILL and its check after the
restart, a database outage under the running service, and the restart's phases read from its log."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime

from benchmarks.crash.cluster import PrivateCluster
from benchmarks.crash.invariants import Checker
from benchmarks.crash.process import NONCE, Service, poll
from benchmarks.crash.report import Report
from persistence.models import ConfirmationRow


async def is_(state: Awaitable[str], wanted: str) -> bool:
    return await state == wanted


async def first_candle(checker: Checker, svc: Service, before: str | None, timeout: float) -> float | None:
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


async def settle_kill(checker: Checker, svc: Service, report: Report, nonce: str) -> None:
    """After a restart: a kill confirmed before the crash must end killed; then re-arm and resume."""
    async with checker.db.read() as s:
        row = await s.get(ConfirmationRow, nonce)
    if row is None or row.outcome != "confirmed":
        return  # the press never got through before the crash: nothing was promised
    report.kills_recorded += 1
    await poll(lambda: is_(checker.state(), "killed"), 20, 0.05)
    if await checker.state() != "killed":
        report.violations.append(f"round {report.rounds}: kill {nonce} confirmed before the crash, "
                                 f"but trading is {await checker.state()} after the restart")
        return
    await svc.send("/rearm")
    await svc.send("/resume")
    await poll(lambda: is_(checker.state(), "running"), 10, 0.05)


async def confirm_kill_then_crash(svc: Service, checker: Checker, rng: random.Random, n: int,
                                  at_close: bool) -> tuple[str | None, float]:
    """Ask for /kill on the console, confirm it, and SIGKILL the process 0-80 ms later (``at_close``:
    the moment the database shows the confirmation used); returns the confirmation's nonce (None if
    the prompt never came) and when the signal went."""
    mark = len(svc.output())
    await svc.send(f"/kill crash harness round {n}")
    m = await svc.wait_output(NONCE, mark, 15)
    if m is not None:
        await svc.send(f"yes {m.group(1)}")
        if at_close:
            nonce = m.group(1)
            await poll(lambda: checker.confirmed(nonce), 10, 0.001)
        else:
            await asyncio.sleep(rng.uniform(0, 0.08))
    at = svc.signal(signal.SIGKILL)
    await svc.wait(30)
    return (m.group(1) if m else None), at


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
        again = await first_candle(checker, svc, before, 90)
        if again is None:
            report.violations.append(f"round {n}: no candle processed within 90 s of the database coming back"
                                     f"\n{svc.log()[-1500:]}")
        else:
            report.outage_recovery_s.append(again - back)


_LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", re.M)


def phases(log: str, signal_wall: float) -> tuple[float, float, float] | None:
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
