"""What the dispatcher hands a platform: one alert message (or digest) for one target.

Each platform adapter provides a :class:`Sender`. It raises :class:`DeliveryError` — with
``retry_after`` when the platform said to slow down, ``retryable=False`` when retrying cannot help —
and nothing else. :class:`WebhookSender` covers Discord and Slack incoming webhooks.

An alert's lines carry user text (a ``/pause`` reason becomes ``trading running -> paused by ...:
<reason>``), so every sender builds its text with :func:`alert_text` and the escaper of its format
(:mod:`bot.neutral`), and turns off what would make text live: Discord messages carry
``allowed_mentions`` that parse nothing and suppress link embeds (an embed alert's content line has
its addresses escaped instead: :func:`discord_content`); Slack messages go without mrkdwn,
``link_names`` or unfurling. Escaping lengthens text, so the limit is applied after it.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from bot.neutral import ELLIPSIS, clean, cut, discord_markdown, slack_mrkdwn, telegram_html
from bot.notify.formats import MARK, Alert
from exchanges.errors import TradectlError
from exchanges.retry import parse_retry_after, retry_after_seconds

if TYPE_CHECKING:
    import httpx  # imported where a webhook is sent: the embedded default sends none (a Pi pays for each module)


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """One message to send: ``lines`` is its plain text (for a digest, one line per alert); ``alerts``
    (when given) is the same content structured, which senders render natively (see
    :func:`telegram_html_text`, :func:`discord_embed`, :func:`slack_blocks`)."""

    kind: str
    severity: str
    lines: tuple[str, ...]
    silent: bool
    digest: bool = False
    image: bytes | None = None
    alerts: tuple[Alert, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class DeliveryError(TradectlError):
    """An alert the platform did not take. ``retryable`` False: sending it again cannot help (a refused
    token, an unknown channel) — the outbox still tries a few times, then marks the row failed;
    ``retry_after``: the platform asked us to wait that long first."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.retryable = retryable


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
        bullet = "" if message.alerts else "• "  # structured digest lines carry their own severity mark
        return f"{head}{_digest_heading(message, len(lines))}:\n" + "\n".join(f"{bullet}{line}" for line in lines)
    return head + "\n".join(lines)


def _digest_heading(message: AlertMessage, count: int) -> str:
    """``25 alerts`` and, for structured lines (which show times without a zone), the zone: ``25 alerts, CEST``."""
    zones = sorted({a.zone for a in message.alerts if a.zone})
    return f"{count} alerts" + (f", {'/'.join(zones)}" if zones else "")


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


# -- native renderings of structured alerts --------------------------------------------------------

# Discord embed colours per severity: blue, amber, red, dark red.
EMBED_COLOUR = {"info": 0x3498DB, "warning": 0xF39C12, "error": 0xE74C3C, "critical": 0x992D22}
# Discord's embed limits: title, description, field name and value, fields, all text together.
EMBED_TITLE, EMBED_DESCRIPTION, FIELD_NAME, FIELD_VALUE, MAX_FIELDS, EMBED_TOTAL = 256, 4096, 256, 1024, 25, 6000
# Slack's block limits: header text, section text, section fields (count and each).
SLACK_HEADER, SLACK_SECTION, SLACK_FIELDS, SLACK_FIELD = 150, 3000, 10, 2000


def _body(message: AlertMessage) -> AlertMessage:
    """The part of a message below its title: the lines after an alert's title, or a digest's lines."""
    if message.digest:  # the lines alone: the heading is the title
        return replace(message, digest=False, severity="info")
    alert = message.alerts[0]
    return replace(message, lines=tuple(alert.lines), severity="info")  # no icon: the title carries it


def _title(message: AlertMessage) -> str:
    if message.digest:
        return f"{_ICON.get(message.severity, '')}{_digest_heading(message, len(message.alerts))}"
    alert = message.alerts[0]
    return f"{_ICON.get(alert.severity, '')}{alert.title}"


