"""The platform adapters: console, Telegram, Discord and Slack."""
