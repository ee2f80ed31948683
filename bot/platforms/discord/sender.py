"""Alerts to Discord channels through the REST API (``POST /channels/{id}/messages``), as the bot.

Discord's limits are dynamic and per route, so they are read from the answers rather than hard-coded:
``X-RateLimit-Remaining`` / ``X-RateLimit-Reset-After`` per bucket make the sender wait *before* a
request that would be refused, and a 429 (its JSON ``retry_after``, ``global`` flag or the
``Retry-After`` header) is handed back to the outbox dispatcher as a :class:`DeliveryError` with
``retry_after``, so nothing is dropped and the row is retried in order. Avoiding 429s matters beyond
speed: 10,000 refused requests in 10 minutes get the bot's IP banned.

A destination whose target is a URL is a Discord incoming webhook instead (no bot needed).

A structured alert is an embed coloured by its severity (a chart shown inside it), with a short plain
``content`` line (severity mark and headline) because a phone's push notification shows the content,
not the embed; other alerts are text. Alert text is neutral (:mod:`bot.neutral`): markdown, masked links
and mentions escaped; the message carries ``allowed_mentions`` that parse nothing, and link previews are
suppressed (a chart keeps its attachment).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from typing import Any

import httpx
from pydantic import SecretStr

from bot.neutral import discord_markdown
from bot.notify.senders import (
    NO_MENTIONS,
    SUPPRESS_EMBEDS,
    SUPPRESS_NOTIFICATIONS,
    AlertMessage,
    DeliveryError,
    WebhookSender,
    alert_text,
    discord_content,
    discord_embed,
    json_body,
    retry_after,
)
from core.settings import DiscordSettings, NotifySettings

log = logging.getLogger("tradectl.discord.alerts")
DEFAULT_API = "https://discord.com/api/v10"
_PERMANENT = {400, 401, 403, 404, 405, 413}
MAX_PREEMPTIVE_WAIT_S = 30.0


class DiscordSender:
    """The alert :class:`~bot.notify.senders.Sender` for Discord. Targets are channel ids (or webhook URLs)."""

    platform = "discord"
    max_chars = 2000

    def __init__(self, token: SecretStr | str | None, *, api_base: str = DEFAULT_API,
                 client: httpx.AsyncClient | None = None, timeout: float = 10.0,
                 webhook: WebhookSender | None = None, tls: ssl.SSLContext | None = None) -> None:
        self._token = token.get_secret_value() if isinstance(token, SecretStr) else token
        self._api = api_base.rstrip("/")
        # tls: the context shared with the service's other HTTPS clients (None: httpx's default)
        self._client = client or httpx.AsyncClient(timeout=timeout, verify=tls if tls is not None else True)
        self._webhook = webhook or WebhookSender("discord", self._client)
        self._bucket_of: dict[str, str] = {}  # route -> Discord's bucket hash
        self._resets: dict[str, tuple[int, float]] = {}  # bucket or route -> (remaining, reset at monotonic)
        self._global_until = 0.0
        self.requests = 0
        self.rate_limited = 0

    async def send(self, target: str, message: AlertMessage) -> None:
        if target.startswith(("https://", "http://")):
            await self._webhook.send(target, message)
            return
        if not self._token:
            raise DeliveryError("discord.token is not set: cannot post to a channel id", retryable=False)
        if not target.isdigit():
            raise DeliveryError(f"discord target {target!r} is neither a channel id nor a webhook URL", retryable=False)
        route = f"/channels/{target}/messages"
        await self._wait_for(route)
        body: dict[str, Any]
        if message.alerts:  # an embed coloured by severity, and a line for the push notification
            embed = discord_embed(message)
            if message.image:
                embed["image"] = {"url": "attachment://chart.png"}
            body = {"content": discord_content(message), "embeds": [embed], "allowed_mentions": NO_MENTIONS}
            # the content line is escaped text: no link in it to preview, and the embed is ours
            flags = SUPPRESS_NOTIFICATIONS if message.silent else 0
        else:
            body = {"content": alert_text(message, self.max_chars, discord_markdown), "allowed_mentions": NO_MENTIONS}
            flags = (SUPPRESS_NOTIFICATIONS if message.silent else 0) | (0 if message.image else SUPPRESS_EMBEDS)
        if flags:
            body["flags"] = flags
        headers = {"Authorization": f"Bot {self._token}", "User-Agent": "DiscordBot (tradectl, 0.1)"}
        try:
            self.requests += 1
            if message.image:
                body["attachments"] = [{"id": 0, "filename": "chart.png"}]
                resp = await self._client.post(self._api + route, headers=headers,
                                               data={"payload_json": json.dumps(body)},
                                               files={"files[0]": ("chart.png", message.image, "image/png")})
            else:
                resp = await self._client.post(self._api + route, headers=headers, json=body)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"discord unreachable: {type(exc).__name__}") from exc
        self._learn(route, resp)
        if resp.status_code == 429:
            self.rate_limited += 1
            raise DeliveryError("discord rate limited", retry_after=self._retry_after(resp))
        if resp.status_code >= 500:
            raise DeliveryError(f"discord answered {resp.status_code}")
        if resp.status_code in _PERMANENT:
            raise DeliveryError(f"discord refused the message ({resp.status_code}: {_reason(resp)})", retryable=False)
        if resp.status_code >= 400:
            raise DeliveryError(f"discord answered {resp.status_code}")

    async def _wait_for(self, route: str) -> None:
        """Sleep until the route's bucket has room; a long wait goes back to the dispatcher instead."""
        now = time.monotonic()
        key = self._bucket_of.get(route, route)
        remaining, reset_at = self._resets.get(key, (1, 0.0))
        wait = max(self._global_until - now, reset_at - now if remaining <= 0 else 0.0)
        if wait <= 0:
            return
        if wait > MAX_PREEMPTIVE_WAIT_S:
            raise DeliveryError("discord bucket exhausted", retry_after=wait)
        await asyncio.sleep(wait)

    def _learn(self, route: str, resp: httpx.Response) -> None:
        h = resp.headers
        bucket = h.get("X-RateLimit-Bucket")
        if bucket:
            self._bucket_of[route] = bucket
        key = self._bucket_of.get(route, route)
        try:
            remaining = int(h["X-RateLimit-Remaining"])
            reset_after = float(h["X-RateLimit-Reset-After"])
        except (KeyError, ValueError):
            return
        self._resets[key] = (remaining, time.monotonic() + reset_after)

    def _retry_after(self, resp: httpx.Response) -> float:
        """The wait a 429 names (:func:`~bot.notify.senders.retry_after`); a global one holds every route."""
        doc = json_body(resp)
        retry = retry_after(resp.headers, doc)
        is_global = resp.headers.get("X-RateLimit-Global", "").lower() == "true"
        if is_global or (isinstance(doc, dict) and bool(doc.get("global"))):
            self._global_until = time.monotonic() + retry
        return retry

    async def aclose(self) -> None:
        await self._client.aclose()


def _reason(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("message", ""))[:200]
    except Exception:  # noqa: BLE001
        return resp.text[:200]


def alert_sender(settings: DiscordSettings, notify: NotifySettings,
                 tls: ssl.SSLContext | None = None) -> DiscordSender | None:
    """The sender for the outbox when Discord alerts can be delivered: a bot token (channel ids), or
    destinations that are all webhook URLs. None leaves Discord destinations waiting, with a warning.
    ``tls``: the TLS context shared with the service's other HTTPS clients."""
    token = settings.token.get_secret_value() if settings.token else ""
    targets = [d.target for d in notify.destinations if d.platform == "discord"]
    if not token and not (targets and all(t.startswith(("https://", "http://")) for t in targets)):
        return None
    return DiscordSender(token or None, api_base=settings.api_base, timeout=settings.request_timeout_s, tls=tls)
