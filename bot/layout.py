"""Layout for the screen a reply lands on, free of any platform: a :class:`~bot.reply.Table` as an
aligned grid where that fits, otherwise one block per record.

Phones show about 32-41 monospace characters per line (Telegram ~32-37, Discord ~33, Slack ~41); a
wider line wraps and an aligned table becomes fragments. So each renderer asks :func:`choose` for
the layout at its width:

- :class:`Grid` — the table fits (after leaving out the table's ``optional`` columns if needed): the
  columns kept, their widths and alignment (numbers to the right). Its separator is as wide as the
  table, so it never wraps either.
- :class:`Records` — it does not fit: each row becomes a :class:`Record`, a first line of its key
  cells (``Table.key``, by default the first column) and its other cells as ``label value`` fields.
  :meth:`Record.field_lines` packs the fields into lines of at most the width, joined by `` · ``; a
  field is never split between lines, so a date or an amount is never broken mid-token, and a field
  longer than the width stands on a line of its own (:func:`wrap` breaks it at spaces where the
  renderer needs hard lines, as a terminal does).

Renderers add their own markup (bold first lines, code blocks) and escaping; lengths here are
counted in characters of the clean text (:mod:`bot.neutral` runs first).

:func:`split` is the pagination shared by the renderers: units that must stay whole (a row, a
record, a line) are packed greedily into pages under a budget that the platform measures its own way.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from bot.reply import Table

SEPARATOR = " · "
GAP = "  "  # between grid columns
NONE = "(none)"
NUMERIC = re.compile(r"^[+-]?[0-9][0-9,]*(\.[0-9]+)?%?( [A-Z]{2,6})?( \([+-]?[0-9][0-9,]*(\.[0-9]+)?%\))?$")

T = TypeVar("T")


def cell(text: str) -> str:
    """A cell on one line: line breaks and runs of spaces become one space."""
    return " ".join(text.split()) if ("\n" in text or "\t" in text or "  " in text) else text


@dataclass(frozen=True, slots=True)
class Grid:
    """A table that fits: ``headers``/``rows`` hold only the columns kept."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[int, ...]
    numeric: tuple[bool, ...]
    dropped: tuple[str, ...] = ()
    gap: int = len(GAP)  # spaces between columns: two, or one when that is what makes the table fit

    @property
    def width(self) -> int:
        return sum(self.widths) + self.gap * max(0, len(self.widths) - 1)

    def line(self, cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w)
                 for c, w, num in zip(cells, self.widths, self.numeric, strict=True)]
        return (" " * self.gap).join(parts).rstrip()

    def header_lines(self) -> list[str]:
        """The header and its dashed separator: what every page of the table repeats."""
        return [self.line(self.headers), (" " * self.gap).join("-" * w for w in self.widths)]

    def row_lines(self) -> list[str]:
        return [self.line(r) for r in self.rows] if self.rows else [NONE]


@dataclass(frozen=True, slots=True)
class Record:
    """One row shown on its own: ``key`` cells on the first line, then ``fields`` as (label, value)."""

    key: tuple[str, ...]
    fields: tuple[tuple[str, str], ...]

    @property
    def heading(self) -> str:
        return GAP.join(c for c in self.key if c) or "-"

    def field_texts(self) -> list[str]:
        """Each field as ``label value``, empty ones left out; a record with one field shows the value alone."""
        if len(self.fields) == 1:
            return [self.fields[0][1]] if self.fields[0][1] else []
        return [f"{label} {value}" if label else value for label, value in self.fields if value]

    def field_lines(self, width: int | None) -> list[str]:
        """The fields packed into lines of at most ``width`` characters, never splitting a field."""
        texts = self.field_texts()
        if width is None:
            return [SEPARATOR.join(texts)] if texts else []
        lines: list[str] = []
        current = ""
        for text in texts:
            joined = f"{current}{SEPARATOR}{text}" if current else text
            if current and len(joined) > width:
                lines.append(current)
                current = text
            else:
                current = joined
        if current:
            lines.append(current)
        return lines


@dataclass(frozen=True, slots=True)
class Records:
    records: tuple[Record, ...]


Layout = Grid | Records


