"""A :class:`~bot.reply.Reply` as Slack messages: Block Kit blocks plus a plain-text fallback.

Pure: :func:`render_slack_messages` performs no I/O and is tested on its own.

- ``Text`` becomes a mrkdwn section. Every string is neutral text (:mod:`bot.neutral`): ``&``,
  ``<`` and ``>`` escaped and ``@channel``-style words broken, and every mrkdwn object is
  ``verbatim`` (Slack does not link names or URLs in it), so nothing a command prints can become a
  mention, a channel link, a disguised link or ``<!channel>``;
- ``KeyValues`` becomes a section of fields (two columns on a desktop, stacked on a phone);
- ``Table`` becomes a section holding an aligned code block when the table fits in :data:`WIDTH`
  characters — what Slack's mobile app shows of a code block without wrapping — and otherwise one
  block per row: its key cells in bold, then short ``label value`` lines (:mod:`bot.layout`);
- ``Image`` cannot be a block (an image block needs a public URL), so it is returned as a file to
  upload next to the message;
- ``Buttons`` become an actions block on the last message: each button's ``value`` is the
  dispatcher's payload and its ``action_id`` is distinct; a danger button gets Slack's confirm
  dialog. The dialog is a client-side courtesy only: the server-side nonce behind the payload is
  what counts.

**Limits and long replies.** A section holds 3,000 characters and a message 50 blocks; Slack also
refuses (``msg_blocks_too_long``) a message whose blocks hold more than roughly 12,000 characters
of text in all — undocumented, so :data:`MAX_MESSAGE_TEXT` stays well below. A long table or text
is split into sections, never inside a row or a record; each section of a split table repeats its
title, numbered (``Last 50 trades (2/3)``), and a code block its header. Sections fill a message,
then the next one: :func:`render_slack_messages` returns them all, to post in order.
:func:`render_slack` is the same limited to one message: what does not fit is counted in a note
(``… 23 more rows not shown``) instead of being sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot import layout
from bot.neutral import clean_reply, slack_code, slack_mrkdwn
from bot.reply import Button, Buttons, Image, KeyValues, Reply, Table, Text

MAX_SECTION = 3000
MAX_FIELDS = 10
MAX_FIELD = 2000
MAX_BLOCKS = 50
MAX_FALLBACK = 3000
MAX_MESSAGE_TEXT = 10000
MAX_MESSAGES = 10
WIDTH = 41  # monospace characters Slack's mobile app shows on a line of a code block
ACTION_PREFIX = "tradectl_press_"
ACTION_RE = re.compile(r"^tradectl_press_[0-9]{1,2}$")
_UNIT = 1500  # the longest escaped line kept whole; a longer one is cut
_NOTE_ROOM = 200
_PREFIX = {"error": ":x: ", "warning": ":warning: ", "success": ":white_check_mark: ", "plain": ""}


@dataclass(frozen=True)
class SlackMessage:
    text: str  # notification and screen-reader fallback
    blocks: tuple[dict[str, Any], ...]
    files: tuple[tuple[str, bytes, str], ...] = ()  # (filename, png, title) to upload beside the message


def escape(text: str) -> str:
    """Any text as Slack mrkdwn that shows it as typed (see :func:`bot.neutral.slack_mrkdwn`)."""
    return slack_mrkdwn(text)


def _mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object Slack takes as it is: no names, channels or URLs turned into links."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _shorten(text: str, limit: int) -> str:
    """Escaped text cut to ``limit`` without leaving half an entity (``&am``) at the end."""
    text = text[:limit]
    amp = text.rfind("&", max(0, len(text) - 4))
    return text[:amp] if amp >= 0 and ";" not in text[amp:] else text


def _unit(text: str, code: bool = False) -> str:
    """One line escaped, cut to :data:`_UNIT` characters."""
    escaped = slack_code(text) if code else escape(text)
    return escaped if len(escaped) <= _UNIT else _shorten(escaped, _UNIT - 1) + "…"


def _plain(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": (text or " ")[:limit], "emoji": True}


def _section(text: str) -> dict[str, Any]:
    if len(text) > MAX_SECTION:
        text = _shorten(text, MAX_SECTION - 20) + "\n… (cut)"
    return {"type": "section", "text": _mrkdwn(text or " ")}


@dataclass
class _Item:
    """One Slack block and what it costs: its text, its share of the fallback, the rows it shows."""

    block: dict[str, Any]
    text: int
    plain: str = ""
    source: int = -1  # index of the reply block it shows
    units: int = 0
    files: tuple[tuple[str, bytes, str], ...] = ()


@dataclass(frozen=True, slots=True)
class _List:
    source: int
    title: str  # raw
    units: tuple[str, ...]  # escaped
    plain: tuple[str, ...]
    code: bool = False
    header: tuple[str, ...] = ()
    tail: str = ""  # escaped

    @property
    def joiner(self) -> str:
        return "\n" if self.code else "\n\n" if any("\n" in u for u in self.units) else "\n"

    def text(self, title: str, units: list[str], last: bool) -> str:
        head = f"*{escape(title)}*\n" if title else ""
        body = ("```\n" + "\n".join([*self.header, *units]) + "\n```") if self.code else self.joiner.join(units)
        return head + body + ("\n" + self.tail if last and self.tail else "")


def _pages(items: _List) -> list[_Item]:
    """A list as sections of at most :data:`MAX_SECTION` characters, each titled and numbered."""
    room = MAX_SECTION - len(items.text(items.title + " " * layout.NUMBER_ROOM, [], True)) - 2
    pages: list[list[int]] = layout.split(range(len(items.units)), lambda i: len(items.units[i]) + len(items.joiner),
                                          lambda _: room)
    out = []
    for k, page in enumerate(pages, 1):
        title = layout.numbered(items.title, k, len(pages))
        text = items.text(title, [items.units[i] for i in page], k == len(pages))
        plain = "\n".join([title, *(items.plain[i] for i in page)])
        out.append(_Item(_section(text), len(text), plain, items.source, len(page)))
    return out


def _table(source: int, block: Table) -> list[_Item]:
    chosen = layout.choose(block, WIDTH)
    tail = _unit(block.more) if block.more else ""
    if isinstance(chosen, layout.Grid):
        rows = chosen.row_lines()
        items = _List(source, block.title, tuple(_unit(r, True) for r in rows), tuple(rows), True,
                      tuple(_unit(h, True) for h in chosen.header_lines()), tail)
    else:
        units, plain = [], []
        for record in chosen.records:
            lines = record.field_lines(WIDTH)
            units.append("\n".join([f"*{_unit(record.heading)}*", *(_unit(t) for t in lines)]))
            plain.append("\n".join([record.heading, *lines]))
        items = _List(source, block.title, tuple(units) or (escape(layout.NONE),), tuple(plain) or (layout.NONE,),
                      tail=tail)
    return _pages(items)


def _text(source: int, block: Text) -> list[_Item]:
    lines = block.text.split("\n")
    lines[0] = layout.with_icon(_PREFIX[block.style], lines[0])
    units = [_unit(line) for line in lines]
    pages = layout.split(range(len(units)), lambda i: len(units[i]) + 1, lambda _: MAX_SECTION - 2)
    out = []
    for page in pages:
        text = "\n".join(units[i] for i in page)
        out.append(_Item(_section(text), len(text), "\n".join(lines[i] for i in page), source, len(page)))
    return out


def _key_values(source: int, block: KeyValues) -> list[_Item]:
    out: list[_Item] = []
    if block.title:
        title = f"*{_unit(block.title)}*"
        out.append(_Item(_section(title), len(title), block.title, source))
    items = list(block.items)
    for start in range(0, len(items), MAX_FIELDS):
        chunk = items[start:start + MAX_FIELDS]
        fields = [_mrkdwn(_shorten(f"*{escape(k)}*\n{escape(v) or '-'}", MAX_FIELD)) for k, v in chunk]
        out.append(_Item({"type": "section", "fields": fields}, sum(len(f["text"]) for f in fields),
                         "\n".join(f"{k}: {v}" for k, v in chunk), source, len(chunk)))
    return out


def _button(button: Button, index: int, warning: str) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "button", "action_id": f"{ACTION_PREFIX}{index}", "text": _plain(button.label),
                               "value": button.payload}
    if button.style == "primary":
        element["style"] = "primary"
    elif button.style == "danger":
        element["style"] = "danger"
        element["confirm"] = {"title": _plain("Are you sure?", 100), "text": _mrkdwn(_shorten(warning, 300) or " "),
                              "confirm": _plain(button.label, 30), "deny": _plain("Back", 30), "style": "danger"}
    return element


@dataclass
class _Message:
    items: list[_Item] = field(default_factory=list)

    @property
    def text(self) -> int:
        return sum(i.text for i in self.items)


def _items(reply: Reply) -> list[_Item]:
    out: list[_Item] = []
    files = 0
    for source, block in enumerate(reply.blocks):
        if isinstance(block, Text):
            out.extend(_text(source, block))
        elif isinstance(block, KeyValues):
            out.extend(_key_values(source, block))
        elif isinstance(block, Table):
            out.extend(_table(source, block))
        elif isinstance(block, Image):
            files += 1
            name = f"chart-{files}.png"
            text = _shorten(f"chart attached: {escape(block.caption or name)}", MAX_SECTION)
            out.append(_Item({"type": "context", "elements": [_mrkdwn(text)]}, len(text), block.caption, source,
                             files=((name, block.png, block.caption or "chart"),)))
    return out


def _pack(items: list[_Item], blocks: int, text: int) -> list[_Message]:
    messages = [_Message()]
    for item in items:
        current = messages[-1]
        if current.items and (len(current.items) + 1 > blocks or current.text + item.text > text):
            messages.append(_Message())
        messages[-1].items.append(item)
    return messages


def _note(items: list[_Item], kept: list[_Message], max_messages: int) -> _Item:
    shown: dict[int, int] = {}
    for message in kept:
        for item in message.items:
            shown[item.source] = shown.get(item.source, 0) + item.units
    total: dict[int, int] = {}
    for item in items:
        total[item.source] = total.get(item.source, 0) + item.units
    last = kept[-1].items[-1].source if kept[-1].items else -1
    parts = []
    if last in total and shown.get(last, 0) < total[last]:
        parts.append(f"… {total[last] - shown[last]} more rows not shown")
    sections = sum(1 for s in total if s not in shown)
    if sections:
        parts.append(f"({sections} more sections did not fit in {max_messages} Slack "
                     f"message{'s' if max_messages > 1 else ''})")
    text = escape("\n".join(parts) or "… the rest did not fit")
    return _Item(_section(text), len(text), text)


def render_slack_messages(reply: Reply, *, max_messages: int = MAX_MESSAGES) -> list[SlackMessage]:
    """The messages to post for ``reply``, in order (at least one); buttons go on the last one."""
    reply = clean_reply(reply)
    warning = next((escape(b.text) for b in reply.blocks if isinstance(b, Text)), "This cannot be undone.")
    actions: list[dict[str, Any]] = []
    count = 0
    for block in reply.blocks:
        if isinstance(block, Buttons) and block.choices:
            elements = [_button(b, count + i, warning) for i, b in enumerate(block.choices[:25])]
            count += len(elements)
            actions.append({"type": "actions", "elements": elements})
    actions = actions[:5]
    items = _items(reply)
    blocks = MAX_BLOCKS - len(actions)
    messages = _pack(items, blocks, MAX_MESSAGE_TEXT)
    if len(messages) > max_messages:
        messages = _pack(items, blocks - 1, MAX_MESSAGE_TEXT - _NOTE_ROOM)[:max_messages]
        messages[-1].items.append(_note(items, messages, max_messages))
    out = []
    for i, message in enumerate(messages):
        rendered = [item.block for item in message.items]
        if i == len(messages) - 1:
            rendered += actions
        fallback = escape("\n".join(item.plain for item in message.items if item.plain))
        if not fallback and i == len(messages) - 1:
            fallback = escape(reply.plain_text())
        if len(fallback) > MAX_FALLBACK:
            fallback = _shorten(fallback, MAX_FALLBACK - 2) + " …"
        files = tuple(f for item in message.items for f in item.files)
        out.append(SlackMessage(fallback or " ", tuple(rendered), files))
    return out


def render_slack(reply: Reply) -> SlackMessage:
    """``reply`` as one message: what does not fit is counted in a note (see :func:`render_slack_messages`)."""
    return render_slack_messages(reply, max_messages=1)[0]


def without_buttons(blocks: Iterable[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """A posted message's blocks with its buttons taken off and ``note`` (how the prompt ended) below."""
    kept = [b for b in blocks if isinstance(b, dict) and b.get("type") != "actions"]
    return [*kept, {"type": "context", "elements": [_mrkdwn(_shorten(escape(note), 2900))]}]


def home_note(text: str) -> dict[str, Any]:
    """One section of already escaped mrkdwn ``text``, e.g. the whole Home tab of a stranger."""
    return _section(text)


def is_refusal(reply: Reply) -> bool:
    return any(isinstance(b, Text) and b.style == "error" for b in reply.blocks)
