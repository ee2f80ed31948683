"""An ``httpx`` transport that records each request the real client builds and answers from a
table of canned (recorded) replies: for checking request construction against recorded requests
without a network. Unlisted paths answer 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx

Reply = Any | Callable[[httpx.Request], Any]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() or "." in str(value) else int(value)
    raise TypeError(type(value).__name__)


class RecordingTransport(httpx.MockTransport):
    def __init__(self, replies: dict[str, Reply]) -> None:
        """``replies`` maps a URL path (``/0/private/AddOrder``) to a JSON-able body or a callable."""
        self.replies = dict(replies)
        self.requests: list[httpx.Request] = []
        super().__init__(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.get(request.url.path)
        if reply is None:
            return httpx.Response(404, json={"error": ["EGeneral:Unknown method"]})
        body = reply(request) if callable(reply) else reply
        if isinstance(body, httpx.Response):
            return body
        return httpx.Response(200, content=json.dumps(body, default=_default).encode(),
                              headers={"Content-Type": "application/json"})

    def sent(self, path_suffix: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith(path_suffix)]
