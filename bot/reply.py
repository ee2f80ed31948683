"""What a command returns: a :class:`Reply` made of typed blocks, never markup.

Each platform adapter renders these blocks its own way (Telegram HTML and inline keyboards, Discord
embeds and buttons, Slack Block Kit, console text); escaping, length limits and layout are the
renderer's business. Values arrive already formatted as strings (see :mod:`bot.format`) so every
platform shows the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

TextStyle = Literal["plain", "error", "warning", "success"]
ButtonStyle = Literal["primary", "danger", "secondary"]

# Telegram's callback_data limit; Discord (100) and Slack (2000) allow more, so this bounds all three.
MAX_PAYLOAD_BYTES = 64
# A command button's payload: ``run:`` and the command line it stands for, without the slash
# (``run:trades 10 2``). Pressing it is the same as the presser typing ``/trades 10 2``.
RUN_PREFIX = "run:"
MAX_BUTTONS = 8  # choices offered as buttons at most; more are listed as text only


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    style: TextStyle = "plain"


@dataclass(frozen=True, slots=True)
class KeyValues:
    title: str
    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of records. A renderer shows it as an aligned table where that fits the screen, otherwise one
    block per record (see :mod:`bot.layout`); the optional fields help it do that well.

    ``key``: the headers of the columns that name a record, shown together on its first line when the
    table is shown as records (default: the first column). ``optional``: headers of columns a narrow
    table may leave out, the first one first; records always show every column. ``more``: how to see
    what this reply leaves out (e.g. ``"Older trades: /trades 50 page 2"``), shown after the last row.
    """

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    key: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    more: str = ""

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.headers):
                raise ValueError(f"table {self.title!r}: row has {len(row)} cells, expected {len(self.headers)}")
        for name in (*self.key, *self.optional):
            if name not in self.headers:
                raise ValueError(f"table {self.title!r}: {name!r} is not one of its headers")
        if set(self.key) & set(self.optional):
            raise ValueError(f"table {self.title!r}: a key column cannot be optional")


@dataclass(frozen=True, slots=True)
class Image:
    png: bytes = field(repr=False)
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Button:
    """``payload`` is opaque to the adapter: it sends it back verbatim when the button is pressed."""

    label: str
    payload: str
    style: ButtonStyle = "secondary"

    def __post_init__(self) -> None:
        if len(self.payload.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"button payload longer than {MAX_PAYLOAD_BYTES} bytes")


def command_button(label: str, line: str, style: ButtonStyle = "secondary") -> Button | None:
    """A button that runs ``line`` (``"trades 10 2"`` or ``"/trades 10 2"``) as whoever presses it, or
    None when the line does not fit a payload (over :data:`MAX_PAYLOAD_BYTES`, or a ``#``, which
    Discord's button ids reserve): the reply then names the command as text only.

    The payload grants nothing: the dispatcher treats the press exactly as the presser typing the line
    (allowlist, rate limit, role, arguments, confirmation, audit)."""
    payload = RUN_PREFIX + line.strip().removeprefix("/")
    if "#" in payload or len(payload.encode()) > MAX_PAYLOAD_BYTES:
        return None
    return Button(label, payload, style)


def command_line(payload: str) -> str | None:
    """``"/trades 10 2"`` for a command button's payload; None for any other payload (a confirmation)."""
    if not payload.startswith(RUN_PREFIX):
        return None
    return "/" + payload[len(RUN_PREFIX):].strip().removeprefix("/")


@dataclass(frozen=True, slots=True)
class Buttons:
    choices: tuple[Button, ...]


def more_buttons(more: str, line: str) -> tuple[Buttons, ...]:
    """A "More" button running ``line`` (the next page) when the table has one (``more`` is its hint)."""
    button = command_button("More", line) if more else None
    return (Buttons((button,)),) if button is not None else ()


def choice_buttons(lines: Sequence[tuple[str, str]]) -> tuple[Buttons, ...]:
    """One command button per ``(label, line)``, at most :data:`MAX_BUTTONS` (the reply lists them all
    as text as well, for the console and for the ones that do not fit)."""
    buttons = tuple(b for b in (command_button(label, line) for label, line in lines[:MAX_BUTTONS]) if b is not None)
    return (Buttons(buttons),) if buttons else ()


Block: TypeAlias = Text | KeyValues | Table | Image | Buttons


@dataclass(frozen=True, slots=True)
class Reply:
    """``private``: a refusal or an error that changed nothing, for the person who asked only; where a
    platform can show a message to one person (Discord ephemeral, Slack ephemeral) it does.
    ``settled``: the answer to a button press after which that prompt is over (used, cancelled,
    expired or refused for good); the adapter takes the buttons off the message pressed. A press that
    leaves the prompt valid for someone else (the requester, a second admin) does not settle it."""

    blocks: tuple[Block, ...]
    private: bool = False
    settled: bool = False

    @classmethod
    def text(cls, text: str, style: TextStyle = "plain") -> Reply:
        return cls((Text(text, style),))

    @classmethod
    def error(cls, text: str) -> Reply:
        return cls((Text(text, "error"),))

    def __add__(self, other: Reply) -> Reply:
        return Reply(self.blocks + other.blocks, self.private and other.private, self.settled or other.settled)

    @property
    def buttons(self) -> tuple[Button, ...]:
        return tuple(b for block in self.blocks if isinstance(block, Buttons) for b in block.choices)

    def summary(self, limit: int = 300) -> str:
        """A one-line description for the audit log: the first text block, or the first title."""
        for block in self.blocks:
            if isinstance(block, Text):
                return block.text.replace("\n", " ")[:limit]
        for block in self.blocks:
            if isinstance(block, (KeyValues, Table)):
                return block.title[:limit]
        return ""

    def plain_text(self) -> str:
        """Every string in the reply joined by newlines: what tests search and what a screen reader gets."""
        parts: list[str] = []
        for block in self.blocks:
            if isinstance(block, Text):
                parts.append(block.text)
            elif isinstance(block, KeyValues):
                parts.append(block.title)
                parts.extend(f"{k}: {v}" for k, v in block.items)
            elif isinstance(block, Table):
                parts.append(block.title)
                parts.append(" | ".join(block.headers))
                parts.extend(" | ".join(row) for row in block.rows)
                parts.append(block.more)
            elif isinstance(block, Image):
                parts.append(block.caption)
            elif isinstance(block, Buttons):
                parts.extend(b.label for b in block.choices)
        return "\n".join(p for p in parts if p)
