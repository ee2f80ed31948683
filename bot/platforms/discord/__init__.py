"""Discord: slash commands and buttons through the gateway (leader only), and alerts to channels.

- :class:`DiscordGateway` — the adapter component, started for a leader term;
- :class:`DiscordSender` — the alert sender (REST API, or a channel's incoming webhook);
- :func:`render_discord` and :func:`slash_commands` — the pure parts, tested on their own.

The names are loaded on first use: the service imports only the part it wires (an alert sender
without its adapter), and a renderer can be imported without the platform's client library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.runtime import lazy_exports

if TYPE_CHECKING:
    from bot.platforms.discord.commands import command_line, slash_commands
    from bot.platforms.discord.gateway import DiscordGateway
    from bot.platforms.discord.render import DiscordMessage, PressButton, render_discord
    from bot.platforms.discord.sender import DiscordSender, alert_sender

__all__ = ["DiscordGateway", "DiscordMessage", "DiscordSender", "PressButton", "alert_sender", "command_line",
           "render_discord", "slash_commands"]

_HOME = {
    "commands": ("command_line", "slash_commands"),
    "gateway": ("DiscordGateway",),
    "render": ("DiscordMessage", "PressButton", "render_discord"),
    "sender": ("DiscordSender", "alert_sender"),
}


__getattr__ = lazy_exports(__name__, _HOME)
