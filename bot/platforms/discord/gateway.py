"""The Discord adapter: slash commands and buttons through one gateway connection, on the leader only.

Two gateway connections on one bot token both receive every interaction, and the slower one then
fails to answer (discord.py #8039), so the service connects only while it holds the leader lease:
the wiring starts this component when elected and stops it when the term ends.

Each interaction goes to the one dispatcher: a slash command becomes the command line it stands for
(``/close BTC/USD``) and goes to ``handle_text``; a button press goes to ``handle_callback`` with the
button's payload. Allowlists here are only what the dispatcher cannot know — which Discord servers
(guilds) the bot serves and whether direct messages are accepted. Channels (``chat.allowed_chats``)
and users (roles) are checked by the dispatcher like on every platform.

Discord wants an answer within 3 seconds: a command that has not finished after
``discord.defer_after_s`` is deferred ("thinking…") and answered with a follow-up. A long reply is
several messages (numbered parts, each readable on its own): the first is the answer, the others
follow-ups, all with the answer's visibility, buttons on the last one.

While a user types a pair or a job name, Discord asks for suggestions (autocomplete): the traded
pairs or the scheduled jobs matching what is typed, for a user whose role may run the command in a
place the bot serves, and nothing otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.confirmations import Pending
from bot.dispatcher import Dispatcher
from bot.expiry import SWEEP_INTERVAL_S, ExpiredPrompts, prompt_nonce
from bot.identity import Actor, ChatRef
from bot.platforms.discord.autocomplete import candidates, focused, matching, suggests
from bot.platforms.discord.commands import BOT_DM_CONTEXT, command_line, slash_commands
from bot.platforms.discord.render import DiscordMessage, PressButton, render_discord_messages
from bot.reply import Reply
from bot.retrying import Escalating
from core.ops import ComponentHealth, ComponentState
from core.runtime import Supervisor, TaskFailed
from core.settings import DiscordSettings
from exchanges.retry import Backoff

log = logging.getLogger("tradectl.discord")
COMPONENT = "discord"
_FATAL = (discord.LoginFailure, discord.PrivilegedIntentsRequired)
_TRANSIENT = (discord.HTTPException, discord.GatewayNotFound, discord.ConnectionClosed, aiohttp.ClientError,
              OSError, TimeoutError)


class TradectlClient(discord.Client):
    """A bare discord.py client: only the unprivileged guilds intent (interactions need no more) and no
    command tree — our registry and dispatcher decide everything; this class forwards interactions."""

    def __init__(self, adapter: DiscordGateway) -> None:
        super().__init__(intents=discord.Intents(guilds=True))
        self.adapter = adapter

    async def setup_hook(self) -> None:
        self.add_dynamic_items(PressButton)

    async def on_connect(self) -> None:
        log.info("discord gateway connected (leader epoch %s)", self.adapter.epoch)
        self.adapter.connected.set()
        self.adapter.report("up", f"connected (leader epoch {self.adapter.epoch})")

    async def on_disconnect(self) -> None:
        if self.adapter.running and self.adapter.connected.is_set():  # discord.py reconnects by itself
            self.adapter.report("down", "gateway connection lost; reconnecting")

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.type is discord.InteractionType.application_command:
            await self.adapter.handle_command(interaction)
        elif interaction.type is discord.InteractionType.autocomplete:
            await self.adapter.handle_autocomplete(interaction)

    async def handle_press(self, interaction: discord.Interaction[Any], payload: str, owner: int | None) -> None:
        await self.adapter.handle_press(interaction, payload, owner)


def _actor(interaction: discord.Interaction[Any]) -> Actor:
    """The presser or caller by their snowflake id, with the name Discord sent along (server nickname,
    else global name, else username: ``display_name``) for display only; no extra API call."""
    user = interaction.user
    return Actor("discord", str(user.id), str(user.display_name or ""))


def _needs_configuration(exc: BaseException) -> bool:
    """A refused token, a missing intent or another 4xx (except 429): retrying soon will not help."""
    if isinstance(exc, _FATAL):
        return True
    return isinstance(exc, discord.HTTPException) and 400 <= exc.status < 500 and exc.status != 429


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


@contextmanager
def _endpoints(settings: DiscordSettings) -> Iterator[None]:
    """Point discord.py at other REST/gateway URLs (a local fake in tests). These are class attributes in
    discord.py, so they are set for the life of the connection and restored afterwards."""
    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = settings.api_base.rstrip("/")
    if settings.gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


class DiscordGateway:
    """A component: ``start(epoch)`` when this replica becomes leader, ``stop()`` when its term ends.

    ``start`` returns at once; logging in and connecting happen in the task ``discord:gateway``, which
    retries every failure with backoff — an outage, and also a rejected token or a missing intent (at
    the longest backoff, since only a configuration change helps) — so a Discord problem never holds
    up the election or stops trading. The component state (``health``) says ``down`` and why until
    the gateway is connected again; ``tradectl health`` then reports the instance degraded.
    """

    name = "discord"

    def __init__(self, dispatcher: Dispatcher, settings: DiscordSettings, *,
                 on_failure: Callable[[TaskFailed], None] | None = None, max_backoff_s: float = 60.0,
                 health: ComponentHealth | None = None, expiry_sweep_s: float = SWEEP_INTERVAL_S) -> None:
        if settings.token is None or not settings.token.get_secret_value():
            raise ValueError("discord.enabled needs discord.token (the bot token)")
        self.dispatcher = dispatcher
        self.settings = settings
        self.max_backoff_s = max_backoff_s
        self.epoch: int | None = None
        self.client: TradectlClient | None = None
        self.connected = asyncio.Event()
        self.health = health
        self._on_failure = on_failure
        self._supervisor = Supervisor("discord", self._task_failed)
        # while connected: prompts nobody pressed lose their buttons once they expire (bot/expiry.py)
        self.expired_prompts = ExpiredPrompts(dispatcher.confirmations, "discord", self._mark_expired,
                                              timezone=dispatcher.timezone, interval_s=expiry_sweep_s,
                                              ready=self.connected.is_set)
        self._running = False
        self.report("idle", "connects only while leader")

    @property
    def running(self) -> bool:
        return self._running

    def report(self, state: ComponentState, reason: str) -> None:
        if self.health is not None:
            self.health.report(COMPONENT, state, reason)

    def _task_failed(self, failure: TaskFailed) -> None:
        self.report("down", f"{failure.task_name} stopped: {failure.original!r}"[:200])
        if self._on_failure is not None:
            self._on_failure(failure)

    async def start(self, epoch: int | None = None) -> None:
        if self._running:
            return
        self._running, self.epoch = True, epoch
        self.report("starting", f"connecting (leader epoch {epoch})")
        self._supervisor.spawn("discord:gateway", self._run())
        self._supervisor.spawn("discord:expiry", self.expired_prompts.run())

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        await self._supervisor.stop()
        self.connected.clear()
        self.report("idle", "connects only while leader")
        log.info("discord gateway disconnected")

    async def _run(self) -> None:
        assert self.settings.token is not None
        token = self.settings.token.get_secret_value()
        retries = Escalating(Backoff(initial_s=1.0, max_s=self.max_backoff_s, jitter=0))
        with _endpoints(self.settings):
            while True:
                client = self.client = TradectlClient(self)
                try:
                    await client.login(token)
                    await self._register(client)
                    retries.reset()
                    await client.connect(reconnect=True)
                    why = "the gateway closed the connection"
                    delay = retries.next()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if _needs_configuration(exc):
                        delay = retries.longest()
                        why = f"refused: {_describe(exc)} (check discord.token and the bot's intents)"
                        log.error("discord gateway %s; retrying in %.0fs", why, delay)
                    else:
                        delay = retries.next()
                        why = _describe(exc)
                        log.warning("discord gateway: %s; reconnecting in %.0fs", why, delay,
                                    exc_info=None if isinstance(exc, _TRANSIENT) else exc)
                finally:
                    self.connected.clear()
                    await client.close()
                self.report("down", f"{why}; retrying in {delay:.0f}s")
                await asyncio.sleep(delay)

    async def _register(self, client: TradectlClient) -> None:
        """Overwrite the slash commands with the registry's: per allowed server (visible at once) and,
        when direct messages are accepted, globally for DMs only (so servers do not list them twice)."""
        app_id = client.application_id
        if app_id is None:
            return
        registry = self.dispatcher.registry
        for guild in self.settings.guilds:
            try:
                await client.http.bulk_upsert_guild_commands(app_id, int(guild), slash_commands(registry))
            except discord.HTTPException as exc:
                log.warning("could not register slash commands in server %s: %s", guild, exc)
        if self.settings.allow_dms:
            commands = slash_commands(registry, contexts=(BOT_DM_CONTEXT,))
            try:
                await client.http.bulk_upsert_global_commands(app_id, commands)
            except discord.HTTPException as exc:
                log.warning("could not register slash commands for direct messages: %s", exc)

    # -- interactions ------------------------------------------------------------------------------

    def _place(self, interaction: discord.Interaction[Any]) -> ChatRef | str:
        """Where the interaction happened, or why we do not answer there."""
        channel = str(interaction.channel_id)
        if interaction.guild_id is None:
            if not self.settings.allow_dms:
                return "Commands are not accepted in direct messages."
            if not isinstance(interaction.channel, discord.DMChannel):
                return "Commands are accepted in a direct message with the bot only."
            return ChatRef("discord", channel, "private")
        if str(interaction.guild_id) not in self.settings.guilds:
            return "This server is not allowed to use this bot."
        return ChatRef("discord", channel, "group")

    async def _refuse(self, interaction: discord.Interaction[Any], why: str) -> None:
        log.warning("discord interaction refused: %s (user %s, server %s, channel %s)", why, interaction.user.id,
                    interaction.guild_id, interaction.channel_id)
        await interaction.response.send_message(why, ephemeral=True)

    async def handle_command(self, interaction: discord.Interaction[Any]) -> None:
        try:
            place = self._place(interaction)
            if isinstance(place, str):
                await self._refuse(interaction, place)
                return
            data: dict[str, Any] = dict(interaction.data or {})
            name = str(data.get("name", ""))[:64]
            spec = self.dispatcher.registry.get(name)
            text = command_line(name, spec, data.get("options") or [])
            actor = _actor(interaction)
            two_person = spec is not None and spec.name in self.dispatcher.settings.two_person_commands
            work = self.dispatcher.handle_text(actor, place, text, interaction.created_at, str(interaction.id),
                                               epoch=self.epoch)
            reply = await self._within_budget(work, lambda: interaction.response.defer(thinking=True))
            if reply is None:
                if not interaction.response.is_done():
                    await interaction.response.defer(ephemeral=True, thinking=True)
                await interaction.delete_original_response()
                return
            messages = render_discord_messages(reply, owner=None if two_person else interaction.user.id)
            # A refusal is shown to the person who asked only (a deferred answer keeps the defer's visibility)
            last = await self._send(interaction, messages, ephemeral=reply.private)
            nonce = prompt_nonce(reply)
            if nonce is not None and last is not None and not reply.private:
                await self._attach(nonce, f"{interaction.channel_id}:{last}")
        except discord.HTTPException as exc:
            log.warning("could not answer a discord command: %s", exc)

    async def handle_press(self, interaction: discord.Interaction[Any], payload: str, owner: int | None) -> None:
        """A button press. The buttons go away once the prompt is over (``reply.settled``: confirmed,
        cancelled, expired, used or refused for good), whatever the outcome; a press refused only for
        this presser (someone other than the requester, a standby) leaves them for the right person.
        Refusals are shown only to the presser."""
        try:
            place = self._place(interaction)
            if isinstance(place, str):
                await self._refuse(interaction, place)
                return
            actor = _actor(interaction)
            work = self.dispatcher.handle_callback(actor, place, payload, str(interaction.id), epoch=self.epoch)
            reply = await self._within_budget(work, lambda: interaction.response.defer())
            if reply is None:
                if not interaction.response.is_done():
                    await interaction.response.defer()
                return
            messages = render_discord_messages(reply, owner=interaction.user.id)
            if reply.settled:
                if interaction.response.is_done():
                    await interaction.edit_original_response(view=None)
                else:
                    await interaction.response.edit_message(view=None)
            await self._send(interaction, messages, ephemeral=reply.private)
        except discord.HTTPException as exc:
            log.warning("could not answer a discord button press: %s", exc)

    @staticmethod
    async def _send(interaction: discord.Interaction[Any], messages: list[DiscordMessage], *,
                    ephemeral: bool) -> int | None:
        """Every message of a reply, in order: the first as the interaction's answer unless it was already
        acknowledged (deferred, or its buttons removed), the others as follow-ups. A follow-up that
        fails stops the rest: the parts are numbered, so a gap would show, and an error is logged.
        Returns the id of the last message when Discord said it (where a prompt's buttons are)."""
        last: int | None = None
        for message in messages:
            if interaction.response.is_done():
                sent = await interaction.followup.send(ephemeral=ephemeral, wait=True, **message.kwargs())
                last = sent.id
            else:
                answered = await interaction.response.send_message(ephemeral=ephemeral, **message.kwargs())
                resource = getattr(answered, "resource", None)
                last = getattr(resource, "id", None) if isinstance(resource, discord.InteractionMessage) else None
        return last

    async def _attach(self, nonce: str, message_ref: str) -> None:
        try:
            await self.dispatcher.confirmations.attach(nonce, message_ref)
        except Exception:
            log.warning("discord: could not record where a prompt was posted (it keeps its buttons after expiry)",
                        exc_info=True)

    async def _mark_expired(self, pending: Pending, note: str) -> None:
        """Replace an expired prompt with ``note`` and take its buttons off, as the bot (the interaction's
        own token is gone after 15 minutes; the bot can edit its message in the channel at any time)."""
        client = self.client
        if client is None or not self.connected.is_set():
            raise RuntimeError("not connected to discord")
        channel, _, message = pending.message_ref.partition(":")
        await client.get_partial_messageable(int(channel)).get_partial_message(int(message)).edit(
            content=note, embeds=[], view=None)

    async def handle_autocomplete(self, interaction: discord.Interaction[Any]) -> None:
        """Suggestions for the option being typed (at most 25); an empty list when none apply."""
        try:
            suggestions = await self._suggestions(interaction)
        except Exception:
            log.exception("discord autocomplete failed")
            suggestions = []
        try:
            await interaction.response.autocomplete([app_commands.Choice(name=s, value=s) for s in suggestions])
        except discord.HTTPException as exc:
            log.warning("could not answer a discord autocomplete: %s", exc)

    async def _suggestions(self, interaction: discord.Interaction[Any]) -> list[str]:
        place = self._place(interaction)
        if isinstance(place, str):
            return []
        data: dict[str, Any] = dict(interaction.data or {})
        spec = self.dispatcher.registry.get(str(data.get("name", ""))[:64])
        typing = focused(data.get("options") or [])
        if spec is None or typing is None:
            return []
        param = next((p for p in spec.params if p.name == typing[0]), None)
        if param is None or not suggests(param):
            return []
        # From memory only (no database round trip within Discord's 3 s); the command itself is checked in full.
        access = self.dispatcher.access
        actor = Actor("discord", str(interaction.user.id))
        role = access.cached_role(actor, place)
        if role < spec.role:
            return []
        return matching(await candidates(param, self.dispatcher.services, access.pair_limit(actor, role)), typing[1])

    async def _within_budget(self, work: Awaitable[Reply | None],
                             defer: Callable[[], Awaitable[Any]]) -> Reply | None:
        """Run ``work``; if it is still running after ``defer_after_s``, acknowledge the interaction with
        ``defer`` first, then wait for it. The task is awaited here, never left behind."""
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.settings.defer_after_s)
            if not done:
                try:
                    await defer()
                except discord.HTTPException as exc:  # the command still runs to its end; only the answer is lost
                    log.warning("could not defer a discord interaction: %s", exc)
            return await task
        finally:
            if not task.done():
                task.cancel()
