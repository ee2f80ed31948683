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
``discord.defer_after_s`` is deferred ("thinking…") and answered with a follow-up.
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
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.discord.commands import BOT_DM_CONTEXT, command_line, slash_commands
from bot.discord.render import PressButton, is_refusal, render_discord
from bot.dispatcher import Dispatcher
from bot.identity import Actor, ChatRef
from bot.reply import Reply
from core.lifecycle import Supervisor, TaskFailed
from core.settings_models import DiscordSettings

log = logging.getLogger("tradectl.discord")
_FATAL = (discord.LoginFailure, discord.PrivilegedIntentsRequired)
_TRANSIENT = (discord.HTTPException, discord.GatewayNotFound, discord.ConnectionClosed, aiohttp.ClientError,
              OSError, TimeoutError)


class TradectlClient(discord.Client):
    """A bare discord.py client: only the unprivileged guilds intent (interactions need no more) and no
    command tree — our registry and dispatcher decide everything; this class forwards interactions."""

    def __init__(self, adapter: "DiscordGateway") -> None:
        super().__init__(intents=discord.Intents(guilds=True))
        self.adapter = adapter

    async def setup_hook(self) -> None:
        self.add_dynamic_items(PressButton)

    async def on_connect(self) -> None:
        log.info("discord gateway connected (leader epoch %s)", self.adapter.epoch)
        self.adapter.connected.set()

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.type is discord.InteractionType.application_command:
            await self.adapter.handle_command(interaction)

    async def handle_press(self, interaction: discord.Interaction[Any], payload: str, owner: int | None) -> None:
        await self.adapter.handle_press(interaction, payload, owner)


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
    reconnects with backoff through Discord outages and reports only fatal errors (a rejected token,
    missing intents) through ``on_failure``, so a Discord problem never holds up the election.
    """

    name = "discord"

    def __init__(self, dispatcher: Dispatcher, settings: DiscordSettings, *,
                 on_failure: Callable[[TaskFailed], None] | None = None, max_backoff_s: float = 60.0) -> None:
        if settings.token is None or not settings.token.get_secret_value():
            raise ValueError("discord.enabled needs discord.token (the bot token)")
        self.dispatcher = dispatcher
        self.settings = settings
        self.max_backoff_s = max_backoff_s
        self.epoch: int | None = None
        self.client: TradectlClient | None = None
        self.connected = asyncio.Event()
        self._supervisor = Supervisor("discord", on_failure)
        self._running = False

    async def start(self, epoch: int | None = None) -> None:
        if self._running:
            return
        self._running, self.epoch = True, epoch
        self._supervisor.spawn("discord:gateway", self._run())

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        await self._supervisor.stop()
        self.connected.clear()
        log.info("discord gateway disconnected")

    async def _run(self) -> None:
        assert self.settings.token is not None
        token = self.settings.token.get_secret_value()
        delay = 1.0
        with _endpoints(self.settings):
            while True:
                client = self.client = TradectlClient(self)
                try:
                    await client.login(token)
                    await self._register(client)
                    delay = 1.0
                    await client.connect(reconnect=True)
                except _FATAL:
                    raise
                except _TRANSIENT as exc:
                    if isinstance(exc, discord.HTTPException) and exc.status < 500 and exc.status != 429:
                        raise
                    log.warning("discord gateway: %s; reconnecting in %.0fs", exc, delay)
                finally:
                    self.connected.clear()
                    await client.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)

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
            actor = Actor("discord", str(interaction.user.id))
            two_person = spec is not None and spec.name in self.dispatcher.settings.two_person_commands
            work = self.dispatcher.handle_text(actor, place, text, interaction.created_at, str(interaction.id),
                                               epoch=self.epoch)
            reply = await self._within_budget(work, lambda: interaction.response.defer(thinking=True))
            if reply is None:
                if not interaction.response.is_done():
                    await interaction.response.defer(ephemeral=True, thinking=True)
                await interaction.delete_original_response()
                return
            message = render_discord(reply, owner=None if two_person else interaction.user.id)
            if interaction.response.is_done():
                await interaction.followup.send(**message.kwargs())
            else:
                await interaction.response.send_message(**message.kwargs())
        except discord.HTTPException as exc:
            log.warning("could not answer a discord command: %s", exc)

    async def handle_press(self, interaction: discord.Interaction[Any], payload: str, owner: int | None) -> None:
        """A button press. The buttons go away once the press did something; a refusal of a two-person
        confirmation (pressed by the requester, or by a non-admin) is shown only to the presser and
        leaves them for the right person."""
        try:
            place = self._place(interaction)
            if isinstance(place, str):
                await self._refuse(interaction, place)
                return
            actor = Actor("discord", str(interaction.user.id))
            work = self.dispatcher.handle_callback(actor, place, payload, str(interaction.id), epoch=self.epoch)
            reply = await self._within_budget(work, lambda: interaction.response.defer())
            if reply is None:
                if not interaction.response.is_done():
                    await interaction.response.defer()
                return
            message = render_discord(reply, owner=interaction.user.id)
            if owner is None and is_refusal(reply):
                if interaction.response.is_done():
                    await interaction.followup.send(ephemeral=True, **message.kwargs())
                else:
                    await interaction.response.send_message(ephemeral=True, **message.kwargs())
                return
            if interaction.response.is_done():
                await interaction.edit_original_response(view=None)
            else:
                await interaction.response.edit_message(view=None)
            await interaction.followup.send(**message.kwargs())
        except discord.HTTPException as exc:
            log.warning("could not answer a discord button press: %s", exc)

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
