"""Structured logging: context bound where a message enters, text on a terminal, JSON on request.

Context (platform, user, command, reference id, ...) is bound with :func:`bind` for the duration
of a ``with`` block and travels with asyncio tasks through a ``ContextVar``. Secret redaction is a
filter installed on every handler by :func:`setup_logging`, so no caller has to remember it.

Log lines carry text chat users typed (a ``/pause`` reason, an unknown command). A text line is
read on a terminal (``journalctl -f``, ``tail -f``), where an escape sequence in that text would
act: retitle the window, clear the screen, write the clipboard (OSC 52). So the text formatter
writes every control character except newline and tab as a visible escape (``\\x1b``), after
redaction; JSON lines are safe as they are (``json.dumps`` escapes them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

# never mutated: bind() sets a new mapping, so the shared empty default is safe
_context: ContextVar[Mapping[str, Any]] = ContextVar("tradectl_log_context", default=MappingProxyType({}))


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def context() -> dict[str, Any]:
    return dict(_context.get())


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get()
        record.ctx = {**ctx, **getattr(record, "fields", {})}
        return True


# C0 controls but tab and newline, DEL, C1 controls, the bidirectional overrides and isolates (they
# reorder what a reader sees), and lone surrogates (not text; writing them would fail).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with terminal control characters (all but newline and tab) written as ``\\x..``."""
    return _UNSAFE.sub(_escape, text)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        msg = record.getMessage()
        ctx = getattr(record, "ctx", {})
        extra = " ".join(f"{k}={v}" for k, v in ctx.items())
        line = f"{ts} {record.levelname:<7} {record.name}: {msg}" + (f"  [{extra}]" if extra else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(getattr(record, "ctx", {}))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class _Finish(logging.Formatter):
    """Wraps a formatter: redacts the final text, tracebacks included, then escapes control characters
    (redaction first, so a secret is matched as it was registered)."""

    def __init__(self, inner: logging.Formatter, redact: Any, escape: bool) -> None:
        super().__init__()
        self._inner = inner
        self._redact = redact
        self._escape = escape

    def format(self, record: logging.LogRecord) -> str:
        text = self._inner.format(record)
        if self._redact is not None:
            text = str(self._redact(text))
        return escape_controls(text) if self._escape else text


def setup_logging(
    *,
    level: str = "INFO",
    fmt: str = "auto",
    file: Path | None = None,
    max_bytes: int = 10_000_000,
    backups: int = 5,
    redact: Any = None,
    stream: Any = None,
    extra_handlers: Sequence[logging.Handler] = (),
) -> None:
    """Configure the root logger. ``redact`` is a ``str -> str`` applied to every formatted line."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "text" if getattr(stream, "isatty", lambda: False)() else "json"
    inner: logging.Formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    formatter: logging.Formatter = _Finish(inner, redact, escape=fmt != "json")
    handlers: list[logging.Handler] = [logging.StreamHandler(stream)]
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        )
    handlers.extend(extra_handlers)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(_ContextFilter())
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "aiosqlite", "asyncio", "websockets", "discord", "telegram.ext", "apscheduler",
                  "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
