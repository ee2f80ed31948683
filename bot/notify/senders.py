"""What the dispatcher hands a platform: one alert message (or digest) for one target.

Each platform adapter provides a :class:`Sender`. It raises :class:`DeliveryError` — with
``retry_after`` when the platform said to slow down, ``permanent`` when retrying cannot help —
and nothing else. :class:`WebhookSender` covers Discord and Slack incoming webhooks.

An alert's lines carry user text (a ``/pause`` reason becomes ``trading running -> paused by ...:
<reason>``), so every sender builds its text with :func:`alert_text` and the escaper of its format
(:mod:`bot.neutral`), and turns off what would make text live: Discord messages carry
``allowed_mentions`` that parse nothing and suppress link embeds; Slack messages go without mrkdwn,
``link_names`` or unfurling. Escaping lengthens text, so the limit is applied after it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from bot.neutral import ELLIPSIS, clean, cut, discord_markdown, slack_mrkdwn


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


# What Discord and Slack are told about an alert's text, besides the text being escaped.
SUPPRESS_EMBEDS = 4  # Discord message flag: no link preview cards
SUPPRESS_NOTIFICATIONS = 4096  # Discord message flag: a silent message
NO_MENTIONS: dict[str, list[str]] = {"parse": []}
SLACK_INERT: dict[str, Any] = {"mrkdwn": False, "link_names": False, "unfurl_links": False, "unfurl_media": False}


def _join(message: AlertMessage, lines: Sequence[str]) -> str:
    head = _ICON.get(message.severity, "")
    if message.digest:
        return f"{head}{len(lines)} alerts:\n" + "\n".join(f"• {line}" for line in lines)
    return head + "\n".join(lines)


def plain_text(message: AlertMessage, escape: Callable[[str], str] = clean) -> str:
    """The alert as one text, each line passed through ``escape`` (no length limit: see :func:`alert_text`)."""
    return _join(message, [escape(line) for line in message.lines])


def alert_text(message: AlertMessage, limit: int, escape: Callable[[str], str] = clean, *,
               measure: Callable[[str], int] = len) -> str:
    """The alert as one text of at most ``limit`` (as ``measure`` counts) after escaping.

    The dispatcher sizes messages on the raw text; escaping can lengthen it (``<`` is ``&lt;`` on
    Slack), so when the result does not fit, the longest lines are shortened evenly — each keeps its
    start and ends with ``…`` — rather than losing a line the dispatcher will mark delivered."""
    escaped = [escape(line) for line in message.lines]
    text = _join(message, escaped)
    if not text.strip():
        return "(an alert with no text)"  # platforms refuse an empty message; this one would retry forever
    if measure(text) <= limit:
        return text
    room = limit - measure(_join(message, [""] * len(escaped)))
    lengths = [measure(line) for line in escaped]
    lo, hi = 0, max(lengths, default=0)  # the largest per-line length that lets every line fit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(n, mid) for n in lengths) <= room:
            lo = mid
        else:
            hi = mid - 1
    cap = max(lo, measure(ELLIPSIS))
    text = _join(message, [done if n <= cap else cut(raw, cap, escape, measure=measure)
                           for raw, done, n in zip(message.lines, escaped, lengths, strict=True)])
    while measure(text) > limit:  # only when even a "…" per line is too much: cut the tail
        text = text[: len(text) - max(1, measure(text) - limit) - 1] + ELLIPSIS
    return text


class WebhookSender:
    """Posts to an incoming-webhook URL (Discord: ``content``; Slack: ``text``).

    The target is the webhook URL itself (a secret: it is never logged).
    """

    def __init__(self, platform: str, client: httpx.AsyncClient | None = None, timeout: float = 10.0) -> None:
        self.platform = platform
        self.max_chars = 2000 if platform == "discord" else 3000
        self._client = client or httpx.AsyncClient(timeout=timeout)

    async def send(self, target: str, message: AlertMessage) -> None:
        body: dict[str, object]
        if self.platform == "discord":
            body = {"content": alert_text(message, self.max_chars, discord_markdown), "allowed_mentions": NO_MENTIONS,
                    "flags": SUPPRESS_EMBEDS | (SUPPRESS_NOTIFICATIONS if message.silent else 0)}
        else:
            body = {"text": alert_text(message, self.max_chars, slack_mrkdwn), **SLACK_INERT}
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
