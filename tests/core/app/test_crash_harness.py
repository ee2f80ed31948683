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
