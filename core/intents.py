"""Intents: what a command asks the engine to do. The engine applies them on its own loop.

Commands never flip flags themselves: they ``await engine.submit(PauseEntries(requested_by=...))``
and report the :class:`IntentResult`. ``requested_by`` is the actor's stable id
(``"telegram:123456"``), never a display name.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
class IntentResult:
    """``ok`` False means refused (``message`` says why and what to do instead)."""

    ok: bool
    message: str
    details: tuple[str, ...] = field(default=())


class IntentRejected(Exception):
    """The engine refused an intent; the message is safe to show in chat."""
