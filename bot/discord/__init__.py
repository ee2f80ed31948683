"""Discord: slash commands and buttons through the gateway (leader only), and alerts to channels.

- :class:`DiscordGateway` — the adapter component, started for a leader term;
- :class:`DiscordSender` — the alert sender (REST API, or a channel's incoming webhook);
- :func:`render_discord` and :func:`slash_commands` — the pure parts, tested on their own.
"""

from bot.discord.commands import command_line, slash_commands
from bot.discord.gateway import DiscordGateway
from bot.discord.render import DiscordMessage, PressButton, render_discord
from bot.discord.sender import DiscordSender, alert_sender

__all__ = ["DiscordGateway", "DiscordMessage", "DiscordSender", "PressButton", "alert_sender", "command_line",
           "render_discord", "slash_commands"]
