"""Refused floods cost memory, not rows: one audit row per sender, chat and minute, with a count.

A stranger (not allowlisted) or an allowlisted sender over the rate limit can send thousands of
messages a minute. Each used to cost an audit row (and a processed-update row). Here the first refused
attempt of a sender in a chat opens a window and writes its row at once, so the audit log holds the
attempt before any reply; later attempts of that minute only count in memory, and the final count
(``audit_log.attempts``) is written when the window closes: at the next refused attempt after the
minute, when the window is evicted to keep memory bounded, or at :meth:`FloodLog.flush` (on stop).
Counts of windows still open when the process dies are lost; their first attempt is on record.

Bounds, so that neither memory nor the database grows with the flood: at most ``max_windows`` open
windows (the oldest closes first); per chat and minute at most ``rows_per_chat`` senders get a row of
their own and ``rows_per_minute`` in all, the others share one row per chat (user ``*``) and, beyond
the global budget, one row for everything (chat ``*``). Answers are budgeted too: at most
``replies_per_chat`` per chat and minute (each sender is told at most once a minute by the caller).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.audit import AuditLog
from bot.ratelimit import WINDOW
from exchanges.clock import Clock

log = logging.getLogger("tradectl.bot.floods")
ANYONE = "*"
# (platform, user id, chat id, decision): one window each
Key = tuple[str, str, str, str]


@dataclass(slots=True)
class _Window:
    started: datetime
    row_id: int | None = None
    attempts: int = 1
    written: int = 1  # the count the row holds


@dataclass(slots=True)
class _Budget:
    started: datetime
    rows: int = 0
    replies: int = 0


class FloodLog:
    """Aggregated audit rows and answer budgets for refused traffic; everything here is bounded."""

    def __init__(self, audit: AuditLog, clock: Clock, *, max_windows: int = 10_000, rows_per_chat: int = 20,
                 rows_per_minute: int = 300, replies_per_chat: int = 3) -> None:
        self.audit = audit
        self.clock = clock
        self.max_windows = max_windows
        self.rows_per_chat = rows_per_chat
        self.rows_per_minute = rows_per_minute
        self.replies_per_chat = replies_per_chat
        self._windows: OrderedDict[Key, _Window] = OrderedDict()  # oldest first
        self._chats: OrderedDict[tuple[str, str], _Budget] = OrderedDict()
        self._total: _Budget | None = None
        self._closing: list[_Window] = []

    def __len__(self) -> int:
        """Open windows (what memory holds per flood)."""
        return len(self._windows)

    @property
    def tracked_chats(self) -> int:
        return len(self._chats)

    async def note(self, values: dict[str, Any]) -> bool:
        """Count one refused attempt; ``values`` is its audit row (:meth:`AuditLog.entry`).

        True when the attempt opened a window of its own and its row was written: only such an attempt
        may be answered. Attempts inside an open window, or beyond the row budgets, return False."""
        now = self.clock.now()
        self._expire(now)
        if self._closing:
            await self._write_closing()
        platform, user_id, chat_id, decision = (values["platform"], values["user_id"], values["chat_id"],
                                                values["decision"])
        key: Key = (platform, user_id, chat_id, decision)
        if self._count(key, now):
            return False
        chat = self._budget(self._chats, (platform, chat_id), now)
        if self._total is None or now - self._total.started >= WINDOW:
            self._total = _Budget(now)
        own = chat.rows < self.rows_per_chat and self._total.rows < self.rows_per_minute
        if not own:
            note = f"; more than {self.rows_per_chat} senders in this chat this minute"
            if self._total.rows >= self.rows_per_minute:
                key = (ANYONE, ANYONE, ANYONE, decision)
                values = {**values, "platform": ANYONE, "chat_id": ANYONE}
                note = f"; more than {self.rows_per_minute} refused senders this minute"
            else:
                key = (platform, ANYONE, chat_id, decision)
            values = {**values, "user_id": ANYONE, "command": ANYONE, "args": "",
                      "result": str(values["result"]) + note}
            if self._count(key, now):
                return False
        chat.rows += 1
        self._total.rows += 1
        window = _Window(now)
        self._windows[key] = window
        while len(self._windows) > self.max_windows:
            self._closing.append(self._windows.popitem(last=False)[1])
        window.row_id = await self.audit.write({**values, "attempts": 1})
        return own and window.row_id is not None

    def may_reply(self, platform: str, chat_id: str) -> bool:
        """Spend one of the chat's answers for this minute; False once they are used up."""
        budget = self._budget(self._chats, (platform, chat_id), self.clock.now())
        if budget.replies >= self.replies_per_chat:
            return False
        budget.replies += 1
        return True

    async def flush(self) -> None:
        """Write the count of every window whose row is behind (all of them on stop)."""
        self._expire(self.clock.now())
        closing, self._closing = self._closing, []
        await self._write(closing + [w for w in self._windows.values() if w.attempts > w.written])

    def _count(self, key: Key, now: datetime) -> bool:
        window = self._windows.get(key)
        if window is None:
            return False
        if now - window.started >= WINDOW:  # the clock stepped back past the sweep; close it now
            self._closing.append(self._windows.pop(key))
            return False
        window.attempts += 1
        return True

    def _budget(self, table: OrderedDict[tuple[str, str], _Budget], key: tuple[str, str], now: datetime) -> _Budget:
        budget = table.get(key)
        if budget is None or now - budget.started >= WINDOW:
            table.pop(key, None)
            budget = table[key] = _Budget(now)
            while len(table) > self.max_windows:
                table.popitem(last=False)
        return budget

    def _expire(self, now: datetime) -> None:
        """Close windows older than a minute; they are ordered by age, so only the front is looked at."""
        while self._windows:
            key, window = next(iter(self._windows.items()))
            if now - window.started < WINDOW:
                break
            del self._windows[key]
            self._closing.append(window)
        while self._chats:
            key2, budget = next(iter(self._chats.items()))
            if now - budget.started < WINDOW:
                break
            del self._chats[key2]

    async def _write_closing(self) -> None:
        closing, self._closing = self._closing, []
        await self._write(closing)

    async def _write(self, windows: list[_Window]) -> None:
        counts = [(w.row_id, w.attempts) for w in windows if w.row_id is not None and w.attempts > w.written]
        if not counts:
            return
        await self.audit.set_attempts(counts)
        for w in windows:
            w.written = w.attempts
