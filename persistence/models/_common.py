"""Helpers shared by the table modules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Field

from persistence.types import Money, UTCDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


def money(default: Decimal | None = Decimal(0), *, nullable: bool = False, **kw: Any) -> Any:
    return Field(default=default, sa_type=Money, nullable=nullable, **kw)


def opt_money(**kw: Any) -> Any:
    return Field(default=None, sa_type=Money, nullable=True, **kw)


def ts(*, index: bool = False, nullable: bool = False, default_now: bool = True) -> Any:
    if default_now:
        return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=nullable, index=index)
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)
