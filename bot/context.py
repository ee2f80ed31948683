"""What a command function receives: who is asking, where, with which role, and the services it may use.

Commands reach trading only through :class:`~core.views.TradingService` (queries and intents),
roles through :class:`~bot.identity.AccessControl` and history through :class:`~bot.audit.AuditLog`.
Nothing else: no database handle, no adapter, no engine internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from bot import format as fmt
from core.settings_models import ChatSettings
from core.views import TradingService

if TYPE_CHECKING:
    from bot.audit import AuditLog
    from bot.identity import AccessControl, Actor, ChatRef, Role
    from bot.registry import Registry


class Clock(Protocol):
    """Injected so tests can move time (confirmation expiry, stale commands, rate limits)."""

    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CommandContext:
    actor: Actor
    chat: ChatRef
    role: Role
    ref_id: str
    services: TradingService
    access: AccessControl
    audit: AuditLog
    registry: Registry
    settings: ChatSettings
    clock: Clock
    approved_by: str = ""  # the second admin, when a two-person command was confirmed
    timezone: str = "UTC"  # service.timezone: every time in a reply is local to it

    def when(self, value: datetime | None) -> str:
        """A full local timestamp, ``2024-05-01 15:45 CEST``."""
        return fmt.when(value, self.timezone)

    def clock_time(self, value: datetime | None) -> str:
        """A short local time, ``15:45 CEST`` today, ``30 Apr 15:45 CEST`` before."""
        return fmt.clock(value, self.timezone, self.clock.now())

    def ago(self, value: datetime | None) -> str:
        """``3 h ago``."""
        return fmt.ago(value, self.clock.now())

    @property
    def requested_by(self) -> str:
        """What intents carry: the requesting actor's stable key (a second approver is in the audit log)."""
        return self.actor.key
