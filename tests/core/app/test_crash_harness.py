"""The crash harness, bounded: `tradectl run` SIGKILLed and SIGTERMed, a kill confirmed just before a
crash, on SQLite and PostgreSQL; the database must show no broken invariant after any round."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from benchmarks.crash_harness import PG_URL, run_backend
from tests.conftest import require_pg

# A lease far longer than any start-up: a restart that waited for its dead predecessor's lease to
# expire would need more than 60 s; one that proves it dead (issue 13 case 9) needs only its boot.
LONG_LEASE = {"TRADECTL_LEADER__TTL_S": "90", "TRADECTL_LEADER__RENEW_S": "5", "TRADECTL_LEADER__STEP_DOWN_S": "10"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_crashes_break_no_invariant_and_a_confirmed_kill_survives(kind: str, tmp_path: Path) -> None:
    if kind == "postgres":
        require_pg()
    report = await run_backend(kind, rounds=2, rng=random.Random(13), speed=200, pg_url=PG_URL,
                               run_s=(0.5, 1.5), plan=("kill", "sigterm"), kill_at_close=True,
                               extra_env=LONG_LEASE, keep=tmp_path, progress=False)
    print("\n".join(report.lines()))
    assert report.violations == []
    assert report.rounds == 2 and report.kills_recorded == 1  # the kill was on record when the process died
    assert len(report.recovery_s) == 2 and max(report.recovery_s) < 45, report.recovery_s

# Every paper venue call takes 150 ms: a SIGKILL the moment a confirmation is on record lands before the
# venue hears of the command, so the restart has something to finish.
SLOW_VENUE = {"TRADECTL_PAPER__LATENCY_MS": "150"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_manual_orders_confirmed_just_before_a_crash_are_placed_at_most_once(kind: str, tmp_path: Path) -> None:
    """A /buy at a limit and in USD at market and a /cancel all of a resting order, each confirmed on the
    console and SIGKILLed the moment the confirmation is on record: after every restart no confirmation has
    a second order, no order lacks its confirmation, an executed one has its order or its refusal, and the
    confirmed /cancel all leaves nothing it would cancel open (the restart completes it)."""
    if kind == "postgres":
        require_pg()
    report = await run_backend(kind, rounds=3, rng=random.Random(5), speed=200, pg_url=PG_URL, run_s=(0.2, 0.4),
                               plan=("manual:limit", "manual:buy-quote", "manual:cancel"),
                               kill_at_close=True, extra_env=LONG_LEASE | SLOW_VENUE, keep=tmp_path, progress=False)
    print("\n".join(report.lines()))
    assert report.violations == []
    assert report.rounds == 3 and sum(report.manual_typed.values()) == 3
    assert report.manual_recorded >= 2  # presses on record when the process died (a buy may meet an open position)
    assert report.manual_orders >= 1  # the resting limit buy the /cancel all was confirmed for
    assert report.cancels_finished == 1  # the crash left it open; after the restart it was not
