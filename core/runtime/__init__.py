"""What every long-lived part of the service shares: the component lifecycle and the one task supervisor,
structured logging with bound context, and whole-or-nothing file writes. Imports nothing else in ``core``.
"""

from core.runtime.files import atomic_write
from core.runtime.lazy import lazy_exports
from core.runtime.lifecycle import Supervisor, TaskFailed, finish
from core.runtime.logs import bind

__all__ = ["Supervisor", "TaskFailed", "atomic_write", "bind", "finish", "lazy_exports"]
