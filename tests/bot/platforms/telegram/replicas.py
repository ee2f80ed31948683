"""Service replicas as real processes (``tradectl run``) on one PostgreSQL and one bot token.

Used by the replica tests and by ``benchmarks/bench_failover.py``. Replicas are forked from
:mod:`tests.bot.platforms.telegram.launcher`, which has the service imported already (see there).
Every replica gets the same token and database; its Bot API base URL carries its name as a tag
(``/r0/bot<token>``), which the fake Telegram server records, so the fake knows which process made each
``getUpdates``. Nothing in the service knows about tags: to it this is just the ``telegram.base_url`` setting.

Commands are sent into one allowlisted group, so every reply names the command it answers
(``reply_to``) and a command answered twice or never shows up directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[4]
ADMIN = 1001
GROUP = -100777
FAST_LEADER = {"ttl_s": 3.0, "renew_s": 1.0, "step_down_s": 2.0, "follower_poll_s": 0.25}


@dataclass
class Replica:
    name: str
    pid: int
    log: Path
    returncode: int | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def alive(self) -> bool:
        return self.returncode is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Launcher:
    """The forking launcher as a child of the test process (see :mod:`tests.bot.platforms.telegram.launcher`)."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECTL_")}
        env["PYTHONPATH"] = str(ROOT)
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.bot.platforms.telegram.launcher"], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        self._buffer = b""
        self.exits: dict[int, int] = {}
        first = json.loads(self.proc.stdout.readline())
        assert "ready" in first, first
        os.set_blocking(self.proc.stdout.fileno(), False)

    def _lines(self) -> list[dict[str, object]]:
        assert self.proc.stdout is not None
        try:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
        except BlockingIOError:
            chunk = b""
        self._buffer += chunk
        lines = []
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            lines.append(json.loads(line))
        for msg in lines:
            if "exited" in msg:
                self.exits[int(msg["exited"])] = int(msg["code"])  # type: ignore[call-overload]
        return lines

    def start(self, name: str, cwd: Path, log: Path, env: dict[str, str]) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"name": name, "cwd": str(cwd), "log": str(log),
                                           "env": env}) + "\n").encode())
        self.proc.stdin.flush()
        end = time.monotonic() + 30
        while time.monotonic() < end:
            for msg in self._lines():
                if msg.get("started") == name:
                    return int(msg["pid"])  # type: ignore[call-overload]
            time.sleep(0.001)
        raise AssertionError(f"the launcher did not start {name}")

    def poll(self) -> dict[int, int]:
        self._lines()
        return self.exits

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(30)


def small_candles(workdir: Path, rows: int = 100) -> Path:
    """The first ``rows`` bundled candles. Replicas are about chat and leadership here, not trading:
    a short replay is quick to load on takeover (all 20,000 candles hold the event loop for a second
    or more on a busy machine) and is over within seconds, so a stop seldom meets the engine in the
    middle of a candle (see the engine's own tests for that)."""
    bundled = ROOT / "exchanges" / "data" / "coinbase_BTC-USD_1h.csv"
    path = workdir / "candles.csv"
    with bundled.open(encoding="utf-8") as src:
        path.write_text("".join(line for _, line in zip(range(rows + 1), src, strict=False)), encoding="utf-8")
    return path


