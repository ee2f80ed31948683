"""What both fake venues share: an aiohttp server on an ephemeral loopback port, fault
injection per endpoint, a call log, and WebSocket connection tracking so a test can drop them.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

FAULT_KINDS = frozenset({
    "http429",              # HTTP 429 with Retry-After
    "http500",              # HTTP 500 / 503 with an HTML body
    "rate_limit",           # the venue's own rate-limit error in a 200 reply
    "timeout",              # no answer before the client gives up; the request is NOT processed
    "accept_then_timeout",  # the request IS processed, then the answer never comes in time
    "malformed",            # 200 with a body that is not JSON
    "error",                # the venue's error shape with the given text
})


@dataclass
class Fault:
    kind: str
    times: int = 1
    delay_s: float = 2.0
    error: str = ""
    retry_after: float = 0.05


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(payload: Any) -> str:
    return json.dumps(payload, default=jsonable)


class FakeServer:
    """Base class. Subclasses add routes in ``_routes`` and use :meth:`fault_for` in handlers."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.sockets: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self.ws_connections: dict[str, int] = defaultdict(int)
        self.ws_received: list[tuple[str, dict[str, Any]]] = []
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0
        self._routes()

    def _routes(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeServer:
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.2, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.drop_websockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- faults -----------------------------------------------------------------------------------

    def inject(self, endpoint: str, kind: str, *, times: int = 1, delay_s: float = 2.0, error: str = "",
               retry_after: float = 0.05) -> None:
        """The next ``times`` calls of ``endpoint`` (``"*"`` = any) misbehave as ``kind``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULT_KINDS)}")
        self.faults[endpoint].append(Fault(kind, times, delay_s, error, retry_after))

    def fault_for(self, endpoint: str) -> Fault | None:
        for key in (endpoint, "*"):
            queue = self.faults.get(key)
            if queue:
                fault = queue[0]
                fault.times -= 1
                if fault.times <= 0:
                    queue.pop(0)
                return fault
        return None

    def count(self, endpoint: str) -> int:
        return sum(1 for name, _ in self.calls if name == endpoint)

    # -- websockets ------------------------------------------------------------------------------------

    async def serve_websocket(self, request: web.Request, kind: str,
                              on_message: Callable[[web.WebSocketResponse, dict[str, Any]], Awaitable[None]],
                              on_open: Callable[[web.WebSocketResponse], Awaitable[None]] | None = None,
                              ) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets[kind].add(ws)
        self.ws_connections[kind] += 1
        try:
            if on_open is not None:
                await on_open(ws)
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    payload = json.loads(msg.data)
                except ValueError:
                    continue
                self.ws_received.append((kind, payload))
                await on_message(ws, payload)
        finally:
            self.sockets[kind].discard(ws)
        return ws

    async def send(self, ws: web.WebSocketResponse, payload: Any) -> None:
        if not ws.closed:
            try:
                await ws.send_str(payload if isinstance(payload, str) else dumps(payload))
            except (ConnectionError, RuntimeError):
                pass

    async def broadcast(self, kind: str, payload: Any) -> None:
        for ws in list(self.sockets[kind]):
            await self.send(ws, payload)

    async def drop_websockets(self, kind: str | None = None) -> None:
        """Close connections abruptly (going-away close frame), as a venue restart would."""
        kinds = [kind] if kind else list(self.sockets)
        for k in kinds:
            for ws in list(self.sockets[k]):
                await ws.close(code=1001, message=b"dropped by test")

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
