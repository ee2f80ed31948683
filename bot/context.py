"""What a command function receives: who is asking, where, with which role, and the services it may use.

Commands reach trading only through :class:`~core.trading.views.TradingService` (queries and intents),
roles through :class:`~bot.identity.AccessControl` and history through :class:`~bot.audit.AuditLog`.
Nothing else: no database handle, no adapter, no engine internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from bot import format as fmt
from core.settings import ChatSettings
from core.trading import TradingService

if TYPE_CHECKING:
    from bot.audit import AuditLog
    from bot.identity import AccessControl, Actor, ChatRef, Role
    from exchanges.clock import Clock


class CommandInfo(Protocol):
    """What a command may read about another command (``/help``): a :class:`~bot.registry.CommandSpec`."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> Role: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...
    @property
    def help(self) -> str: ...
    def synopsis(self) -> str: ...
    def usage_text(self) -> str: ...
    def asks_confirmation(self, settings: ChatSettings) -> bool: ...


class CommandCatalog(Protocol):
    """The commands of this dispatcher as a command sees them: a :class:`~bot.registry.Registry`. A
    Protocol here because the registry's handlers take a :class:`CommandContext`."""

    def get(self, name: str) -> CommandInfo | None: ...
    def visible(self, role: Role) -> Sequence[CommandInfo]: ...
    def groups(self, role: Role) -> Sequence[tuple[str, Sequence[CommandInfo]]]: ...


@dataclass(frozen=True, slots=True)
class CommandContext:
    actor: Actor
    chat: ChatRef
    role: Role
    ref_id: str
    services: TradingService
    access: AccessControl
    audit: AuditLog
    registry: CommandCatalog
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
