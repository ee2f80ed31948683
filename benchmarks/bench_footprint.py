"""Footprint of the embedded default: the health probe's cost, start-up to the first reply, and peak RSS.

    python benchmarks/bench_footprint.py                  # 60 s run
    python benchmarks/bench_footprint.py --seconds 300    # the issue's 5 minutes
    python benchmarks/bench_footprint.py --seconds 300 --platforms   # with Telegram, Discord and Slack on

Starts ``tradectl run`` in a fresh directory with nothing configured (console chat, paper venue, SQLite under
./data), types ``/status`` on its console the moment it is started, and times the reply. While it runs,
``tradectl health`` is run ``--probes`` times as Docker's HEALTHCHECK would (elapsed, CPU and peak RSS of each
probe, from ``wait4``), and once with ``-X importtime`` for its import time. The service's RSS is sampled every
second; it is stopped with SIGTERM after ``--seconds``.

``--platforms`` also enables all three chat adapters and the alert senders, against the fake Telegram, Discord
and Slack servers of tests/fakes/ (run in this process, on loopback): the figures count once all three are
connected (Telegram polling, the Discord gateway session and the Slack socket open), and the service's RSS is
what is measured, not this process's.

``--migrated`` runs ``tradectl db upgrade`` first, so the figures are those of a restart (a first start also
migrates the new database, which loads Alembic). ``--runtime-deps`` hides from the service every installed
distribution that requirements.lock does not install (the development venv has pandas, which TA-Lib imports when
it is present, and tornado, which tenacity and python-telegram-bot import when present): what the Docker image,
built from requirements.lock, would hold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRADECTL = [sys.executable, "-m", "core.app.cli"]
GOALS = "goals: run peak RSS <= 120 MB after 5 min (<= 150 MB with the three platforms), first /status reply <= 2 s"


def _env(hidden: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECTL_") and k != "DATABASE_URL"}
    path = str(ROOT) if hidden is None else os.pathsep.join((hidden, str(ROOT)))
    env.update({"TRADECTL_CHAT__CONSOLE": "on", "PYTHONPATH": path})
    return env


_KEEP = {"tradectl", "pip", "setuptools", "wheel"}  # the project itself, and what site's .pth hooks load


def _hide_dev_only(directory: Path) -> list[str]:
    """Write a stub for each top-level module whose distributions requirements.lock does not install: importing
    it raises ModuleNotFoundError, as on an image built from the lock. Returns the distributions hidden."""
    import importlib.metadata as md
    import re

    def norm(name: str) -> str:  # PEP 503: discord.py, discord_py and discord-py are one distribution
        return re.sub(r"[-_.]+", "-", name).lower()

    locked = {norm(m.group(1))
              for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==", (ROOT / "requirements.lock").read_text(), re.M)}
    hidden: set[str] = set()
    for module, dists in md.packages_distributions().items():
        names = {norm(d) for d in dists}
        if not module.isidentifier() or names & (locked | _KEEP):
            continue
        message = f"No module named {module!r} (not in requirements.lock)"
        (directory / f"{module}.py").write_text(f"raise ModuleNotFoundError({message!r}, name={module!r})\n")
        hidden |= names
    return sorted(hidden)


class _Platforms:
    """The fake Telegram, Discord and Slack servers on an event loop of their own (a thread), and the
    settings that point a service at them."""

    def __init__(self) -> None:
        sys.path.insert(0, str(ROOT))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fakes", daemon=True)
        self._stack = contextlib.AsyncExitStack()

    def _run(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)  # type: ignore[arg-type]

    def __enter__(self) -> _Platforms:
        from tests.fakes.discord import FakeDiscord
        from tests.fakes.slack import FakeSlack
        from tests.fakes.telegram import FakeTelegram

        self._thread.start()
        self.telegram = self._run(self._stack.enter_async_context(FakeTelegram()))
        self.discord = self._run(self._stack.enter_async_context(FakeDiscord()))
        self.slack = self._run(self._stack.enter_async_context(FakeSlack(post_rate_per_s=50, post_burst=50)))
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self._stack.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def connected(self) -> bool:
        t, d, s = self.telegram, self.discord, self.slack
        return bool(t.polls) and len(d.sessions) >= 1 and len(s.sockets) >= 1  # type: ignore[attr-defined]

    def env(self) -> dict[str, str]:
        from tests.fakes.slack import TEAM

        t, d, s = self.telegram, self.discord, self.slack
        guild, channel = "613425648685547541", "381870553235193857"
        return {
            "TRADECTL_CHAT__ADMINS": json.dumps({"telegram": ["1"], "discord": ["80351110224678912"],
                                                 "slack": ["U0ALICE001"]}),
            "TRADECTL_CHAT__ALLOWED_CHATS": json.dumps({"telegram": ["-100"], "discord": [channel],
                                                        "slack": ["C0OPS00001"]}),
            "TRADECTL_TELEGRAM__ENABLED": "true",
            "TRADECTL_TELEGRAM__TOKEN": t.token,  # type: ignore[attr-defined]
            "TRADECTL_TELEGRAM__BASE_URL": t.base_url,  # type: ignore[attr-defined]
            "TRADECTL_DISCORD__ENABLED": "true",
            "TRADECTL_DISCORD__TOKEN": d.token,  # type: ignore[attr-defined]
            "TRADECTL_DISCORD__GUILDS": json.dumps([guild]),
            "TRADECTL_DISCORD__API_BASE": d.api_base,  # type: ignore[attr-defined]
            "TRADECTL_DISCORD__GATEWAY_URL": d.gateway_url,  # type: ignore[attr-defined]
            "TRADECTL_SLACK__ENABLED": "true",
            "TRADECTL_SLACK__BOT_TOKEN": s.bot_token,  # type: ignore[attr-defined]
            "TRADECTL_SLACK__APP_TOKEN": s.app_token,  # type: ignore[attr-defined]
            "TRADECTL_SLACK__WORKSPACES": json.dumps([TEAM]),
            "TRADECTL_SLACK__API_BASE": s.api_base,  # type: ignore[attr-defined]
            "TRADECTL_NOTIFY__DESTINATIONS": json.dumps([
                {"name": "tg", "platform": "telegram", "target": "-100"},
                {"name": "ops", "platform": "discord", "target": "381870553235193000"},
                {"name": "team", "platform": "slack", "target": "C0ALERTS01"}]),
        }


def _probe(cwd: str, env: dict[str, str]) -> tuple[float, float, float, int]:
    """One ``tradectl health``: elapsed s, CPU s (user + system), peak RSS MiB, exit code."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([*TRADECTL, "health"], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def _import_time(cwd: str, env: dict[str, str]) -> float:
    """Seconds spent importing in one ``tradectl health`` (the top-level entries of ``-X importtime``)."""
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "core.app.cli", "health"], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=60)
    total = 0
    for line in res.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[2].startswith(" ") \
                and not parts[2].startswith("  ") and parts[1].strip().isdigit():
            total += int(parts[1])
    return total / 1e6


