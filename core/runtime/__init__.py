"""What every long-lived part of the service shares: the component lifecycle and the one task supervisor,
and structured logging with bound context. Imports nothing else in ``core``.
"""

from core.runtime.lazy import lazy_exports
from core.runtime.lifecycle import Supervisor, TaskFailed, finish
from core.runtime.logs import bind

__all__ = ["Supervisor", "TaskFailed", "bind", "finish", "lazy_exports"]
