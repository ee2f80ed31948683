"""Column types that keep money exact and time in UTC on both PostgreSQL and SQLite.

- :class:`Money` is ``NUMERIC`` (no fixed scale) on PostgreSQL and the ``Decimal``'s own text on
  SQLite, so ``Decimal("0.00000001")`` comes back exactly (SQLite's NUMERIC affinity would turn it
  into a float). Money is therefore never compared or summed in SQL on SQLite: sums happen in Python.
- :class:`UTCDateTime` is ``TIMESTAMPTZ`` on PostgreSQL and fixed-width ISO text with microseconds
  and ``+00:00`` on SQLite (lexicographic order equals time order). Naive datetimes are refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import String, types
from sqlalchemy.engine import Dialect

SQLITE_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f+00:00"


class Money(types.TypeDecorator[Decimal]):
    impl = types.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql

            return dialect.type_descriptor(postgresql.NUMERIC(asdecimal=True))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            if isinstance(value, float):
                raise TypeError("money must be Decimal, not float")
            value = Decimal(value)
        if not value.is_finite():
            raise ValueError(f"money must be finite, got {value}")
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UTCDateTime(types.TypeDecorator[datetime]):
    impl = types.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql  # loaded only where it is used (`tradectl health` on SQLite)

            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(String(32))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused: use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.strftime(SQLITE_TS_FORMAT)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.fromisoformat(str(value)).astimezone(UTC)
