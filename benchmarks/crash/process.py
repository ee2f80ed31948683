"""The service as a process: `tradectl run` with its console on a stdin pipe, the environment it
gets, and a webhook on loopback that counts the alerts it delivers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NONCE = re.compile(r"yes ([A-Za-z0-9_-]{16})")  # the console's prompt: (type the number, or: yes <nonce> / no ...)


class Service:
    """One `tradectl run` process: console on a stdin pipe, output in files under ``work``."""

    def __init__(self, work: Path, env: dict[str, str], index: int) -> None:
        self.work, self.env, self.index = work, env, index
        self.out_path = work / f"run{index:03d}.out"
        self.err_path = work / f"run{index:03d}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:  # the child keeps its own copies
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "core.app.cli", "run", cwd=self.work, env=self.env, stdin=asyncio.subprocess.PIPE,
                stdout=out, stderr=err)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def output(self) -> str:
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""

    def log(self) -> str:
        return self.err_path.read_text(errors="replace") if self.err_path.exists() else ""

    async def send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()

    async def wait_output(self, pattern: re.Pattern[str], after: int, timeout: float) -> re.Match[str] | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.alive:
            m = pattern.search(self.output(), after)
            if m:
                return m
            await asyncio.sleep(0.01)
        return None

    def signal(self, sig: signal.Signals) -> float:
        assert self.proc is not None
        try:
            self.proc.send_signal(sig)
        except ProcessLookupError:
            pass  # it had exited already; the caller finds out from the exit code
        return time.monotonic()

    async def wait(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return None


class AlertSink:
    """Slack-style incoming webhook on loopback; keeps every message body it accepted."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, str]] = []  # (monotonic arrival time, body)
        self._runner: Any = None
        self.url = ""

    async def __aenter__(self) -> AlertSink:
        from aiohttp import web

        async def hook(request: web.Request) -> web.Response:
            body = await request.json()
            text = str(body.get("text", "")) + "\n" + json.dumps(body.get("blocks", ""))
            self.messages.append((time.monotonic(), text))
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hooks/alerts", hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hooks/alerts"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def service_env(url: str, speed: float, hook: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECTL_") and k != "DATABASE_URL"}
    env.update({
        "PYTHONPATH": str(ROOT), "DATABASE_URL": url, "TRADECTL_CHAT__CONSOLE": "on",
        "TRADECTL_REPLAY__SPEED": str(speed), "TRADECTL_LOGGING__FORMAT": "text",
    })
    if hook:
        env["TRADECTL_NOTIFY__DESTINATIONS"] = json.dumps([{"name": "hook", "platform": "slack", "target": hook}])
        env["TRADECTL_NOTIFY__DIGEST_AFTER"] = "1000"  # one message per alert: deliveries can be counted
        env["TRADECTL_NOTIFY__PER_DESTINATION_RATE"] = "50"
    return env


async def upgrade(env: dict[str, str], work: Path) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "core.app.cli", "db", "upgrade", cwd=work,
                                                env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"tradectl db upgrade failed: {out.decode(errors='replace')[-2000:]}")


async def poll(check: Callable[[], Awaitable[bool]], timeout: float, step: float) -> bool:
    """Ask ``check`` every ``step`` seconds until it says yes or ``timeout`` passes (the service is another
    process: its database is all there is to watch)."""
    end = time.monotonic() + timeout
    while True:
        if await check():
            return True
        if time.monotonic() >= end:
            return False
        await asyncio.sleep(step)


async def stop(svc: Service) -> None:
    """SIGKILL it if it still runs (a round that could not go on)."""
    if svc.alive:
        svc.signal(signal.SIGKILL)
        await svc.wait(30)
