"""Operations around the trading core: leader election, heartbeats and component health, the scheduler and
its jobs (reports, charts, reconciliation, retention), and the outbox alerts wait in.

Listed here is what the chat layer may use; the scheduler, reports and charts are imported where they are
wired (charts pull in matplotlib, so nothing here imports them). The names are loaded on first use, so
``tradectl health`` (which reads heartbeats through :mod:`core.ops.heartbeat`) does not pay for the
leader election, the outbox and the trading core they bring in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.runtime.lazy import lazy_exports

if TYPE_CHECKING:
    from core.ops.components import ComponentHealth
    from core.ops.leader import Lease
    from core.ops.outbox import OutboxWriter
    from core.ops.probe import ComponentState

__all__ = ["ComponentHealth", "ComponentState", "Lease", "OutboxWriter"]

_HOME = {
    "components": ("ComponentHealth",),
    "leader": ("Lease",),
    "outbox": ("OutboxWriter",),
    "probe": ("ComponentState",),
}

__getattr__ = lazy_exports(__name__, _HOME)
