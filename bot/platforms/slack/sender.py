"""The Slack Web API client, and alerts to Slack channels with ``chat.postMessage``.

The async client retries only connection errors by default; :func:`web_client` adds
``AsyncRateLimitErrorRetryHandler`` so a 429 waits for Slack's ``Retry-After`` and tries again. If
Slack still refuses, the alert goes back to the outbox dispatcher as a :class:`DeliveryError` with
``retry_after`` and stays pending, in order — nothing is dropped. Errors that retrying cannot fix (a
revoked token, an unknown channel, the bot not invited) are not ``retryable``.

A destination whose target is a URL is a Slack incoming webhook instead (no app needed).

A structured alert is posted as blocks (header, lines, fields, a context line with severity and time)
with the plain text as its notification. Alert text is neutral (:mod:`bot.neutral`): ``&``, ``<`` and
``>`` escaped, ``@channel``-style words broken, and the message is posted without mrkdwn, ``link_names``
or unfurling, so a reason typed in chat shows as typed and pings, links and previews nobody.

Alerts name commands as ``/rearm``; on Slack that is ``/tradectl rearm`` (:mod:`bot.platforms.slack.mentions`),
rewritten here for channel ids and webhooks alike, as replies are by the adapter.
"""

from __future__ import annotations

import logging
import ssl

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.neutral import slack_mrkdwn
from bot.notify.senders import (
    SLACK_INERT,
    AlertMessage,
    DeliveryError,
    WebhookSender,
    alert_text,
    retry_after,
    slack_blocks,
)
from bot.platforms.slack.mentions import SlashCommands, registry_names
from core.settings import NotifySettings, SlackSettings

log = logging.getLogger("tradectl.slack.alerts")
_PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed", "account_inactive",
              "token_revoked", "token_expired", "missing_scope", "no_permission", "msg_too_long", "no_text",
              "invalid_blocks", "restricted_action", "team_access_not_granted"}


def web_client(settings: SlackSettings, *, rate_limit_retries: int = 2) -> AsyncWebClient:
    """One client per app: bot token, base URL (a fake in tests), timeout, and the retry handlers."""
    token = settings.bot_token.get_secret_value() if settings.bot_token else None
    base = settings.api_base if settings.api_base.endswith("/") else settings.api_base + "/"
    return AsyncWebClient(token=token, base_url=base, timeout=int(max(1, settings.request_timeout_s)),
                          retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=1),
                                          AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries)])


class SlackSender:
    """The alert :class:`~bot.notify.senders.Sender` for Slack. Targets are channel ids (or webhook URLs).

    Slack has no "silent" message, so silent alerts are ordinary messages (Slack notifies per the
    channel's own settings). A report with a chart is uploaded as a file with the text as its comment.
    """

    platform = "slack"
    max_chars = 3000

    def __init__(self, client: AsyncWebClient | None, *, webhook: WebhookSender | None = None,
                 commands: SlashCommands | None = None) -> None:
        self._client = client
        self._commands = commands or default_commands()
        self._webhook = webhook or WebhookSender("slack")
        self.requests = 0

    async def aclose(self) -> None:
        await self._webhook.aclose()

    async def send(self, target: str, message: AlertMessage) -> None:
        message = self._commands.alert(message)
        if target.startswith(("https://", "http://")):
            await self._webhook.send(target, message)
            return
        if self._client is None or not self._client.token:
            raise DeliveryError("slack.bot_token is not set: cannot post to a channel id", retryable=False)
        text = alert_text(message, self.max_chars, slack_mrkdwn)
        try:
            self.requests += 1
            if message.image:
                await self._client.files_upload_v2(channel=target, file=message.image, filename="chart.png",
                                                   title="chart", initial_comment=text)
            else:
                blocks = slack_blocks(message) if message.alerts else None  # ``text`` stays the notification
                await self._client.chat_postMessage(channel=target, text=text, blocks=blocks, parse="none",
                                                    **SLACK_INERT)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
            if status == 429 or error == "ratelimited":
                raise DeliveryError("slack rate limited", retry_after=retry_after(exc.response.headers or {})) from exc
            if status >= 500:
                raise DeliveryError(f"slack answered {status}") from exc
            if error in _PERMANENT:
                raise DeliveryError(f"slack refused the message: {error}", retryable=False) from exc
            raise DeliveryError(f"slack refused the message: {error or status}") from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"slack unreachable: {type(exc).__name__}") from exc


def default_commands(command: str = SlackSettings.model_fields["command"].default) -> SlashCommands:
    """Mentions of the standard registry's commands, under ``command`` (imported here: the command
    modules are only needed when no registry is given)."""
    from bot.commands import build_registry

    return SlashCommands(command, registry_names(build_registry()))


def alert_sender(settings: SlackSettings, notify: NotifySettings,
                 commands: SlashCommands | None = None, tls: ssl.SSLContext | None = None) -> SlackSender | None:
    """The sender for the outbox when Slack alerts can be delivered: a bot token (channel ids), or
    destinations that are all webhook URLs. None leaves Slack destinations waiting, with a warning.
    ``commands``: the dispatcher's registry under ``slack.command`` (default: the standard registry);
    ``tls``: the TLS context the webhook client shares with the service's other HTTPS clients."""
    targets = [d.target for d in notify.destinations if d.platform == "slack"]
    has_token = settings.bot_token is not None and bool(settings.bot_token.get_secret_value())
    if not has_token and not (targets and all(t.startswith(("https://", "http://")) for t in targets)):
        return None
    return SlackSender(web_client(settings) if has_token else None, webhook=WebhookSender("slack", tls=tls),
                       commands=commands or default_commands(settings.command))
