"""Reply blocks as Telegram messages: HTML text, monospace tables or per-record blocks, photos and
inline keyboards.

A pure function of the :class:`~bot.reply.Reply`, so it is tested without a network.

- **Layout for a phone.** Telegram's mobile clients show about 32 monospace characters per line, so
  a table is a ``<pre>`` grid only when it fits in :data:`WIDTH` characters (:func:`bot.layout.choose`);
  otherwise each row becomes a block: its key cells in bold on the first line, then short
  ``label value`` lines in the normal font, which wraps at spaces like any text. Key-value blocks
  stay ``key: value`` lines.
- **Long replies** are split into several messages on line boundaries, never inside a row or a
  record; each part of a split block starts with its title numbered (``Last 50 trades (2/3)``) and,
  for a grid, its header again, so every message reads on its own. Telegram refuses a text over 4096
  characters and a photo caption over 1024; lengths are counted in UTF-16 code units of the HTML
  source, which is never shorter than what Telegram counts, so a part is never refused for length.
  A reply longer than :data:`MAX_MESSAGES` messages is cut, and its last message says how many rows
  were left out; a table's own ``more`` hint (how to see the next page) follows its last row.

Every string is made neutral first (:mod:`bot.neutral`): cleaned of controls, invisible characters
and lone surrogates, then HTML-escaped, so whatever a user typed shows as text and never as a tag.

Buttons go on the message they follow (one keyboard row per :class:`~bot.reply.Buttons` block, wrapped
after :data:`ROW_BUTTONS` so a phone shows each label whole);
their payload is sent back verbatim as ``callback_data``. Button styles have no equivalent on
Telegram and are not shown.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field, replace

from bot import layout
from bot.identity import Role
from bot.neutral import clean_reply, cut, telegram_html
from bot.registry import Registry, needs_confirmation
from bot.reply import Button, Buttons, Image, KeyValues, Reply, Table, Text
from core.settings import ChatSettings

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_MESSAGES = 10  # more than this is a flood on a phone (and about ten seconds of Telegram's rate)
WIDTH = 32  # monospace characters a phone shows on one line of a <pre> block
MAX_TITLE = 200
_PRE_TAGS = len("<pre>") + len("</pre>")
_NOTE_ROOM = 120  # what the "not shown" note of a cut reply may take
ROW_BUTTONS = 4  # buttons side by side at most (Telegram allows 8, too narrow for "BTC/USD" on a phone)
_ICON = {"plain": "", "error": "⛔ ", "warning": "⚠️ ", "success": "✅ "}

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


_BLANK = _Line("", False, "")


@dataclass(frozen=True, slots=True)
class _Section:
    """One block as lines: ``units`` stay whole within a message; every part of the block starts with
    its (numbered) ``title`` and the ``repeat`` lines (a grid's header)."""

    title: str
    units: tuple[tuple[_Line, ...], ...]
    repeat: tuple[_Line, ...] = ()
    gap: bool = False  # a blank line between units (records)
    rows: bool = False  # units are a table's rows, for the note of a cut reply


@dataclass(frozen=True, slots=True)
class _Placed:
    line: _Line
    title_of: int = -1  # >= 0: this line is the title of that section, numbered once the parts are known
    unit: tuple[int, int] = (-1, -1)  # (section, unit) the line belongs to


def _title_line(title: str) -> _Line:
    return _Line(f"<b>{escape(title)}</b>", False, title)


def _text_section(block: Text) -> _Section:
    lines = block.text.split("\n") or [""]
    lines[0] = layout.with_icon(_ICON[block.style], lines[0])
    return _Section("", tuple((_Line(escape(line), False, line),) for line in lines))


def _kv_section(block: KeyValues) -> _Section:
    units = []
    for key, value in block.items:
        flat = " ".join(value.split())
        units.append((_Line(f"<b>{escape(key)}</b>: {escape(flat)}", False, f"{key}: {flat}"),))
    return _Section(block.title, tuple(units))


def _table_section(block: Table) -> _Section:
    chosen = layout.choose(block, WIDTH)
    more = ((_Line(escape(block.more), False, block.more),),) if block.more else ()
    if isinstance(chosen, layout.Grid):
        rows = tuple((_Line(escape(text), True, text),) for text in chosen.row_lines())
        repeat = tuple(_Line(escape(text), True, text) for text in chosen.header_lines())
        return _Section(block.title, rows + more, repeat, rows=True)
    records = tuple((_Line(f"<b>{escape(r.heading)}</b>", False, r.heading),
                     *(_Line(escape(text), False, text) for text in r.field_lines(WIDTH)))
                    for r in chosen.records) or ((_Line(layout.NONE, False, layout.NONE),),)
    return _Section(block.title, records + more, gap=True, rows=True)


def _cut(line: _Line, budget: int) -> list[_Line]:
    """A line longer than a whole message: cut its raw text so each escaped piece fits (markup lost)."""
    pieces: list[_Line] = []
    rest = line.raw
    budget = max(budget, 6)  # one escaped character (``&amp;``, a surrogate pair) always fits
    while rest:
        n = min(len(rest), budget)
        while units(escape(rest[:n])) > budget:
            n = max(1, n * 3 // 4)
        pieces.append(_Line(escape(rest[:n]), line.pre, rest[:n]))
        rest = rest[n:]
    return pieces or [line]


def _cost(lines: list[_Line], after: _Line | None) -> int:
    """What ``lines`` add to a message whose last line is ``after`` (None: an empty message)."""
    total = 0
    for line in lines:
        total += units(line.html) + (1 if after is not None else 0)
        if line.pre and (after is None or not after.pre):
            total += _PRE_TAGS
        after = line
    return total


def _short_title(title: str, limit: int) -> str:
    """``title`` cut so that its HTML takes at most ``limit`` units."""
    return html.unescape(cut(title, limit, escape, measure=units))


def _fitting(section: _Section, limit: int) -> _Section:
    """``section`` with every unit small enough for a message of its own under the title and header:
    a bigger unit is split into lines, and a line still too long is cut. In a message too small for
    that (a test's tiny limit), the title is shortened and the header not repeated."""
    title = _short_title(section.title, min(MAX_TITLE, limit // 4) - layout.NUMBER_ROOM)
    head = [_title_line(title + " " * layout.NUMBER_ROOM)] if section.title else []
    if _cost([*head, *section.repeat], None) <= limit // 2:
        head += section.repeat
    section = replace(section, title=title, repeat=tuple(head[1:] if section.title else head))
    room = limit - _cost(head, None) - 1
    if all(_cost(list(unit), head[-1] if head else None) <= room for unit in section.units):
        return section
    out: list[tuple[_Line, ...]] = []
    for unit in section.units:
        if _cost(list(unit), head[-1] if head else None) <= room:
            out.append(unit)
            continue
        for line in unit:
            pieces = _cut(line, room - _PRE_TAGS) if units(line.html) > room - _PRE_TAGS else [line]
            out.extend((piece,) for piece in pieces)
    return replace(section, units=tuple(out))


def _pack(sections: list[_Section], limit: int) -> list[list[_Placed]]:
    """Sections into messages of at most ``limit`` units; a section that goes on in the next message
    starts it with its title and header again."""
    messages: list[list[_Placed]] = []
    current: list[_Placed] = []
    size = 0
    for si, section in enumerate(sections):
        title = [_Placed(_title_line(section.title + " " * layout.NUMBER_ROOM), si)] if section.title else []
        head = title + [_Placed(line) for line in section.repeat]
        opened = False
        for ui, unit in enumerate(section.units or ((),)):  # a title with nothing under it still shows
            lines = [_Placed(line, unit=(si, ui)) for line in unit]
            if not opened:
                lines = ([_Placed(_BLANK)] if current else []) + head + lines
            elif section.gap:
                lines = [_Placed(_BLANK), *lines]
            cost = _cost([p.line for p in lines], current[-1].line if current else None)
            if current and size + cost > limit:
                messages.append(current)
                current, size = [], 0
                lines = head + [_Placed(line, unit=(si, ui)) for line in unit]
                cost = _cost([p.line for p in lines], None)
            current.extend(lines)
            size += cost
            opened = True
    if current:
        messages.append(current)
    return messages


def _finish(messages: list[list[_Placed]], sections: list[_Section]) -> list[str]:
    """The HTML of each message, with every title numbered by the parts of its section."""
    parts = [0] * len(sections)
    for message in messages:
        for placed in message:
            if placed.title_of >= 0:
                parts[placed.title_of] += 1
    seen = [0] * len(sections)
    out: list[str] = []
    for message in messages:
        lines: list[_Line] = []
        for placed in message:
            if placed.title_of >= 0:
                si = placed.title_of
                seen[si] += 1
                lines.append(_title_line(layout.numbered(sections[si].title, seen[si], parts[si])))
            else:
                lines.append(placed.line)
        text = _join(_trim(lines))
        if text.strip():
            out.append(text)
    return out


def _note(dropped: list[_Placed], sections: list[_Section], max_messages: int) -> _Line:
    rows = len({p.unit for p in dropped if p.unit[0] >= 0 and sections[p.unit[0]].rows})
    lines = len({p.unit for p in dropped if p.unit[0] >= 0 and not sections[p.unit[0]].rows})
    what = " and ".join(x for x in (f"{rows} more rows" if rows else "", f"{lines} more lines" if lines else "") if x)
    text = f"… {what or 'the rest'} not shown: the reply is longer than {max_messages} messages."
    return _Line(escape(text), False, text)


def paginate(sections: list[_Section], limit: int = MAX_TEXT, max_messages: int = MAX_MESSAGES) -> list[str]:
    """Sections as the HTML of at most ``max_messages`` messages of at most ``limit`` units each."""
    sections = [_fitting(section, limit) for section in sections]
    messages = _pack(sections, limit)
    if len(messages) > max_messages:
        sections = [_fitting(section, limit - _NOTE_ROOM) for section in sections]
        messages = _pack(sections, limit - _NOTE_ROOM)
        dropped = [p for message in messages[max_messages:] for p in message]
        messages = messages[:max_messages]
        messages[-1] = messages[-1] + [_Placed(_BLANK), _Placed(_note(dropped, sections, max_messages))]
    return _finish(messages, sections)


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


def _section(block: Text | KeyValues | Table) -> _Section:
    if isinstance(block, Text):
        return _text_section(block)
    if isinstance(block, KeyValues):
        return _kv_section(block)
    return _table_section(block)


def render_telegram(reply: Reply, *, limit: int = MAX_TEXT, caption_limit: int = MAX_CAPTION,
                    max_messages: int = MAX_MESSAGES) -> list[OutMessage]:
    """The messages to send for ``reply``, in order. Empty when the reply has nothing to show."""
    reply = clean_reply(reply)
    out: list[OutMessage] = []
    sections: list[_Section] = []

    def flush() -> None:
        if sections:
            out.extend(TextMessage(text) for text in paginate(sections, limit, max_messages))
            sections.clear()

    for block in reply.blocks:
        if isinstance(block, Buttons):
            flush()
            row = tuple(b if b.label.strip() else replace(b, label="?") for b in block.choices)  # no empty label
            if not row:
                continue
            if not out:
                out.append(TextMessage("Choose:"))
            last = out[-1]
            rows = tuple(row[i:i + ROW_BUTTONS] for i in range(0, len(row), ROW_BUTTONS))
            out[-1] = replace(last, keyboard=last.keyboard + rows)
            continue
        if isinstance(block, Image):
            flush()
            caption = escape(block.caption)
            if units(caption) <= caption_limit:
                out.append(PhotoMessage(block.png, caption))
            else:  # the photo first, then the whole caption as text
                out.append(PhotoMessage(block.png, ""))
                sections.append(_text_section(Text(block.caption)))
            continue
        sections.append(_section(block))
    flush()
    return out


MENU_COMMANDS = ("status", "positions", "pnl", "trades", "help")  # read-only; never /kill


def reply_menu(registry: Registry, settings: ChatSettings) -> tuple[tuple[str, ...], ...]:
    """Rows of the persistent reply keyboard (``telegram.reply_keyboard``): the common read-only
    commands that every allowlisted role may run and that ask no confirmation, as the texts the
    buttons send (a press is an ordinary message from the user: every check applies)."""
    names = [f"/{spec.name}" for spec in (registry.get(n) for n in MENU_COMMANDS)
             if spec is not None and spec.role <= Role.VIEWER and not spec.mutates
             and not needs_confirmation(spec, settings)]
    return tuple(tuple(names[i:i + 3]) for i in range(0, len(names), 3))
