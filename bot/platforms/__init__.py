"""The platform adapters: console (:mod:`bot.platforms.console`), Telegram, Discord and Slack.

The package itself exports nothing: each platform's subpackage lists what it offers.
"""

__all__: list[str] = []