def grid(headers: Sequence[str], rows: Sequence[Sequence[str]], dropped: tuple[str, ...] = ()) -> Grid:
    heads = tuple(cell(h) for h in headers)
    body = tuple(tuple(cell(c) for c in row) for row in rows)
    widths = [len(h) for h in heads]
    for row in body:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = tuple(bool(body) and all(NUMERIC.match(r[i]) or r[i] == "-" for r in body) for i in range(len(heads)))
    return Grid(heads, body, tuple(widths), numeric, dropped)


def records(table: Table) -> Records:
    key = table.key or table.headers[:1]
    key_at = [i for i, h in enumerate(table.headers) if h in key]
    rest = [i for i in range(len(table.headers)) if i not in key_at]
    out = []
    for row in table.rows:
        cells = [cell(c) for c in row]
        out.append(Record(tuple(cells[i] for i in key_at), tuple((cell(table.headers[i]), cells[i]) for i in rest)))
    return Records(tuple(out))


def _tight(g: Grid, width: int) -> Grid | None:
    """``g`` with two spaces between columns if it fits in ``width``, else with one, else None."""
    if g.width <= width:
        return g
    tight = replace(g, gap=1)
    return tight if tight.width <= width else None


def choose(table: Table, width: int | None) -> Layout:
    """A :class:`Grid` when the table fits in ``width`` characters (``None``: any width) — with two
    spaces between columns, or one, and leaving out its optional columns one by one if that makes
    it fit; otherwise :class:`Records`."""
    full = grid(table.headers, table.rows)
    if width is None or full.width <= width:
        return full
    fits = _tight(full, width)
    if fits is not None:
        return fits
    dropped: list[str] = []
    for name in table.optional:
        dropped.append(name)
        keep = [i for i, h in enumerate(table.headers) if h not in dropped]
        narrower = grid([table.headers[i] for i in keep], [[r[i] for i in keep] for r in table.rows], tuple(dropped))
        fits = _tight(narrower, width)
        if fits is not None:
            return fits
    return records(table)


_GLUE = "\ue000"  # a private-use character: holds a separator dot to the word before it while wrapping


def wrap(text: str, width: int | None, indent: str = "") -> list[str]:
    """``text`` as lines of at most ``width`` characters (each after the first indented), broken at
    spaces; only a word longer than a whole line is cut, and no line starts with a `` · `` separator.
    ``None``: one line."""
    if width is None or len(text) <= width:
        return [text]
    glued = text.replace(SEPARATOR, _GLUE + SEPARATOR.lstrip())
    lines = textwrap.wrap(glued, width, subsequent_indent=indent, break_on_hyphens=False, drop_whitespace=True)
    return [line.replace(_GLUE, " ") for line in lines] or [""]


def split(units: Sequence[T], cost: Callable[[T], int], budget: Callable[[int], int]) -> list[list[T]]:
    """Units packed greedily into pages: page ``k`` (from 0) holds units whose total ``cost`` stays
    within ``budget(k)``. A unit bigger than a whole page gets a page of its own (the caller cuts it).
    Never returns an empty page; no units, no pages."""
    pages: list[list[T]] = []
    current: list[T] = []
    used = 0
    for unit in units:
        c = cost(unit)
        if current and used + c > budget(len(pages)):
            pages.append(current)
            current, used = [], 0
        current.append(unit)
        used += c
    if current:
        pages.append(current)
    return pages


def with_icon(icon: str, line: str) -> str:
    """``icon`` (a style's mark, e.g. ``"✅ "``) before ``line`` - unless the line already opens with a
    symbol of its own (``"🛑 Trading is KILLED"``): two marks in a row read as noise."""
    first = line.lstrip()[:1]
    if icon and first and unicodedata.category(first) == "So":
        return line
    return icon + line


def numbered(title: str, part: int, parts: int) -> str:
    """``Last 50 trades (2/3)``: a title on each part of a split reply."""
    if parts <= 1:
        return title
    return f"{title} ({part}/{parts})" if title else f"({part}/{parts})"


NUMBER_ROOM = len(" (99/99)")  # what numbering may add to a title; pages reserve it
