"""`tradectl run` as a process: starts, beats, trades, stops on SIGTERM with exit 0, resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TRADECTL = [sys.executable, "-m", "core.app.cli"]
ROOT = Path(__file__).resolve().parents[3]


def terminate(proc: subprocess.Popen[str], timeout: float = 30) -> int:
    """SIGTERM and wait for the exit code; a process that does not stop in time is killed (never left
    running after the test) and the timeout is raised."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECTL_") and k != "DATABASE_URL"}
    env.update({
        "DATABASE_URL": f"sqlite:///{tmp_path}/svc.db",
        "TRADECTL_CHAT__CONSOLE": "off",
        "TRADECTL_REPLAY__SPEED": "400",
        "TRADECTL_SERVICE__HEARTBEAT_INTERVAL_S": "0.5",
        "TRADECTL_SERVICE__HEARTBEAT_STALE_S": "3",
        "TRADECTL_LOGGING__FORMAT": "text",
        "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env


def tradectl(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(TRADECTL + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def wait_for(pred, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.mark.slow
def test_run_trades_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*TRADECTL, "run"], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                text=True)
        try:
            wait_for(lambda: tradectl(["health"], env, tmp_path).returncode == 0, 40)
            wait_for(lambda: "closed BTC/USD" in log.read_text(), 60)
        finally:
            code = terminate(proc)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "stopped cleanly" in text
    assert "fees" in text and "PnL" in text
    assert "Traceback" not in text
    # after a clean stop the health probe fails at once (the instance marked itself stopped)
    assert tradectl(["health"], env, tmp_path).returncode == 1

    with log.open("a") as out:
        proc = subprocess.Popen([*TRADECTL, "run"], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                text=True)
        try:
            wait_for(lambda: log.read_text().count("engine started") >= 2, 40)
            time.sleep(1.5)
        finally:
            assert terminate(proc) == 0
    second = log.read_text().split("engine started")[-1]
    assert "empty -> " not in second  # no re-migration, same database
    assert "2017-07-01" not in second  # the replay resumed after its last candle, not from the start


def test_postgres_schema_must_be_upgraded_first(pg_database_url: str, tmp_path: Path) -> None:
    env = env_for(tmp_path, DATABASE_URL=pg_database_url)
    res = tradectl(["run"], env, tmp_path, timeout=60)
    assert res.returncode == 1
    assert "tradectl db upgrade" in res.stdout + res.stderr


def test_unknown_setting_exits_2(tmp_path: Path) -> None:
    res = tradectl(["config", "check"], env_for(tmp_path, TRADECTL_NOT_A_SETTING="1"), tmp_path)
    assert res.returncode == 2 and "TRADECTL_NOT_A_SETTING" in res.stderr


def test_invalid_confluence_weights_refuse_to_start(tmp_path: Path) -> None:
    for weights in ('{"trend": -1}', '{"trend": 0, "mean_reversion": 0, "momentum": 0, "breakout": 0, "candles": 0}'):
        res = tradectl(["run"], env_for(tmp_path, TRADECTL_STRATEGIES__WEIGHTS=weights), tmp_path)
        assert res.returncode == 2, res.stderr
        assert "weight" in res.stderr.lower()


def test_strategy_module_with_wrong_hash_refuses_to_start(tmp_path: Path) -> None:
    module = tmp_path / "mine.py"
    module.write_text("NAME = 'mine'\n")
    cfg = tmp_path / "tradectl.toml"
    cfg.write_text(f'[[strategies.external]]\nname = "mine"\npath = "{module}"\nsha256 = "{"0" * 64}"\n')
    res = tradectl(["run", "--config", str(cfg)], env_for(tmp_path), tmp_path)
    assert res.returncode == 2, res.stderr
    assert "sha" in res.stderr.lower() and "mine" in res.stderr
