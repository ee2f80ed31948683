"""Crash harness: `tradectl run` killed at random moments, its database checked after every round.

Runs the real service (the embedded default: paper venue replaying the bundled candles, console
chat on stdin) on SQLite and on PostgreSQL, and per round:

1. starts it and waits for its first processed candle (the *recovery time* is measured from the
   previous round's signal to that candle);
2. lets it trade for a random while, then SIGKILLs or SIGTERMs it; in some rounds a ``/kill``, in
   others a manual order (``/buy``, ``/sell``, ``/cancel all``), is confirmed on the console a few
   milliseconds before the SIGKILL;
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
   - every alert delivered (to a webhook fake on loopback), none twice;
   - manual orders (``--manual-share``, 0.3 by default: a ``/buy`` at market or at a limit, in BTC
     or in USD, a ``/sell`` of part of the open position or a ``/cancel all`` of a resting order,
     confirmed on the console 0-200 ms before the SIGKILL): at most one order per confirmation,
     across every restart, and none without a confirmation recorded as confirmed; a confirmation
     recorded as executed has its order (or a recorded refusal); no order row for an interrupted
     command after the crash; a confirmed ``/cancel all`` leaves no order it would cancel open after
     the restart unless it is recorded as not executed (benchmarks/crash/manual_invariants.py).

At the end the service runs once more, delivers its alerts and stops with SIGTERM, and everything
is checked again. It prints the rounds, the violations and the recovery times.

    python benchmarks/crash_harness.py                      # 20 rounds on SQLite and on PostgreSQL
    python benchmarks/crash_harness.py --rounds 50 --db sqlite --seed 7
    python benchmarks/crash_harness.py --rounds 30 --db sqlite --manual-share 0.6
    python benchmarks/crash_harness.py --rounds 10 --plan manual:sell,manual:cancel
    python benchmarks/crash_harness.py --restart-only --rounds 10 --speed 50 --db sqlite
        # only SIGKILL -> first processed candle on the embedded default (the fast-restart figure)

    python benchmarks/crash_harness.py --db postgres --outage-share 0.5
        # also stop the database for 5-15 s under the running service in half of the rounds

PostgreSQL comes from ``--pg-url`` or ``TRADECTL_TEST_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); the harness creates a database of its own and drops it.
With ``--outage-share`` it runs a private cluster instead (``initdb`` and ``pg_ctl`` on PATH).
tests/core/app/test_crash_harness.py runs a bounded version of it. The parts live in benchmarks/crash/:
the service as a process (process.py), the databases and the private cluster (cluster.py), the
invariants (invariants.py, manual_invariants.py), the manual-order rounds (manual.py), how a round
ends (endings.py), the rounds (rounds.py) and the report (report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.crash.cluster import PG_URL  # noqa: E402
from benchmarks.crash.manual import KINDS  # noqa: E402
from benchmarks.crash.rounds import run_backend  # noqa: E402

__all__ = ["PG_URL", "run_backend"]


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    reports = []
    for kind in args.db.split(","):
        print(f"== {kind}: {args.rounds} rounds (seed {args.seed}, replay speed {args.speed})", flush=True)
        reports.append(await run_backend(
            kind, rounds=args.rounds, rng=rng, speed=args.speed, pg_url=args.pg_url, kill_share=args.kill_share,
            term_share=args.term_share, run_s=(args.min_run, args.max_run), restart_only=args.restart_only,
            outage_share=args.outage_share if kind != "sqlite" else 0.0, keep=args.keep / kind if args.keep else None,
            manual_share=args.manual_share, plan=tuple(e for e in args.plan.split(",") if e)))
    print()
    for r in reports:
        print("\n".join(r.lines()))
    return 1 if any(r.violations for r in reports) else 0


def _plan(text: str) -> str:
    known = {"kill", "sigkill", "sigterm", "manual", *(f"manual:{k}" for k in KINDS)}
    unknown = [e for e in text.split(",") if e and e not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown ending {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both (comma-separated)")
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--speed", type=float, default=200.0, help="replay candles per second (the default service: 50)")
    p.add_argument("--kill-share", type=float, default=0.3, help="share of rounds confirming /kill before the SIGKILL")
    p.add_argument("--term-share", type=float, default=0.2, help="share of rounds ending with SIGTERM")
    p.add_argument("--manual-share", type=float, default=0.3,
                   help="share of rounds confirming a /buy, /sell or /cancel all before the SIGKILL")
    p.add_argument("--plan", default="", type=_plan,
                   help="fix each round's ending instead of drawing it, in turn: kill, sigkill, sigterm, manual or "
                        "manual:KIND (KIND: " + ", ".join(KINDS) + "), comma-separated; e.g. manual:sell")
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
