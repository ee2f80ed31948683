"""Intents: what a command asks the engine to do. The engine applies them on its own loop.

Commands never flip flags themselves: they ``await engine.submit(PauseEntries(requested_by=...))``
and report the :class:`IntentResult`. ``requested_by`` is the actor's stable id
(``"telegram:123456"``), never a display name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Intent:
    requested_by: str


@dataclass(frozen=True, slots=True)
class PauseEntries(Intent):
    reason: str = "paused from chat"


@dataclass(frozen=True, slots=True)
class Resume(Intent):
    pass


@dataclass(frozen=True, slots=True)
class ClosePosition(Intent):
    pair: str = ""


@dataclass(frozen=True, slots=True)
class CloseAll(Intent):
    pass


@dataclass(frozen=True, slots=True)
class Kill(Intent):
    reason: str = "kill requested"


@dataclass(frozen=True, slots=True)
class Rearm(Intent):
    pass


@dataclass(frozen=True, slots=True)
class ClosedPosition:
    """A position a command (or the kill switch) closed: what it sold, for how much, with what result.

    Typed, so the chat shows it in its own number format with totals; amounts are in the pair's quote."""

    pair: str
    qty: Decimal
    exit_price: Decimal | None
    pnl: Decimal
    fees: Decimal
    pnl_pct: Decimal | None = None

    @property
    def quote(self) -> str:
        return self.pair.rpartition("/")[2]

    @property
    def value(self) -> Decimal:
        """What the sale brought in (quantity times exit price), in the quote currency."""
        return self.qty * self.exit_price if self.exit_price is not None else Decimal(0)


@dataclass(frozen=True, slots=True)
class OpenItem:
    """Something still open after the command: a position whose exit has not filled, or an order."""

    pair: str
    qty: Decimal
    what: str = "position"  # "position" | "order"
    side: str = ""
    purpose: str = ""


@dataclass(frozen=True, slots=True)
class IntentResult:
    """``ok`` False means refused (``message`` says why and what to do instead).

    ``closed``, ``cancelled`` and ``pending`` are what a close or a kill did, as typed values
    (``details`` is free text for anything else); a result with none of them did nothing of that kind."""

    ok: bool
    message: str
    details: tuple[str, ...] = field(default=())
    closed: tuple[ClosedPosition, ...] = ()
    cancelled: tuple[OpenItem, ...] = ()  # orders cancelled
    pending: tuple[OpenItem, ...] = ()  # exits sent but not filled yet, or (after a kill's timeout) still open
    acknowledged_s: float | None = None  # a kill: intent -> every cancel and close acknowledged by the venue
    flat_s: float | None = None  # a kill: intent -> the venue confirmed nothing is open


class IntentRejected(Exception):
    """The engine refused an intent; the message is safe to show in chat."""
