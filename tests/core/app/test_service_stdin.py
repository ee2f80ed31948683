"""`tradectl run --exit-after-input` with no input at all (stdin is /dev/null, as under CI or cron):
the input has ended before it began, so the service stops by itself instead of running on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.core.app.test_service import TRADECTL, env_for


@pytest.mark.parametrize("console", ["on", "auto"])
def test_exit_after_input_with_stdin_from_dev_null_stops(tmp_path: Path, console: str) -> None:
    env = env_for(tmp_path, TRADECTL_CHAT__CONSOLE=console)
    proc = subprocess.run([*TRADECTL, "run", "--exit-after-input"], env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "stopped cleanly" in proc.stderr
    assert "Traceback" not in proc.stderr