def run(seconds: float, probes: int, platforms: bool, migrated: bool, runtime_deps: bool) -> None:
    with _Platforms() if platforms else contextlib.nullcontext() as fakes, tempfile.TemporaryDirectory() as stubs:
        hidden = _hide_dev_only(Path(stubs)) if runtime_deps else []
        if hidden:
            print(f"hidden from the service (not in requirements.lock): {len(hidden)} distributions, e.g. "
                  f"{', '.join(d for d in hidden if d in ('pandas', 'tornado', 'click', 'pytest'))}")
        _run(seconds, probes, fakes, migrated, stubs if runtime_deps else None)


def _run(seconds: float, probes: int, fakes: _Platforms | None, migrated: bool, hidden: str | None) -> None:
    import psutil

    env = _env(hidden)
    if fakes is not None:
        env.update(fakes.env())
    connected_at: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        if migrated:
            subprocess.run([*TRADECTL, "db", "upgrade"], cwd=tmp, env=env, check=True, capture_output=True)
        replied = threading.Event()
        t0 = time.perf_counter()
        proc = subprocess.Popen([*TRADECTL, "run"], cwd=tmp, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("/status\n")  # buffered in the pipe until the console reads it
        proc.stdin.flush()
        first_reply: list[float] = []

        out = proc.stdout

        def read() -> None:
            for line in out:
                if not first_reply and "equity" in line:  # the /status reply's first line
                    first_reply.append(time.perf_counter() - t0)
                    replied.set()

        reader = threading.Thread(target=read, name="console-out", daemon=True)
        reader.start()
        ps = psutil.Process(proc.pid)
        peak = last = 0
        figures: list[tuple[float, float, float, int]] = []
        imports = 0.0
        end = t0 + seconds
        try:
            while time.perf_counter() < end and proc.poll() is None:
                last = ps.memory_info().rss
                peak = max(peak, last)
                if fakes is not None and not connected_at and fakes.connected():
                    connected_at.append(time.perf_counter() - t0)
                if replied.is_set() and not figures:  # the service is up and beating: probe it now
                    figures = [_probe(tmp, env) for _ in range(probes)]
                    imports = _import_time(tmp, env)
                time.sleep(1)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
            proc.stdin.close()
    if not first_reply:
        print(f"no /status reply in {seconds:.0f}s (exit code {code})")
        sys.exit(1)
    what = "embedded default" if fakes is None else "embedded default + Telegram, Discord, Slack (fakes)"
    what += (", restart on a migrated database" if migrated else ", first start") + (
        ", runtime dependencies only" if hidden else ", development venv")
    print(f"tradectl run ({what}), {seconds:.0f}s: start -> first /status reply {first_reply[0]:.2f}s; "
          f"peak RSS {peak / 2**20:.1f} MiB, last {last / 2**20:.1f} MiB; exit code after SIGTERM {code}")
    if fakes is not None:
        print(f"all three platforms connected after {connected_at[0]:.2f}s" if connected_at
              else "the three platforms did not all connect")
    if figures:
        elapsed, cpu, rss, codes = zip(*figures, strict=True)
        print(f"tradectl health x{len(figures)} (service running): elapsed median {statistics.median(elapsed):.2f}s, "
              f"CPU median {statistics.median(cpu):.2f}s, peak RSS max {max(rss):.1f} MiB, import time "
              f"{imports:.2f}s, exit codes {sorted(set(codes))}")
    print(GOALS)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60, help="how long the service runs (default 60)")
    ap.add_argument("--probes", type=int, default=5, help="tradectl health runs to time (default 5)")
    ap.add_argument("--platforms", action="store_true",
                    help="enable Telegram, Discord and Slack against the fakes in tests/fakes/")
    ap.add_argument("--migrated", action="store_true", help="run `tradectl db upgrade` first (a restart's figures)")
    ap.add_argument("--runtime-deps", action="store_true",
                    help="hide the distributions requirements.lock does not install, as the Docker image lacks them")
    a = ap.parse_args()
    run(a.seconds, a.probes, a.platforms, a.migrated, a.runtime_deps)
