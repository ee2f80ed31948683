"""The Telegram / menu per role: each user sees the commands their role may run, so a viewer never sees /kill."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from telegram import BotCommand, BotCommandScope, BotCommandScopeChat, BotCommandScopeChatMember, BotCommandScopeDefault
from telegram.error import TelegramError

from bot.dispatcher import Dispatcher
from bot.identity import Role
from bot.platforms.telegram.api import AnyApplication

log = logging.getLogger("tradectl.bot.telegram")

MENU_REFRESH_S = 300.0  # how soon a role granted from chat shows in that user's / menu


async def publish_menus(current_app: Callable[[], AnyApplication | None], dispatcher: Dispatcher) -> None:
    """Publish each scope's menu, then again every ``MENU_REFRESH_S`` (grants made from chat show up then),
    until ``current_app()`` is None; a scope is written only when its list changed."""
    while True:
        app = current_app()
        if app is None:
            return
        try:
            scopes = await menu_scopes(dispatcher)
        except Exception:
            log.warning("telegram: could not read the roles for the command menu", exc_info=True)
            scopes = []
        for scope, wanted in scopes:
            try:
                current = await app.bot.get_my_commands(scope=scope)
                if [(c.command, c.description) for c in current] != [(c.command, c.description) for c in wanted]:
                    await app.bot.set_my_commands(wanted, scope=scope)
            except TelegramError as exc:  # e.g. a user who never opened a chat with the bot
                log.info("telegram: could not publish the command menu for %s: %s", scope.type, exc)
        await asyncio.sleep(MENU_REFRESH_S)


async def menu_scopes(dispatcher: Dispatcher) -> list[tuple[BotCommandScope, list[BotCommand]]]:
    """The default scope and every allowlisted group get the viewer's commands; each user with a role gets their
    role's in their private chat (``BotCommandScopeChat``) and, above viewer, in each allowlisted group
    (``BotCommandScopeChatMember``, which Telegram prefers over the chat's)."""
    registry = dispatcher.registry

    def menu(role: Role) -> list[BotCommand]:
        return [BotCommand(name, help_[:256] or name) for name, help_ in registry.menu(role)]

    groups = [int(g) for g in dispatcher.settings.allowed_chats.get("telegram", ()) if g.lstrip("-").isdigit()]
    scopes: list[tuple[BotCommandScope, list[BotCommand]]] = [(BotCommandScopeDefault(), menu(Role.VIEWER))]
    scopes += [(BotCommandScopeChat(g), menu(Role.VIEWER)) for g in groups]
    for entry in await dispatcher.access.entries():
        if entry.platform != "telegram" or not entry.user_id.isdigit():
            continue
        user = int(entry.user_id)
        scopes.append((BotCommandScopeChat(user), menu(entry.role)))
        if entry.role > Role.VIEWER:
            scopes += [(BotCommandScopeChatMember(g, user), menu(entry.role)) for g in groups]
    return scopes
