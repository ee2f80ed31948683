"""Reply blocks as Telegram messages: HTML text, monospace tables, photos and inline keyboards.

A pure function of the :class:`~bot.reply.Reply`, so it is tested without a network. Telegram
refuses a text over 4096 characters and a photo caption over 1024, so long replies are split on
line boundaries into several messages; a table cut in two stays monospace in both halves (each part
gets its own ``<pre>``). Lengths are counted in UTF-16 code units of the HTML source, which is never
shorter than what Telegram counts (the text after parsing), so a part is never refused for length.

Every string is made neutral first (:mod:`bot.neutral`): cleaned of controls, invisible characters
and lone surrogates, then HTML-escaped, so whatever a user typed shows as text and never as a tag.

Buttons go on the message they follow (one keyboard row per :class:`~bot.reply.Buttons` block);
their payload is sent back verbatim as ``callback_data``. Button styles have no equivalent on
Telegram and are not shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from bot.neutral import clean_reply, telegram_html
from bot.reply import Button, Buttons, Image, KeyValues, Reply, Table, Text

MAX_TEXT = 4096
MAX_CAPTION = 1024
_PRE_TAGS = len("<pre>") + len("</pre>")
_ICON = {"plain": "", "error": "⛔ ", "warning": "⚠️ ", "success": "✅ "}
_NUMERIC = re.compile(r"^[+-]?[0-9][0-9,]*(\.[0-9]+)?%?( [A-Z]{2,6})?$")

Keyboard = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True, slots=True)
class TextMessage:
    html: str
    keyboard: Keyboard = ()


@dataclass(frozen=True, slots=True)
class PhotoMessage:
    png: bytes = field(repr=False)
    caption_html: str = ""
    keyboard: Keyboard = ()


OutMessage = TextMessage | PhotoMessage


def units(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji can count twice)."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """Any text as Telegram HTML that shows it as typed (see :func:`bot.neutral.telegram_html`)."""
    return telegram_html(text)


@dataclass(frozen=True, slots=True)
class _Line:
    """One line of a message: its HTML, whether it sits inside ``<pre>``, and its raw text (for
    cutting a single line that is too long by itself)."""

    html: str
    pre: bool
    raw: str


def _text_lines(block: Text) -> list[_Line]:
    lines = block.text.split("\n") or [""]
    lines[0] = _ICON[block.style] + lines[0]
    return [_Line(escape(line), False, line) for line in lines]


def _kv_lines(block: KeyValues) -> list[_Line]:
    out = [_Line(f"<b>{escape(block.title)}</b>", False, block.title)] if block.title else []
    for key, value in block.items:
        flat = " ".join(value.split())
        out.append(_Line(f"<b>{escape(key)}</b>: {escape(flat)}", False, f"{key}: {flat}"))
    return out


def _table_lines(block: Table) -> list[_Line]:
    rows = [tuple(" ".join(c.split()) for c in row) for row in block.rows]
    widths = [len(h) for h in block.headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [bool(rows) and all(_NUMERIC.match(r[i]) or r[i] == "-" for r in rows) for i in range(len(widths))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(cells, widths, numeric, strict=True)).rstrip()

    body = [line(block.headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]
    if not rows:
        body.append("(none)")
    out = [_Line(f"<b>{escape(block.title)}</b>", False, block.title)] if block.title else []
    return out + [_Line(escape(text), True, text) for text in body]


def _cut(line: _Line, budget: int) -> list[_Line]:
    """A line longer than a whole message: cut its raw text so each escaped piece fits (markup lost)."""
    pieces: list[_Line] = []
    rest = line.raw
    while rest:
        n = min(len(rest), budget)
        while units(escape(rest[:n])) > budget:
            n = max(1, n * 3 // 4)
        pieces.append(_Line(escape(rest[:n]), line.pre, rest[:n]))
        rest = rest[n:]
    return pieces or [line]


def pack(lines: list[_Line], limit: int = MAX_TEXT) -> list[str]:
    """Lines into as few HTML texts of at most ``limit`` units as possible, never splitting a line."""
    budget = limit - _PRE_TAGS
    expanded: list[_Line] = []
    for line in lines:
        expanded.extend(_cut(line, budget) if units(line.html) > budget else [line])
    chunks: list[list[_Line]] = []
    current: list[_Line] = []
    size = 0
    for line in expanded:
        cost = units(line.html) + (1 if current else 0)
        if line.pre and (not current or not current[-1].pre):
            cost += _PRE_TAGS
        if current and size + cost > limit:
            chunks.append(current)
            current, size = [], 0
            cost = units(line.html) + (_PRE_TAGS if line.pre else 0)
        current.append(line)
        size += cost
    if current:
        chunks.append(current)
    texts = (_join(_trim(chunk)) for chunk in chunks)
    return [text for text in texts if text.strip()]


def _trim(lines: list[_Line]) -> list[_Line]:
    """Without blank lines at either end (a block separator that fell on a message boundary)."""
    start, end = 0, len(lines)
    while start < end and not lines[start].pre and not lines[start].html.strip():
        start += 1
    while end > start and not lines[end - 1].pre and not lines[end - 1].html.strip():
        end -= 1
    return lines[start:end]


def _join(lines: list[_Line]) -> str:
    parts: list[str] = []
    run: list[str] = []
    for line in lines:
        if line.pre:
            run.append(line.html)
            continue
        if run:
            parts.append("<pre>" + "\n".join(run) + "</pre>")
            run = []
        parts.append(line.html)
    if run:
        parts.append("<pre>" + "\n".join(run) + "</pre>")
    return "\n".join(parts)


def render_telegram(reply: Reply, *, limit: int = MAX_TEXT, caption_limit: int = MAX_CAPTION) -> list[OutMessage]:
    """The messages to send for ``reply``, in order. Empty when the reply has nothing to show."""
    reply = clean_reply(reply)
    out: list[OutMessage] = []
    lines: list[_Line] = []

    def flush() -> None:
        if lines:
            out.extend(TextMessage(text) for text in pack(lines, limit))
            lines.clear()

    for block in reply.blocks:
        if isinstance(block, Buttons):
            flush()
            row = tuple(b if b.label.strip() else replace(b, label="?") for b in block.choices)  # no empty label
            if not row:
                continue
            if not out:
                out.append(TextMessage("Choose:"))
            last = out[-1]
            out[-1] = replace(last, keyboard=last.keyboard + (row,))
            continue
        if isinstance(block, Image):
            flush()
            caption = escape(block.caption)
            if units(caption) <= caption_limit:
                out.append(PhotoMessage(block.png, caption))
            else:  # the photo first, then the whole caption as text
                out.append(PhotoMessage(block.png, ""))
                lines.extend(_text_lines(Text(block.caption)))
            continue
        if lines:
            lines.append(_Line("", False, ""))  # a blank line between blocks
        if isinstance(block, Text):
            lines.extend(_text_lines(block))
        elif isinstance(block, KeyValues):
            lines.extend(_kv_lines(block))
        elif isinstance(block, Table):
            lines.extend(_table_lines(block))
    flush()
    return out
