"""A fake incoming-webhook endpoint (Discord/Slack style) on loopback.

It enforces a per-channel rate limit the way the platforms do — a 429 with ``Retry-After`` and a
JSON ``retry_after`` when more than ``burst`` messages arrive within ``window_s`` — and can be taken
down (HTTP 503) or made to hang, so delivery code is exercised against real HTTP behaviour.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from typing import Any

from aiohttp import web


class FakeWebhook:
    def __init__(self, *, burst: int = 5, window_s: float = 5.0) -> None:
        self.burst, self.window_s = burst, window_s
        self.received: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.status_429 = 0
        self.down = False
        self.hang = False
        self._recent: dict[str, deque[float]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeWebhook:
        app = web.Application()
        app.router.add_post("/hooks/{channel}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hooks"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner:
            await self._runner.cleanup()

    def channel_url(self, channel: str) -> str:
        return f"{self.url}/{channel}"

    async def _handle(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        if self.hang:
            await asyncio.sleep(30)
        if self.down:
            return web.json_response({"message": "service unavailable"}, status=503)
        now = time.monotonic()
        recent = self._recent[channel]
        while recent and now - recent[0] > self.window_s:
            recent.popleft()
        if len(recent) >= self.burst:
            retry = self.window_s - (now - recent[0])
            self.status_429 += 1
            return web.json_response({"message": "You are being rate limited.", "retry_after": retry},
                                     status=429, headers={"Retry-After": f"{retry:.3f}"})
        recent.append(now)
        self.received[channel].append(await request.json())
        return web.Response(status=204)
