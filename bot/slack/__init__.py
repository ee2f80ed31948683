"""Slack: a slash command and Block Kit buttons (Socket Mode or HTTP, on every replica), and alerts.

- :class:`SlackAdapter` — the adapter component (slack-bolt ``AsyncApp``);
- :class:`SlackSender` — the alert sender (``chat.postMessage``, or an incoming webhook);
- :func:`web_client` — the Web API client with the rate-limit retry handler;
- :func:`render_slack` — the pure renderer, tested on its own.
"""

from bot.slack.adapter import SlackAdapter
from bot.slack.render import SlackMessage, render_slack
from bot.slack.sender import SlackSender, alert_sender, web_client

__all__ = ["SlackAdapter", "SlackMessage", "SlackSender", "alert_sender", "render_slack", "web_client"]
