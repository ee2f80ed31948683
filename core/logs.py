"""Structured logging: context bound where a message enters, text on a terminal, JSON on request.

Context (platform, user, command, reference id, ...) is bound with :func:`bind` for the duration
of a ``with`` block and travels with asyncio tasks through a ``ContextVar``. Secret redaction is a
filter installed on every handler by :func:`setup_logging`, so no caller has to remember it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import sys
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_context: ContextVar[dict[str, Any]] = ContextVar("tradectl_log_context", default={})


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


class _RedactAfterFormat(logging.Formatter):
    """Wraps a formatter and redacts the final text, tracebacks included."""

    def __init__(self, inner: logging.Formatter, redact: Any) -> None:
        super().__init__()
        self._inner = inner
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return str(self._redact(self._inner.format(record)))


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
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    if redact is not None:
        formatter = _RedactAfterFormat(formatter, redact)
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
