"""The Slack adapter: one slash command (``/tradectl status``), Block Kit buttons and the app's Home tab
(the status, published when the user opens it), via slack-bolt.

Socket Mode (the default) keeps an outgoing WebSocket, so no public endpoint is needed; HTTP mode
serves ``slack.http_path`` and bolt verifies each request's signature (HMAC-SHA256 with the signing
secret, timestamps older than five minutes refused) before any listener runs.

Every replica runs this: with several Socket Mode connections Slack delivers each event to one of
them, and everything the command core keeps (confirmations, processed updates, audit) is in the
database, so it does not matter which replica answers.

Slack wants an acknowledgement within 3 seconds: each listener acks first and then dispatches; the
answer goes to the command's ``response_url``, which works in any channel and in direct messages
without inviting the bot. A long reply is several messages (numbered parts, each readable on its
own), all through the ``response_url`` with the answer's visibility; Slack accepts five uses of one
``response_url``, so a reply is cut to what that leaves (the last message says what was left out).
People are named by their ``U…`` id; the name shown beside it is their Slack display name, looked up
with ``users.info`` at most once a day per person (:mod:`bot.platforms.slack.names`), or the handle Slack
sends when that cannot be had. Allowlists here are only what the dispatcher cannot know: which Slack
workspaces are served. Channels (``chat.allowed_chats.slack``) and users (roles) are checked by the
dispatcher as on every platform.

Nothing fails silently: slack-sdk reconnects Socket Mode by itself, and a monitor reports the
connection as the ``slack`` component (``up``, or ``down`` while it is lost or never made), which
``/health`` and ``tradectl health`` read. An answer that cannot be delivered (network, 429, 5xx) is
retried with backoff a few times, with ``slack:send`` down meanwhile. Events are already handled
concurrently (slack-sdk and bolt run each in its own task), so one channel never waits for another.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.confirmations import Pending
from bot.dispatcher import Dispatcher
from bot.expiry import SWEEP_INTERVAL_S, ExpiredPrompts, prompt_nonce
from bot.identity import Actor, ChatRef, NameSource, Role
from bot.lanes import is_urgent
from bot.platforms.slack.mentions import SlashCommands, registry_names
from bot.platforms.slack.names import SlackNames
from bot.platforms.slack.render import (
    ACTION_RE,
    escape,
    home_note,
    is_refusal,
    render_slack,
    render_slack_messages,
    without_buttons,
)
from bot.platforms.slack.sender import web_client
from bot.reply import Reply
from core.ops import ComponentHealth, ComponentState
from core.runtime import Supervisor, TaskFailed
from core.settings import SlackSettings
from exchanges.errors import TradectlError
from exchanges.retry import Backoff, RetryPolicy

log = logging.getLogger("tradectl.slack")
Respond = Callable[..., Awaitable[Any]]
COMPONENT = "slack"
CONNECT_GRACE_S = 10.0  # a first connection still not made after this long shows as down
MONITOR_EVERY_S = 1.0
# An answer to a slash command: four tries, 0.5 s, 1 s and 2 s apart.
RESPOND_RETRY = RetryPolicy(attempts=4, backoff=Backoff(initial_s=0.5, max_s=30.0, jitter=0))


class _AnswerFailed(TradectlError):
    """One try at posting an answer failed in a way another try may fix (network, 429, 5xx)."""

    retryable = True
HOME_BLOCKS = 100  # Slack's limit for a Home tab view
RESPONSE_URL_USES = 5  # Slack accepts up to five messages through one response_url (within 30 minutes)


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


class SlackAdapter:
    """A component (``start``/``stop``, safe to call twice). ``port`` is the bound port in HTTP mode."""

    name = "slack"

    def __init__(self, dispatcher: Dispatcher, settings: SlackSettings, *, client: AsyncWebClient | None = None,
                 on_failure: Callable[[TaskFailed], None] | None = None, health: ComponentHealth | None = None,
                 connect_grace_s: float = CONNECT_GRACE_S, expiry_sweep_s: float = SWEEP_INTERVAL_S) -> None:
        missing = settings.missing_secrets()
        if missing:
            raise ValueError(f"slack.enabled in {settings.mode} mode needs {' and '.join(missing)}")
        self.dispatcher = dispatcher
        self.settings = settings
        self.client = client or web_client(settings)
        http = settings.mode == "http"
        # named: unnamed, bolt takes its name from inspect.stack(), which reads every caller's source into memory
        self.app = AsyncApp(client=self.client, signing_secret=_secret(settings.signing_secret) if http else None,
                            request_verification_enabled=http, logger=logging.getLogger("tradectl.slack.bolt"),
                            process_before_response=False, name="tradectl")
        self.app.command(settings.command)(self._on_command)
        self.app.action(ACTION_RE)(self._on_press)
        self.app.event("app_home_opened")(self._on_home)
        self.commands = SlashCommands(settings.command, registry_names(dispatcher.registry))
        self.names = SlackNames(self.client, dispatcher.access.names, dispatcher.clock)
        self.port: int | None = None
        self.health = health
        self.connect_grace_s = connect_grace_s
        self._on_failure = on_failure
        self._supervisor = Supervisor("slack", self._task_failed)
        # on every replica: prompts nobody pressed lose their buttons once they expire (bot/expiry.py);
        # the conditional close lets one replica edit each
        self.expired_prompts = ExpiredPrompts(dispatcher.confirmations, "slack", self._mark_expired,
                                              timezone=dispatcher.timezone, interval_s=expiry_sweep_s)
        self._socket: AsyncSocketModeHandler | None = None
        self._runner: web.AppRunner | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._running = False

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._supervisor.spawn("slack:expiry", self.expired_prompts.run())
        if self.settings.mode == "socket":
            self._socket = AsyncSocketModeHandler(self.app, _secret(self.settings.app_token), web_client=self.client)
            # connect() retries until Slack answers: in a task, so an outage never blocks start-up.
            self._report("starting", "connecting (Socket Mode)")
            # slack_bolt leaves connect_async/close_async unannotated
            self._supervisor.spawn("slack:socket", self._socket.connect_async())  # type: ignore[no-untyped-call]
            self._supervisor.spawn("slack:monitor", self._monitor(self._socket))
            return
        web_app = web.Application(client_max_size=1 << 20)
        web_app.router.add_post(self.settings.http_path, self._http)
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http_host, self.settings.http_port)
        await site.start()
        # aiohttp's private _server is typed optional; it is set once the site has started
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._report("up", f"listening on port {self.port}")
        log.info("slack http endpoint on %s:%s%s", self.settings.http_host, self.port, self.settings.http_path)

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop taking events, then give answers already being worked on ``drain_s`` to finish."""
        if not self._running:
            return
        self._running = False
        await self._supervisor.stop()
        await self.names.stop()
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
            self._socket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=drain_s)
            for task in pending:
                task.cancel()
        if self.health is not None:
            self.health.remove(COMPONENT)

    # -- health ------------------------------------------------------------------------------------

    def _report(self, state: ComponentState, reason: str, name: str = COMPONENT) -> None:
        if self.health is not None:
            self.health.report(name, state, reason)

    def _task_failed(self, failure: TaskFailed) -> None:
        self._report("down", f"{failure.task_name} stopped: {failure.original!r}"[:200])
        if self._on_failure is not None:
            self._on_failure(failure)

    async def _monitor(self, handler: AsyncSocketModeHandler) -> None:
        """Report the Socket Mode connection (slack-sdk reconnects on its own and only logs)."""
        started, ever = asyncio.get_running_loop().time(), False
        while True:
            try:
                connected = bool(await handler.client.is_connected())
            except Exception as exc:  # noqa: BLE001 - cannot tell: say so
                connected = False
                log.debug("slack: connection check failed: %s", exc)
            if connected:
                ever = True
                self._report("up", "connected (Socket Mode)")
            elif ever:
                self._report("down", "Socket Mode connection lost; reconnecting")
            elif asyncio.get_running_loop().time() - started > self.connect_grace_s:
                self._report("down", "cannot connect (Socket Mode); retrying — see the log")
            await asyncio.sleep(MONITOR_EVERY_S)

    async def _http(self, request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    # -- listeners ---------------------------------------------------------------------------------

    def _place(self, team: str, channel: str) -> ChatRef | str:
        if team not in self.settings.workspaces:
            return "This Slack workspace is not allowed to use this bot."
        # D... is a direct message; a channel, private channel or group DM needs chat.allowed_chats.slack.
        return ChatRef("slack", channel, "private" if channel.startswith("D") else "group")

    async def _actor(self, user: str, handle: str, place: ChatRef, text: str | None = None,
                     payload: str | None = None) -> Actor:
        """The actor, named as well as is known: for someone with a role the display name from ``users.info``
        (:mod:`bot.platforms.slack.names`: cached, waited for briefly -- never for a kill-lane command or
        press, which goes on with the handle while the name is looked up), else the ``handle`` Slack sent,
        marked as one so that storing it never undoes a looked-up name (:class:`~bot.identity.DisplayNames`)."""
        actor = Actor("slack", user, handle, NameSource.HANDLE)
        if self.dispatcher.access.cached_role(actor, place) is Role.NONE:
            return actor  # from memory: a stranger costs no lookup (and their name is never stored)
        urgent = is_urgent(self.dispatcher, actor, place, text, payload)
        name, source = await self.names.name(user, handle, wait=not urgent)
        return Actor("slack", user, name, source)

    def _track(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _on_command(self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], respond: Respond,
                          request: AsyncBoltRequest) -> None:
        await ack()
        self._track()
        place = self._place(str(body.get("team_id", "")), str(body.get("channel_id", "")))
        if isinstance(place, str):
            await self._refuse(respond, place, body.get("user_id"), body.get("team_id"))
            return
        text = str(body.get("text") or "").strip().lstrip("/") or "help"
        # user_name is the legacy handle Slack sends with every slash command: the name until a better one is known
        actor = await self._actor(str(body.get("user_id", "")), str(body.get("user_name") or ""), place, "/" + text)
        reply = await self.dispatcher.handle_text(actor, place, "/" + text, _sent_at(request),
                                                  _update_id(body, "trigger_id"))
        await self._answer(respond, place, reply, replace=False, ephemeral=reply is not None and reply.private)
        nonce = prompt_nonce(reply)
        if nonce is not None and body.get("response_url"):
            # the prompt was posted through this response_url (valid 30 minutes): the way to edit it
            try:
                await self.dispatcher.confirmations.attach(nonce, str(body["response_url"]))
            except Exception:
                log.warning("slack: could not record where a prompt was posted (it keeps its buttons after "
                            "expiry)", exc_info=True)

    async def _mark_expired(self, pending: Pending, note: str) -> None:
        """Replace an expired prompt with ``note``, without buttons, through the response_url it was
        posted by (Slack refuses it once that is over 30 minutes old: logged, the prompt stays)."""
        text = self.commands.text(note)
        await self._respond(AsyncRespond(response_url=pending.message_ref), text=text,
                            blocks=[home_note(escape(text))], replace_original=True)

    async def _on_press(self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], action: dict[str, Any],
                        respond: Respond) -> None:
        await ack()
        self._track()
        team = str((body.get("team") or {}).get("id", "")) or str((body.get("user") or {}).get("team_id", ""))
        channel = (str((body.get("channel") or {}).get("id", ""))
                   or str((body.get("container") or {}).get("channel_id", "")))
        who = body.get("user") or {}
        user = str(who.get("id", ""))
        handle = str(who.get("username") or who.get("name") or "")  # for display only, never deciding
        place = self._place(team, channel)
        if isinstance(place, str):
            await self._refuse(respond, place, user, team)
            return
        value = str(action.get("value", ""))
        reply = await self.dispatcher.handle_callback(await self._actor(user, handle, place, payload=value), place,
                                                      value, _update_id(body, "trigger_id"))
        if reply is None:
            return
        # Once the prompt is over (whatever the outcome) its buttons go: a result replaces the message; a
        # refusal (expired, used) leaves the question with a note instead of buttons and goes to the
        # presser alone. A press refused only for this presser leaves the buttons for the requester.
        if reply.settled and not reply.private:
            await self._answer(respond, place, reply, replace=True)
            return
        if reply.settled:
            original = (body.get("message") or {}).get("blocks") or []
            if original:
                blocks = without_buttons(original, reply.summary(300))
                await self._respond(respond, text=str((body.get("message") or {}).get("text") or " "),
                                    blocks=blocks, replace_original=True)
            else:  # an ephemeral prompt (Slack does not echo it): nothing left to keep
                await self._respond(respond, delete_original=True)
        await self._answer(respond, place, reply, replace=False, ephemeral=reply.private,
                           uses=RESPONSE_URL_USES - (1 if reply.settled else 0))

    async def _on_home(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """The app's Home tab was opened: publish what ``/tradectl status`` would answer this user, run
        through the dispatcher as that user (the same allowlist, role, rate limit and audit). A refusal
        (a stranger's "Not authorized.") publishes a view that says so and nothing else; the
        dispatcher's silence (``chat.unauthorized_reply = silent``, or already told this minute)
        publishes nothing, leaving whatever view that user had. The status is as of the last opening:
        nothing refreshes it in between."""
        if event.get("tab") != "home":
            return  # the Messages tab: nothing to publish
        self._track()
        user, team = str(event.get("user", "")), str(body.get("team_id", ""))
        place = self._place(team, str(event.get("channel") or ""))
        if isinstance(place, str):
            log.warning("slack home tab refused: %s (user %s, workspace %s)", place, user, team)
            await self._publish_home(user, [home_note(":no_entry: " + place)])
            return
        reply = await self.dispatcher.handle_text(await self._actor(user, "", place), place, "/status", None,
                                                  _update_id(body, "event_id"))
        if reply is None:  # silence (chat.unauthorized_reply = silent, or told within the minute): no view
            return
        if is_refusal(reply):
            why = self.commands.text(reply.plain_text())
            await self._publish_home(user, [home_note(f":no_entry: {escape(why)}")])
            return
        rendered = render_slack(self.commands.reply(reply))
        blocks = [b for b in rendered.blocks if b.get("type") != "actions"]  # a press here has no channel
        at = self.dispatcher.clock.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        refresh = f"As of {at}. Open this tab again, or type {self.settings.command} status, for fresh figures."
        await self._publish_home(user, [*blocks, {"type": "context", "elements": [
            {"type": "mrkdwn", "text": escape(refresh), "verbatim": True}]}])

    async def _publish_home(self, user: str, blocks: list[dict[str, Any]]) -> None:
        try:
            await self.client.views_publish(user_id=user, view={"type": "home", "blocks": blocks[:HOME_BLOCKS]})
        except SlackClientError as exc:  # the next opening tries again
            log.warning("could not publish the slack home tab for %s: %s", user, exc)

    async def _refuse(self, respond: Respond, why: str, user: Any, team: Any) -> None:
        log.warning("slack request refused: %s (user %s, workspace %s)", why, user, team)
        await self._respond(respond, text=why, response_type="ephemeral", replace_original=False)

    async def _answer(self, respond: Respond, place: ChatRef, reply: Reply | None, *, replace: bool,
                      ephemeral: bool = False, uses: int = RESPONSE_URL_USES) -> None:
        """Every message of ``reply`` in order, at most ``uses`` (what is left of the response_url's
        five); ``replace``: the first one replaces the message whose button was pressed."""
        if reply is None:
            return
        messages = render_slack_messages(self.commands.reply(reply), max_messages=max(1, uses))
        for i, message in enumerate(messages):
            await self._respond(respond, text=message.text, blocks=list(message.blocks),
                                response_type="ephemeral" if ephemeral else "in_channel",
                                replace_original=replace and i == 0)
            for filename, png, title in message.files:
                try:
                    await self.client.files_upload_v2(channel=place.chat_id, file=png, filename=filename, title=title)
                except SlackClientError as exc:
                    log.warning("could not upload %s to slack: %s", filename, exc)

    async def _respond(self, respond: Respond, **kwargs: Any) -> None:
        """Post an answer to the command's response URL, retrying network errors, 429 and 5xx
        (:data:`RESPOND_RETRY`); an answer Slack refuses for good is not retried."""

        async def once() -> bool:
            try:
                response = await respond(**kwargs)
            except Exception as exc:  # noqa: BLE001 - the command already ran; keep trying to say so
                problem = f"{type(exc).__name__}: {exc}"[:200]
            else:
                status = getattr(response, "status_code", 200)
                if status < 400:
                    return True
                problem = f"Slack answered {status}"
                if status != 429 and status < 500:
                    log.warning("could not answer on slack: %s", problem)  # refused for good: a retry would be too
                    return False
            self._report("down", f"answering failed ({problem}); retrying", name="slack:send")
            raise _AnswerFailed(problem)

        answered = False
        try:
            async for attempt in RESPOND_RETRY.retrying(what="answering on slack"):
                with attempt:
                    answered = await once()
        except _AnswerFailed as exc:
            self._report("down", f"answering failed ({exc}); gave up on one answer", name="slack:send")
            log.warning("could not answer on slack after %d attempts: %s", RESPOND_RETRY.attempts, exc)
            return
        if answered:
            self._report("up", "", name="slack:send")


def _update_id(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return str(value) if value else None


def _sent_at(request: AsyncBoltRequest) -> datetime | None:
    """The request's signed timestamp in HTTP mode (for the stale-command check); Socket Mode has none."""
    values = request.headers.get("x-slack-request-timestamp") or []
    try:
        return datetime.fromtimestamp(int(values[0]), UTC) if values else None
    except (ValueError, OverflowError):
        return None
