"""What the dispatcher hands a platform: one alert message (or digest) for one target.

Each platform adapter provides a :class:`Sender`. It raises :class:`DeliveryError` — with
``retry_after`` when the platform said to slow down, ``permanent`` when retrying cannot help —
and nothing else. :class:`WebhookSender` covers Discord and Slack incoming webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx


@dataclass(frozen=True, slots=True)
class AlertMessage:
    kind: str
    severity: str
    lines: tuple[str, ...]
    silent: bool
    digest: bool = False
    image: bytes | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class DeliveryError(Exception):
    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class Sender(Protocol):
    platform: str
    max_chars: int  # longest message the platform accepts; digests are cut to fit, never truncated

    async def send(self, target: str, message: AlertMessage) -> None: ...


_ICON = {"info": "", "warning": "⚠️ ", "error": "❗ ", "critical": "🛑 "}


def plain_text(message: AlertMessage) -> str:
    head = f"{_ICON.get(message.severity, '')}"
    if message.digest:
        return f"{head}{len(message.lines)} alerts:\n" + "\n".join(f"• {line}" for line in message.lines)
    return head + message.text


class WebhookSender:
    """Posts to an incoming-webhook URL (Discord: ``content``; Slack: ``text``).

    The target is the webhook URL itself (a secret: it is never logged).
    """

    def __init__(self, platform: str, client: httpx.AsyncClient | None = None, timeout: float = 10.0) -> None:
        self.platform = platform
        self.max_chars = 2000 if platform == "discord" else 3000
        self._client = client or httpx.AsyncClient(timeout=timeout)

    async def send(self, target: str, message: AlertMessage) -> None:
        text = plain_text(message)
        body: dict[str, object] = {"content": text} if self.platform == "discord" else {"text": text}
        if self.platform == "discord" and message.silent:
            body["flags"] = 4096  # SUPPRESS_NOTIFICATIONS
        try:
            resp = await self._client.post(target, json=body)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.platform} webhook unreachable: {type(exc).__name__}") from exc
        if resp.status_code == 429:
            raise DeliveryError(f"{self.platform} rate limited", retry_after=_retry_after(resp))
        if resp.status_code >= 500:
            raise DeliveryError(f"{self.platform} webhook answered {resp.status_code}")
        if resp.status_code >= 400:
            raise DeliveryError(f"{self.platform} webhook refused the message ({resp.status_code})", permanent=True)

    async def aclose(self) -> None:
        await self._client.aclose()


def _retry_after(resp: httpx.Response) -> float:
    for header in ("Retry-After", "X-RateLimit-Reset-After"):
        value = resp.headers.get(header)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                pass
    try:
        return float(resp.json().get("retry_after", 1.0))
    except Exception:  # noqa: BLE001
        return 1.0
