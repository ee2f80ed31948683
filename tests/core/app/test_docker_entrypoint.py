"""The image's entrypoint (core/app/docker-entrypoint.sh) with the real `tradectl` on PATH."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ENTRYPOINT = Path(__file__).resolve().parents[3] / "core" / "app" / "docker-entrypoint.sh"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADECTL_", "DATABASE_URL", "PG"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the venv's tradectl
    env.update(extra)
    return env


def _run(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(ENTRYPOINT), *args], env=_env(tmp_path, **extra), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


def test_database_url_file_is_used(tmp_path: Path) -> None:
    url_file = tmp_path / "database_url"
    url_file.write_text(f"sqlite:///{tmp_path}/from-file.db\n")
    res = _run(tmp_path, "db", "upgrade", DATABASE_URL_FILE=str(url_file))
    assert res.returncode == 0, res.stderr
    assert "from-file.db" in res.stdout and (tmp_path / "from-file.db").exists()


def test_an_unreadable_secret_file_stops_before_tradectl_runs(tmp_path: Path) -> None:
    res = _run(tmp_path, "db", "upgrade", POSTGRES_PASSWORD_FILE=str(tmp_path / "missing"))
    assert res.returncode == 2
    assert f"cannot read {tmp_path / 'missing'} (named by POSTGRES_PASSWORD_FILE)" in res.stderr
    assert not (tmp_path / "data").exists()  # tradectl never ran


@pytest.fixture
def silent_database() -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) and never answers
    yield f"postgresql://tradectl@127.0.0.1:{listener.getsockname()[1]}/tradectl"
    listener.close()


def _pid1_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _pid1_available(), reason="needs unshare --pid (root or user namespaces)")
def test_sigterm_during_migrations_stops_the_container_promptly(tmp_path: Path, silent_database: str) -> None:
    """As PID 1 (what a container's entrypoint is), a process without a SIGTERM handler ignores it:
    `sh -c "tradectl db upgrade && exec tradectl run"` held `docker stop` for the grace period."""
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", str(ENTRYPOINT)],
                            env=_env(tmp_path, DATABASE_URL=silent_database), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)  # inside `db upgrade`, waiting on the silent database (10 s connect timeout)
        assert proc.poll() is None
        pid1 = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert pid1, "the namespace's PID 1 is not running"
        started = time.monotonic()
        os.kill(int(pid1[0]), signal.SIGTERM)  # what `docker stop` does: SIGTERM to PID 1
        proc.wait(timeout=5)
        assert time.monotonic() - started < 4.5  # the database connect timeout is 10 s
        out, err = proc.communicate()
        assert "running" not in out + err  # the service was not started after the interrupted upgrade
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_console_keeps_the_containers_stdin(tmp_path: Path) -> None:
    """`docker run -it IMAGE run`: a background child would read /dev/null instead."""
    res = subprocess.run(["sh", str(ENTRYPOINT), "run", "--exit-after-input"], input="/status\n",
                         env=_env(tmp_path, TRADECTL_CHAT__CONSOLE="on"), cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "Running" in res.stdout


@pytest.mark.skipif(not _pid1_available(), reason="needs unshare --pid (root or user namespaces)")
def test_docker_stop_of_the_running_service_exits_0(tmp_path: Path) -> None:
    """No arguments: migrations, then the service; SIGTERM to PID 1 stops it cleanly with exit 0."""
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", str(ENTRYPOINT)],
                            env=_env(tmp_path, TRADECTL_CHAT__CONSOLE="off"), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "running (group" in line:
                break
        assert any("running (group" in line for line in seen), "".join(seen)
        pid1 = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        os.kill(int(pid1[0]), signal.SIGTERM)
        rest = proc.communicate(timeout=30)[0]
        assert proc.returncode == 0, rest
        assert "stopped cleanly" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
