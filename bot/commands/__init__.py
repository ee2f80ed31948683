"""The built-in commands, one module per family: information, trading, administration."""

from __future__ import annotations

from bot.commands import admin, info, orders, pairs, reports, trading
from bot.registry import Registry


def build_registry() -> Registry:
    """A fresh registry of every built-in command (no process-wide instance: see STYLE.md item 9)."""
    return Registry.from_modules(info, trading, orders, pairs, reports, admin)  # /help's groups in this order


__all__ = ["admin", "build_registry", "info", "orders", "pairs", "reports", "trading"]
