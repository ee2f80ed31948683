"""Telegram polling failover between service replicas on one PostgreSQL and one bot token.

Starts three replicas (``tradectl run``, forked from a launcher that has the service imported; see
``tests/bot/platforms/telegram/launcher.py``) against the fake Bot API server, then hands leadership over
``--runs`` times gracefully (SIGTERM, as in a rolling deploy) and ``--runs`` times by a crash
(SIGKILL), replacing each stopped replica. For every handover it measures, from the signal:

- **polling**: until another replica's first ``getUpdates`` reaches the server;
- **reply**: until the answer to a ``/status`` sent at the moment of the signal arrives (the outage a
  user sees).

Goals: graceful about 1 s (at most 2 s), crash at most TTL + renew interval; no 409 Conflict except
the one overlap a crash can cause.

    python benchmarks/bench_failover.py                 # 10 + 10 runs, TTL 3 s / renew 1 s
    python benchmarks/bench_failover.py --runs 20 --ttl 15 --renew 5 --step-down 10   # the defaults in production

PostgreSQL comes from ``--url`` or ``TRADECTL_TEST_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); the benchmark creates a database of its own and drops it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from tests.bot.platforms.telegram.replicas import GROUP, ReplicaSet, Traffic, overlapping_polls
from tests.fakes.telegram import FakeTelegram


async def handover(replicas: ReplicaSet, traffic: Traffic, fake: FakeTelegram, leader: str,
                   sig: signal.Signals) -> tuple[str, float, float]:
    for replica in replicas.alive():
        await replicas.wait_ready(replica)
    await traffic.settle()
    before = len(fake.sent_to(GROUP))
    at = replicas.signal(leader, sig)
    traffic.send("/status")
    new, started = await replicas.wait_poller(other_than=leader, since=at, timeout=60)
    await fake.wait_for(lambda: len(fake.sent_to(GROUP)) > before, 60, "the reply to /status")
    replied = fake.sent_to(GROUP)[before].at
    await replicas.wait_exit(leader)
    while len(replicas.alive()) < 3:
        replicas.spawn()
    return new, started - at, replied - at


def summary(name: str, values: list[float]) -> str:
    return (f"{name:<18} median {statistics.median(values):5.2f} s   max {max(values):5.2f} s   "
            f"min {min(values):5.2f} s   (n={len(values)})")


async def run(url: str, runs: int, leader_settings: dict[str, float]) -> None:
    admin = url.replace("postgresql+asyncpg://", "postgresql://")
    name = "tradectl_bench_" + secrets.token_hex(4)
    conn = await asyncpg.connect(admin)
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    db_url = f"{admin.rsplit('/', 1)[0]}/{name}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            ReplicaSet.upgrade(db_url, work)
            async with FakeTelegram(chat_rate_per_s=1000, chat_burst=1000, group_per_minute=100_000) as fake:
                replicas = ReplicaSet(fake, db_url, work, leader=leader_settings)
                traffic = Traffic(fake)
                try:
                    for _ in range(3):
                        replicas.spawn()
                    leader, _ = await replicas.wait_poller(timeout=120)
                    results: dict[str, tuple[list[float], list[float]]] = {"graceful": ([], []), "crash": ([], [])}
                    plan = [signal.SIGTERM, signal.SIGKILL] * runs
                    for i, sig in enumerate(plan, 1):
                        kind = "crash" if sig is signal.SIGKILL else "graceful"
                        leader, polled, replied = await handover(replicas, traffic, fake, leader, sig)
                        results[kind][0].append(polled)
                        results[kind][1].append(replied)
                        print(f"  {i:3d}/{len(plan)} {kind:<8} polling after {polled:5.2f} s, reply after "
                              f"{replied:5.2f} s", flush=True)
                    await traffic.settle(60)
                finally:
                    await replicas.stop_all()
                ttl, renew = leader_settings["ttl_s"], leader_settings["renew_s"]
                print()
                print(f"lease: ttl {ttl:g} s, renew {renew:g} s, step-down {leader_settings['step_down_s']:g} s, "
                      f"follower poll {leader_settings['follower_poll_s']:g} s; 3 replicas; {os.cpu_count()} CPUs")
                print(summary("graceful polling", results["graceful"][0]) + "   goal <= 2 s")
                print(summary("graceful reply", results["graceful"][1]))
                print(summary("crash polling", results["crash"][0]) + f"   goal <= {ttl + renew:g} s")
                print(summary("crash reply", results["crash"][1]))
                print(f"409 Conflict answers: {fake.conflicts}; "
                      f"overlapping getUpdates: {len(overlapping_polls(fake))}; "
                      f"commands {len(traffic.sent)}, unanswered {len(traffic.unanswered())}, "
                      f"answered twice {len(traffic.answered_twice())}")
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="graceful and crash handovers each (default 10)")
    parser.add_argument("--url", default=os.environ.get("TRADECTL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--ttl", type=float, default=3.0)
    parser.add_argument("--renew", type=float, default=1.0)
    parser.add_argument("--step-down", type=float, default=2.0)
    parser.add_argument("--follower-poll", type=float, default=0.25)
    args = parser.parse_args()
    leader = {"ttl_s": args.ttl, "renew_s": args.renew, "step_down_s": args.step_down,
              "follower_poll_s": args.follower_poll}
    asyncio.run(run(args.url, args.runs, leader))


if __name__ == "__main__":
    main()
