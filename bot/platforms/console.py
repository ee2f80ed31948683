"""The console chat: the terminal as one more chat platform, for the operator at the machine.

Lines come from stdin — a terminal or a pipe, so ``printf '/status\\n' | tradectl run`` is
scriptable — and go through the same dispatcher as Telegram, as the actor ``console:local`` (an
admin) in the chat ``console:local``. Replies are rendered as plain text with aligned tables;
buttons are numbered, so a confirmation is answered with ``1`` / ``2`` or with the offered
``yes <nonce>`` — both resolve to the same server-side nonce. Engine events received on a queue
are printed one line each with a timestamp.

Rendering is the pure function :func:`render_console`, tested on its own. Everything printed is
clean text (:func:`bot.neutral.clean`): a reason typed on another platform cannot carry an escape
sequence (retitling the window, clearing the screen, writing the clipboard with OSC 52), a carriage
return that overwrites the line, or a bidirectional override into the operator's terminal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import stat
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC
from pathlib import Path
from typing import BinaryIO, Protocol, TextIO, cast

from bot import format as fmt
from bot import layout
from bot.confirmations import cancel_payload, confirm_payload, parse_payload
from bot.dispatcher import Dispatcher
from bot.identity import CONSOLE_ACTOR, CONSOLE_CHAT
from bot.neutral import clean, clean_reply
from bot.notify.formats import Style, from_event
from bot.reply import Buttons, Image, KeyValues, Reply, Table, Text
from core.runtime import Supervisor, TaskFailed
from core.trading import Event
from exchanges.clock import Clock, SystemClock

log = logging.getLogger("tradectl.bot.console")
_ANSWER = re.compile(r"^(yes|y|no|n)\s+(\S+)$", re.IGNORECASE)
_PREFIX = {"error": "error: ", "warning": "warning: ", "success": "ok: ", "plain": ""}


# --- rendering -----------------------------------------------------------------------------------


def _kv(block: KeyValues, width: int | None) -> list[str]:
    """``  key  value`` lines with the keys aligned; on a terminal too narrow for that, ``  key: value``
    lines whose long values wrap at spaces under the key, indented."""
    keys = max((len(k) for k, _ in block.items), default=0)
    lines = _lines(block.title, width) if block.title else []
    aligned = [f"  {k.ljust(keys)}  {layout.cell(v)}" for k, v in block.items]
    if width is None or all(len(line) <= width for line in aligned):
        return lines + aligned
    for key, value in block.items:
        lines.extend(layout.wrap(f"  {key}: {layout.cell(value)}", width, "    "))
    return lines


def _table(block: Table, width: int | None) -> list[str]:
    out = _lines(block.title, width) if block.title else []
    chosen = layout.choose(block, width)
    if isinstance(chosen, layout.Grid):
        out += chosen.header_lines() + chosen.row_lines()
    else:
        for i, record in enumerate(chosen.records):
            if i:
                out.append("")
            out.extend(layout.wrap(record.heading, width, "  "))
            fields = record.field_lines(None if width is None else width - 2)
            out.extend(line for text in fields for line in layout.wrap(f"  {text}", width, "  "))
        if not chosen.records:
            out.append(layout.NONE)
    if block.more:
        out.extend(layout.wrap(block.more, width))
    return out


def _lines(text: str, width: int | None) -> list[str]:
    return [line for raw in text.split("\n") for line in layout.wrap(raw, width)]


def render_console(reply: Reply, save_image: Callable[[Image], str] | None = None, *, width: int | None = None) -> str:
    """A reply as plain terminal text. Buttons are numbered in order; confirmations also show ``yes <nonce>``.

    ``width``: the terminal's columns. A table wider than that is shown one block per row (see
    :mod:`bot.layout`) and long lines wrap at spaces, so nothing is broken mid-word by the terminal;
    None (a pipe, a file) keeps every table and line whole.

    A terminal cannot show an image: with ``save_image`` it is written to a file and its path shown,
    otherwise a placeholder line says what it was.
    """
    sections: list[str] = []
    for block in clean_reply(reply).blocks:
        if isinstance(block, Text):
            sections.append("\n".join(_lines(_PREFIX[block.style] + block.text, width)))
        elif isinstance(block, KeyValues):
            sections.append("\n".join(_kv(block, width)))
        elif isinstance(block, Table):
            sections.append("\n".join(_table(block, width)))
        elif isinstance(block, Image):
            where = f", saved to {save_image(block)}" if save_image is not None else ""
            sections.append("\n".join(_lines(f"[image: {block.caption or 'chart'}, {len(block.png)} bytes{where}]",
                                             width)))
        elif isinstance(block, Buttons):
            sections.append("\n".join(_lines("  ".join(f"[{i}] {b.label}" for i, b in enumerate(block.choices, 1)),
                                             width)))
            hints = []
            for b in block.choices:
                parsed = parse_payload(b.payload)
                if parsed is not None:
                    hints.append(f"{'yes' if parsed[0] == 'confirm' else 'no'} {parsed[1]}")
            if hints:
                sections.append("\n".join(_lines("(type the number, or: " + " / ".join(hints) + ")", width)))
    return "\n".join(sections)


def terminal_width(out: TextIO) -> int | None:
    """The columns of the terminal ``out`` writes to (``COLUMNS`` wins, as for :func:`shutil.get_terminal_size`),
    or None when ``out`` is a pipe or a file: scripts get whole lines."""
    try:
        if not out.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    return shutil.get_terminal_size().columns


def render_event(event: Event, timezone: str = "UTC", label: str = "") -> str:
    """One line per event, as the alerts word it (:mod:`bot.notify.formats`), at its local time.

    ``label`` (``trading.paper_label``, "PAPER · live Kraken prices") heads it as it heads the title of
    every alert the chat platforms get, so simulated trades on real prices never read as real ones.
    """
    alert = from_event(event, Style(timezone=timezone))
    headline = f"{label} · {alert.headline()}" if label else alert.headline()
    return f"{fmt.when(event.ts, timezone)} [{event.severity}] {clean(headline)}"


# --- input ---------------------------------------------------------------------------------------


class LineReader(Protocol):
    async def readline(self) -> bytes: ...


class _PipeReader:
    """stdin (terminal or pipe) through the event loop; restores blocking mode on close so the shell
    is not left with a non-blocking terminal."""

    def __init__(self, reader: asyncio.StreamReader, transport: asyncio.BaseTransport, fd: int) -> None:
        self._reader, self._transport, self._fd = reader, transport, fd

    async def readline(self) -> bytes:
        return await self._reader.readline()

    def close(self) -> None:
        self._transport.close()
        try:
            os.set_blocking(self._fd, True)
        except OSError:
            pass


class FileReader:
    """A regular file on stdin (``tradectl run < commands.txt``): the event loop cannot watch files,
    and reading one never blocks for long."""

    def __init__(self, stream: TextIO | BinaryIO) -> None:
        buffer: BinaryIO | None = getattr(stream, "buffer", None)  # a text stream's bytes underneath
        self._stream = buffer if buffer is not None else cast(BinaryIO, stream)  # no buffer: it is binary

    async def readline(self) -> bytes:
        return self._stream.readline(65536)

    def close(self) -> None:
        pass


async def open_stdin_reader() -> LineReader:
    fd = sys.stdin.fileno()
    mode = os.fstat(fd).st_mode
    # A regular file, or a character device that is not a terminal (/dev/null): the event loop cannot
    # watch either, and reading them never blocks (/dev/null answers end of input at once).
    if stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and not os.isatty(fd)):
        return FileReader(sys.stdin)
    return await open_fd_reader(fd)


async def open_fd_reader(fd: int) -> LineReader:
    """A line reader on a terminal, pipe or socket file descriptor, driven by the event loop."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=65536)
    pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    return _PipeReader(reader, transport, fd)


