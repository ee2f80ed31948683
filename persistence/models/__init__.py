"""All tables. Import this package to populate ``SQLModel.metadata`` (Alembic does)."""

from persistence.models._common import utcnow
from persistence.models.chat import AuditRow, ConfirmationRow, DisplayNameRow, ProcessedUpdateRow, RoleGrantRow
from persistence.models.ops import HeartbeatRow, JobRunRow, LeaseRow, OutboxRow
from persistence.models.trading import (
    EquitySnapshot,
    FillRow,
    LedgerEntry,
    OrderRow,
    PaperBalanceRow,
    PaperFillRow,
    PaperOrderRow,
    PositionRow,
    RuntimeValue,
    TradingStateRow,
)

__all__ = [
    "AuditRow", "ConfirmationRow", "DisplayNameRow", "EquitySnapshot", "FillRow", "HeartbeatRow", "JobRunRow",
    "LeaseRow", "LedgerEntry", "OrderRow", "OutboxRow", "PaperBalanceRow", "PaperFillRow",
    "PaperOrderRow", "PositionRow", "ProcessedUpdateRow", "RoleGrantRow", "RuntimeValue",
    "TradingStateRow", "utcnow",
]
