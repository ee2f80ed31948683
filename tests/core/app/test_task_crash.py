"""A background task that crashes in a running `tradectl run` is reported and the process exits 1.

The crash is a real one: the service loses its lease (another holder writes the lease row, as a
replica would), and when it wins the lease back its trading core cannot start, because the replay
candles it started with are gone. The lease loop that starts the leader work dies with that error;
the service must say so and exit non-zero (the policy in core/runtime/lifecycle.py) instead of
staying up as a follower that beats its heartbeat but will never trade again.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from tests.core.app.test_service import TRADECTL, env_for, wait_for


def steal_lease(db: Path, for_s: float) -> None:
    """What another replica does when it takes the lease: a new holder and epoch, expiring in ``for_s``."""
    with sqlite3.connect(db, timeout=30) as conn:
        changed = conn.execute(
            "UPDATE leases SET holder = 'intruder', epoch = epoch + 1, "
            f"expires_at = strftime('%Y-%m-%d %H:%M:%f', 'now', '+{for_s} seconds') || '000+00:00'").rowcount
    assert changed == 1


@pytest.mark.slow
def test_a_crashed_lease_loop_is_reported_and_the_service_exits_1(tmp_path: Path) -> None:
    candles = tmp_path / "candles.csv"
    with resources.as_file(resources.files("exchanges").joinpath("data", "coinbase_BTC-USD_1h.csv")) as bundled:
        shutil.copy(bundled, candles)
    env = env_for(tmp_path, TRADECTL_REPLAY__CSV=str(candles), TRADECTL_LEADER__TTL_S="3",
                  TRADECTL_LEADER__RENEW_S="0.3", TRADECTL_LEADER__STEP_DOWN_S="2",
                  TRADECTL_LEADER__FOLLOWER_POLL_S="0.2")
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*TRADECTL, "run"], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                text=True)
        try:
            wait_for(lambda: "engine started" in log.read_text(), 40)
            candles.unlink()
            steal_lease(tmp_path / "svc.db", for_s=1)
            code = proc.wait(40)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    assert code == 1, text[-3000:]
    assert "stepping down as leader: lease held by another instance" in text
    assert "task leader:lease failed" in text
    assert "stopped because task 'leader:lease' failed" in text and "cannot read candles" in text
    assert "stopped cleanly" not in text
