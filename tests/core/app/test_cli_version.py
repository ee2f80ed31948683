"""`tradectl --version` and shell completion, as an operator's shell runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.core.app.test_service import ROOT

SCRIPT = Path(sys.executable).parent / "tradectl"  # the console script the package installs


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                          capture_output=True, text=True, timeout=60)


pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="the tradectl console script is not installed")


def test_version_is_the_package_metadata() -> None:
    done = run(["--version"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"tradectl {version('tradectl')}"


def test_bash_completion_script_and_completions() -> None:
    shown = run(["--show-completion", "bash"])
    assert shown.returncode == 0, shown.stderr
    assert "complete" in shown.stdout and "_TRADECTL_COMPLETE" in shown.stdout
    # what bash asks when the user presses TAB after `tradectl db `
    done = run([], _TRADECTL_COMPLETE="complete_bash", COMP_WORDS="tradectl db ", COMP_CWORD="2")
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) == {"upgrade", "current", "backup", "restore"}
