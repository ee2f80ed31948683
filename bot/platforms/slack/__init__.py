"""Slack: a slash command, Block Kit buttons and the Home tab (Socket Mode or HTTP, on every replica), and alerts.

- :class:`SlackAdapter` — the adapter component (slack-bolt ``AsyncApp``);
- :class:`SlackSender` — the alert sender (``chat.postMessage``, or an incoming webhook);
- :func:`web_client` — the Web API client with the rate-limit retry handler;
- :func:`render_slack` — the pure renderer, tested on its own;
- :class:`SlashCommands` — ``/status`` in replies and alerts as ``/tradectl status``.

The names are loaded on first use: the service imports only the part it wires (an alert sender
without its adapter), and a renderer can be imported without the platform's client library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.runtime import lazy_exports

if TYPE_CHECKING:
    from bot.platforms.slack.adapter import SlackAdapter
    from bot.platforms.slack.mentions import SlashCommands
    from bot.platforms.slack.render import SlackMessage, render_slack
    from bot.platforms.slack.sender import SlackSender, alert_sender, web_client

__all__ = ["SlackAdapter", "SlackMessage", "SlackSender", "SlashCommands", "alert_sender", "render_slack", "web_client"]

_HOME = {
    "adapter": ("SlackAdapter",),
    "mentions": ("SlashCommands",),
    "render": ("SlackMessage", "render_slack"),
    "sender": ("SlackSender", "alert_sender", "web_client"),
}


__getattr__ = lazy_exports(__name__, _HOME)
