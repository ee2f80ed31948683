"""Formatting helpers: Decimal and time values as the strings every platform shows.

The command layer formats once, here, so Telegram, Discord, Slack and the console agree on every
number. Nothing here adds markup. Money is never converted to float.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

DASH = "-"
_CENTS = Decimal("0.01")


def money(value: Decimal | None, currency: str = "") -> str:
    """``1,234.56 USD``: two decimals with thousands separators."""
    if value is None:
        return DASH
    text = f"{value.quantize(_CENTS):,.2f}"
    return f"{text} {currency}" if currency else text


def signed(value: Decimal | None, currency: str = "") -> str:
    """``+12.30`` / ``-4.00``: PnL always shows its sign."""
    if value is None:
        return DASH
    q = value.quantize(_CENTS)
    text = f"{q:+,.2f}"
    return f"{text} {currency}" if currency else text


def qty(value: Decimal | None) -> str:
    """Quantities as given, without trailing zeros or exponent notation (``0.0015``, ``12``)."""
    if value is None:
        return DASH
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def price(value: Decimal | None) -> str:
    """Prices: two decimals from 1 upwards, up to eight significant places below 1."""
    if value is None:
        return DASH
    if abs(value) >= 1:
        return f"{value.quantize(_CENTS):,.2f}"
    return qty(value.quantize(Decimal("0.00000001")))


def pct(value: Decimal | None) -> str:
    """A value already in percent (``1.5`` -> ``+1.50%``)."""
    if value is None:
        return DASH
    return f"{value.quantize(_CENTS):+.2f}%"


def ratio(value: Decimal | None) -> str:
    """A fraction shown as a percentage (``0.55`` -> ``55.0%``); win rates come as fractions."""
    if value is None:
        return DASH
    return f"{(value * 100).quantize(Decimal('0.1')):.1f}%"


def number(value: Decimal | None) -> str:
    """A plain dimensionless figure such as a profit factor (``1.85``)."""
    if value is None:
        return DASH
    return f"{value.quantize(_CENTS):.2f}"


def age(seconds: float | None) -> str:
    """How old something is: ``12s``, ``3m 04s``, ``2h 05m``, ``3d 02h``; ``no data`` when unknown."""
    if seconds is None:
        return "no data"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def when(value: datetime | None) -> str:
    """A UTC timestamp to the minute: ``2024-05-01 13:45 UTC``."""
    if value is None:
        return DASH
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def clip(text: str, limit: int) -> str:
    """Shorten user-supplied text for echoing back or auditing; never splits inside the limit."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