def replica_env(fake: FakeTelegram, db_url: str, name: str, leader: dict[str, float],
                candles: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECTL_") and k != "DATABASE_URL"}
    env.update({
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": db_url,
        "TRADECTL_CHAT__CONSOLE": "off",
        "TRADECTL_CHAT__ADMINS": json.dumps({"telegram": [str(ADMIN)]}),
        "TRADECTL_CHAT__ALLOWED_CHATS": json.dumps({"telegram": [str(GROUP)]}),
        "TRADECTL_CHAT__RATE_LIMIT_PER_MINUTE": "100000",
        "TRADECTL_TELEGRAM__ENABLED": "true",
        "TRADECTL_TELEGRAM__TOKEN": fake.token,
        "TRADECTL_TELEGRAM__BASE_URL": fake.tagged_base_url(name),
        "TRADECTL_TELEGRAM__POLL_TIMEOUT_S": "10",
        "TRADECTL_TELEGRAM__CHAT_RATE_PER_S": "30",
        "TRADECTL_TELEGRAM__CHAT_BURST": "20",
        "TRADECTL_TELEGRAM__GROUP_RATE_PER_MIN": "600",
        "TRADECTL_SCHEDULE__ENABLED": "false",
        "TRADECTL_REPLAY__SPEED": "20",
        "TRADECTL_SERVICE__HEARTBEAT_INTERVAL_S": "0.5",
        "TRADECTL_LOGGING__FORMAT": "text",
    })
    env.update({f"TRADECTL_LEADER__{k.upper()}": str(v) for k, v in leader.items()})
    if candles is not None:
        env["TRADECTL_REPLAY__CSV"] = str(candles)
    return env


class ReplicaSet:
    """Starts, signals and watches replicas; ``fake`` must be running in the caller's event loop."""

    def __init__(self, fake: FakeTelegram, db_url: str, workdir: Path, *,
                 leader: dict[str, float] | None = None) -> None:
        self.fake, self.db_url, self.workdir = fake, db_url, workdir
        self.leader_settings = leader or FAST_LEADER
        self.replicas: dict[str, Replica] = {}
        self._count = 0
        self.candles = small_candles(workdir)
        self.launcher = Launcher()

    @staticmethod
    def upgrade(db_url: str, workdir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECTL_")}
        env.update({"PYTHONPATH": str(ROOT), "DATABASE_URL": db_url})
        subprocess.run([sys.executable, "-m", "core.app.cli", "db", "upgrade"], env=env, cwd=workdir, check=True,
                       capture_output=True, timeout=120)

    def spawn(self) -> Replica:
        name = f"r{self._count}"
        self._count += 1
        home = self.workdir / name
        home.mkdir(parents=True, exist_ok=True)
        log = home / "run.log"
        env = replica_env(self.fake, self.db_url, name, self.leader_settings, self.candles)
        replica = Replica(name, self.launcher.start(name, home, log, env), log)
        self.replicas[name] = replica
        return replica

    def _refresh(self) -> None:
        exits = self.launcher.poll()
        for replica in self.replicas.values():
            if replica.returncode is None and replica.pid in exits:
                replica.returncode = exits[replica.pid]

    def alive(self) -> list[Replica]:
        self._refresh()
        return [r for r in self.replicas.values() if r.alive]

    def poller(self) -> str | None:
        """The replica holding a getUpdates at the fake right now (None if nobody polls)."""
        names = self.fake.pollers()
        return names[-1] if names else None

    async def wait_poller(self, *, other_than: str | None = None, since: float = 0.0,
                          timeout: float = 30.0) -> tuple[str, float]:
        """The first replica other than ``other_than`` to call getUpdates after ``since`` (monotonic
        time), and when; as the fake saw it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for poll in self.fake.polls:
                if poll.started >= since and poll.tag != other_than and poll.tag in self.replicas:
                    return poll.tag, poll.started
            await asyncio.sleep(0.01)
        raise AssertionError(f"no replica took over polling within {timeout}s; logs:\n{self.tails()}")

    async def wait_ready(self, replica: Replica, timeout: float = 40.0) -> None:
        """Until the replica has written its first heartbeat-era log line (it is up, as leader or follower)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if "running (group" in replica.text():
                return
            self._refresh()
            if not replica.alive:
                raise AssertionError(f"{replica.name} exited:\n{replica.text()[-3000:]}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"{replica.name} did not start:\n{replica.text()[-3000:]}")

    def signal(self, name: str, sig: signal.Signals) -> float:
        os.kill(self.replicas[name].pid, sig)
        return time.monotonic()

    async def wait_exit(self, name: str, timeout: float = 30.0) -> int:
        replica = self.replicas[name]
        end = time.monotonic() + timeout
        while True:
            self._refresh()
            if replica.returncode is not None:
                return replica.returncode
            if time.monotonic() > end:
                raise AssertionError(f"{name} did not exit:\n{replica.text()[-3000:]}")
            await asyncio.sleep(0.05)

    async def stop_all(self) -> None:
        for replica in self.alive():
            os.kill(replica.pid, signal.SIGTERM)
        for replica in list(self.replicas.values()):
            try:
                await self.wait_exit(replica.name, 30)
            except AssertionError:
                os.kill(replica.pid, signal.SIGKILL)
        self.launcher.close()

    def tails(self, chars: int = 1500) -> str:
        return "\n".join(f"--- {r.name} ---\n{r.text()[-chars:]}" for r in self.replicas.values())


@dataclass
class Traffic:
    """Commands sent into the group while handovers happen, and what came back for each."""

    fake: FakeTelegram
    sent: dict[int, str] = field(default_factory=dict)  # command message id -> text

    def send(self, text: str) -> int:
        update_id = self.fake.message(ADMIN, text, chat_id=GROUP, kind="group")
        message_id = int(self.fake.history[update_id]["message"]["message_id"])
        self.sent[message_id] = text
        return message_id

    def replies(self) -> dict[int, int]:
        counts = {message_id: 0 for message_id in self.sent}
        for m in self.fake.sent_to(GROUP):
            if m.reply_to in counts:
                counts[m.reply_to] += 1
        return counts

    def unanswered(self) -> list[str]:
        return [self.sent[m] for m, n in self.replies().items() if n == 0]

    def answered_twice(self) -> list[str]:
        return [self.sent[m] for m, n in self.replies().items() if n > 1]

    async def settle(self, timeout: float = 20.0) -> None:
        await self.fake.wait_for(lambda: not self.unanswered(), timeout, "a reply to every command")


def overlapping_polls(fake: FakeTelegram) -> list[tuple[str, str]]:
    """Pairs of replicas whose getUpdates calls were open at the same moment (two pollers)."""
    polls = sorted((p for p in fake.polls), key=lambda p: p.started)
    found = []
    for i, a in enumerate(polls):
        a_end = a.ended if a.ended is not None else float("inf")
        for b in polls[i + 1:]:
            if b.started >= a_end:
                break
            if b.tag != a.tag:
                found.append((a.tag, b.tag))
    return found