# --- the component -------------------------------------------------------------------------------


class ConsoleChat:
    """Reads commands from ``reader`` (or one made by ``reader_factory`` at start) and writes replies to ``out``."""

    name = "console"

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        reader: LineReader | None = None,
        reader_factory: Callable[[], Awaitable[LineReader]] | None = None,
        out: TextIO,
        events: asyncio.Queue[Event] | None = None,
        on_eof: Callable[[], None] | None = None,
        on_failure: Callable[[TaskFailed], None] | None = None,
        prompt: bool = False,
        clock: Clock | None = None,
        image_dir: Path | None = None,
        label: str = "",
    ) -> None:
        if reader is None and reader_factory is None:
            raise ValueError("ConsoleChat needs a reader or a reader_factory")
        self.dispatcher = dispatcher
        self._reader = reader
        self._reader_factory = reader_factory
        self._out = out
        self._events = events
        self._on_eof = on_eof
        self._prompt = prompt
        self._clock = clock or SystemClock()
        self._image_dir = image_dir
        self._label = label
        self._supervisor = Supervisor("console", on_failure)
        self._choices: tuple[str, ...] = ()
        self._running = False
        self.eof = asyncio.Event()

    async def start(self) -> None:
        if self._running:
            return
        if self._reader is None and self._reader_factory is not None:
            self._reader = await self._reader_factory()
        self._running = True
        self._supervisor.spawn("console:input", self._input_loop())
        if self._events is not None:
            self._supervisor.spawn("console:events", self._event_loop())

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        await self._supervisor.stop()
        close = getattr(self._reader, "close", None)
        if close is not None:
            close()

    def _write(self, text: str) -> None:
        text = clean(text)  # every line the terminal gets, whatever produced it
        self._out.write(text if text.endswith("\n") else text + "\n")
        self._out.flush()

    async def _input_loop(self) -> None:
        assert self._reader is not None
        if self._prompt:
            self._write("console chat ready: type /help (commands work with or without the leading /)")
        while True:
            try:
                raw = await self._reader.readline()
            except ValueError:  # a line over the reader's limit: skip it, keep reading
                self._write("error: line too long")
                continue
            if not raw:
                log.info("console input ended")
                self.eof.set()
                if self._on_eof is not None:
                    self._on_eof()
                return
            line = raw.decode("utf-8", errors="replace").strip()
            if line:
                await self.handle_line(line)

    async def handle_line(self, line: str) -> str | None:
        """Dispatch one console line and print the reply; returns the rendered text (None if silent)."""
        if line.isdigit() and self._choices and not 1 <= int(line) <= len(self._choices):
            self._write(f"error: choose a number from 1 to {len(self._choices)}")
            return None
        payload = self._answer_payload(line)
        try:
            if payload is not None:
                reply = await self.dispatcher.handle_callback(CONSOLE_ACTOR, CONSOLE_CHAT, payload)
                self._choices = ()
            else:
                text = line if line.startswith("/") else "/" + line
                reply = await self.dispatcher.handle_text(CONSOLE_ACTOR, CONSOLE_CHAT, text, self._clock.now())
        except Exception:
            log.exception("console command failed")
            self._write("error: something went wrong (see the log)")
            return None
        if reply is None:
            return None
        if reply.buttons:
            self._choices = tuple(b.payload for b in reply.buttons)
        rendered = render_console(reply, self._save_image if self._image_dir is not None else None,
                                  width=terminal_width(self._out))
        self._write(rendered)
        return rendered

    def _save_image(self, image: Image) -> str:
        """Write an image under ``image_dir`` as ``<UTC time>-<caption>.png``; returns the path."""
        assert self._image_dir is not None
        slug = re.sub(r"[^a-z0-9]+", "-", (image.caption or "chart").lower()).strip("-")[:40] or "chart"
        stamp = self._clock.now().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        try:
            self._image_dir.mkdir(parents=True, exist_ok=True)
            path = self._image_dir / f"{stamp}-{slug}.png"
            path.write_bytes(image.png)
        except OSError as exc:
            log.warning("console: could not save the image: %s", exc)
            return "(nowhere: the image directory is not writable)"
        return str(path)

    def _answer_payload(self, line: str) -> str | None:
        if line.isdigit() and self._choices:
            return self._choices[int(line) - 1]
        m = _ANSWER.match(line)
        if m:
            nonce = m.group(2)
            return confirm_payload(nonce) if m.group(1).lower().startswith("y") else cancel_payload(nonce)
        return None

    async def _event_loop(self) -> None:
        assert self._events is not None
        while True:
            event = await self._events.get()
            self._write(render_event(event, self.dispatcher.timezone, self._label))