def telegram_html_text(message: AlertMessage, limit: int, *, measure: Callable[[str], int] = len) -> str:
    """A structured alert as Telegram HTML: the title in bold, its lines and fields below, every piece
    of text escaped (:func:`bot.neutral.telegram_html`); at most ``limit`` as ``measure`` counts."""
    title = cut(_title(message), 200, telegram_html, measure=measure)
    if message.digest:
        body = "\n".join(telegram_html(line) for line in message.lines)
    else:
        alert = message.alerts[0]
        parts = [telegram_html(line) for line in alert.lines]
        parts += [f"<i>{telegram_html(k)}</i>: {telegram_html(v)}" for k, v in alert.fields]
        body = "\n".join(parts)
    text = f"<b>{title}</b>" + (f"\n{body}" if body else "")
    if measure(text) <= limit:
        return text
    # too long: the plain-text fitting keeps every line, each shortened evenly
    room = limit - measure(f"<b>{title}</b>\n")
    lines = message.lines if message.digest else message.alerts[0].text_lines()[1:]
    fitted = alert_text(replace(message, lines=tuple(lines), severity="info", digest=False), max(room, 1),
                        telegram_html, measure=measure)
    return f"<b>{title}</b>\n{fitted}"


def discord_embed(message: AlertMessage) -> dict[str, Any]:
    """A structured alert as one Discord embed coloured by severity; text escaped as markdown."""
    embed: dict[str, Any] = {"title": cut(_title(message), EMBED_TITLE, discord_markdown),
                             "color": EMBED_COLOUR.get(message.severity, EMBED_COLOUR["info"])}
    body = _body(message)
    if body.lines:
        embed["description"] = alert_text(body, EMBED_DESCRIPTION, discord_markdown)
    if not message.digest:
        alert = message.alerts[0]
        fields = [{"name": cut(k, FIELD_NAME, discord_markdown),
                   "value": cut(v, FIELD_VALUE, discord_markdown) or discord_markdown("-"),
                   "inline": True} for k, v in alert.fields[:MAX_FIELDS]]
        if fields:
            embed["fields"] = fields
        if alert.ts is not None:
            embed["timestamp"] = alert.ts.isoformat()  # each reader's client shows it in their own time
    total = len(embed["title"]) + len(embed.get("description", "")) + sum(
        len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
    if total > EMBED_TOTAL and "description" in embed:
        embed["description"] = alert_text(body, max(1, EMBED_DESCRIPTION - (total - EMBED_TOTAL)), discord_markdown)
    return embed


PUSH_LINE = 200  # a phone's notification shows a line or two; the embed below has the rest


def discord_content(message: AlertMessage) -> str:
    """The plain line beside a structured alert's embed: a phone's push notification shows a
    message's content, not its embed, so without it the notification says nothing. Severity mark and
    headline (a digest: its count and its first alert), on one line, escaped like all alert text."""
    first = message.alerts[0]
    mark = MARK.get(message.severity if message.digest else first.severity, MARK["info"])
    head = f"{len(message.alerts)} alerts: " if message.digest else ""
    line = " ".join(f"{head}{first.headline()}".split())
    return _NO_UNFURL.sub(r"\1\\:", cut(line if line.startswith(mark) else f"{mark} {line}", PUSH_LINE,
                                        discord_markdown))


# An address in a message's content gets a preview card, which the embed's message must not suppress
# (the flag would hide the embed too): an escaped colon keeps it text, shown as typed.
_NO_UNFURL = re.compile(r"\b(https?):(?=//)", re.IGNORECASE)


def slack_blocks(message: AlertMessage) -> list[dict[str, Any]]:
    """A structured alert as Slack blocks: a header, the lines, the fields and a context line with the
    severity and time. Text objects are ``verbatim`` and escaped (:func:`bot.neutral.slack_mrkdwn`)."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {
        "type": "plain_text", "text": cut(_title(message), SLACK_HEADER, clean), "emoji": True}}]
    body = _body(message)
    if body.lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "verbatim": True,
                                                    "text": alert_text(body, SLACK_SECTION, slack_mrkdwn)}})
    if not message.digest:
        alert = message.alerts[0]
        fields = [{"type": "mrkdwn", "verbatim": True,
                   "text": f"*{slack_mrkdwn(k)}*\n{cut(v, SLACK_FIELD - len(k) - 4, slack_mrkdwn) or '-'}"}
                  for k, v in alert.fields[:SLACK_FIELDS]]
        if fields:
            blocks.append({"type": "section", "fields": fields})
        context = " · ".join(x for x in (alert.severity, alert.when) if x)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "verbatim": True,
                                                        "text": slack_mrkdwn(context)}]})
    return blocks


class WebhookSender:
    """Posts to an incoming-webhook URL (Discord: ``content``; Slack: ``text``).

    The target is the webhook URL itself (a secret: it is never logged). Without a ``client``, one is
    made for the first webhook sent (a Slack sender that posts to channel ids never needs it), with the
    shared ``tls`` context when given.
    """

    def __init__(self, platform: str, client: httpx.AsyncClient | None = None, timeout: float = 10.0,
                 tls: ssl.SSLContext | None = None) -> None:
        self.platform = platform
        self.max_chars = 2000 if platform == "discord" else 3000
        self._client = client
        self._timeout = timeout
        self._tls = tls

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(timeout=self._timeout, verify=self._tls if self._tls is not None else True)
        return self._client

    async def send(self, target: str, message: AlertMessage) -> None:
        body: dict[str, object]
        if self.platform == "discord" and message.alerts:
            body = {"content": discord_content(message), "embeds": [discord_embed(message)],
                    "allowed_mentions": NO_MENTIONS,
                    "flags": SUPPRESS_NOTIFICATIONS if message.silent else 0}
        elif self.platform == "discord":
            body = {"content": alert_text(message, self.max_chars, discord_markdown), "allowed_mentions": NO_MENTIONS,
                    "flags": SUPPRESS_EMBEDS | (SUPPRESS_NOTIFICATIONS if message.silent else 0)}
        else:
            body = {"text": alert_text(message, self.max_chars, slack_mrkdwn), **SLACK_INERT}
            if message.alerts:
                body["blocks"] = slack_blocks(message)
        import httpx

        try:
            resp = await self._http().post(target, json=body)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.platform} webhook unreachable: {type(exc).__name__}") from exc
        if resp.status_code == 429:
            raise DeliveryError(f"{self.platform} rate limited", retry_after=retry_after(resp.headers, json_body(resp)))
        if resp.status_code >= 500:
            raise DeliveryError(f"{self.platform} webhook answered {resp.status_code}")
        if resp.status_code >= 400:
            raise DeliveryError(f"{self.platform} webhook refused the message ({resp.status_code})", retryable=False)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def retry_after(headers: Mapping[str, object], body: object = None, *, default: float = 1.0) -> float:
    """How long a platform's "slow down" answer asks us to wait, read the same way for every sender.

    A JSON body's ``retry_after`` first (Discord's, to the millisecond), then the ``Retry-After`` header
    (seconds or an HTTP date, :func:`exchanges.retry.retry_after_seconds`), then Discord's
    ``X-RateLimit-Reset-After``; ``default`` when none of them is readable. Never negative."""
    if isinstance(body, Mapping):
        seconds = parse_retry_after(str(body.get("retry_after", "")))
        if seconds is not None:
            return seconds
    seconds = retry_after_seconds(headers, "Retry-After", "X-RateLimit-Reset-After")
    return default if seconds is None else seconds


def json_body(resp: httpx.Response) -> object:
    """The response's JSON document, or None when it has none (a proxy's HTML page, an empty body)."""
    try:
        return resp.json()
    except ValueError:
        return None
