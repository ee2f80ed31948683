"""A :class:`~bot.reply.Reply` as a Slack message: Block Kit blocks plus a plain-text fallback.

Pure: :func:`render_slack` performs no I/O and is tested on its own.

- ``Text`` becomes a mrkdwn section. Every string is neutral text (:mod:`bot.neutral`): ``&``,
  ``<`` and ``>`` escaped and ``@channel``-style words broken, and every mrkdwn object is
  ``verbatim`` (Slack does not link names or URLs in it), so nothing a command prints can become a
  mention, a channel link, a disguised link or ``<!channel>``;
- ``KeyValues`` becomes a section of fields, ``Table`` a section holding an aligned code block;
- ``Image`` cannot be a block (an image block needs a public URL), so it is returned as a file to
  upload next to the message;
- ``Buttons`` become an actions block: each button's ``value`` is the dispatcher's payload and its
  ``action_id`` is distinct; a danger button gets Slack's confirm dialog. The dialog is a client-side
  courtesy only: the server-side nonce behind the payload is what counts.

Slack's limits (3,000 characters per section text, 10 fields of 2,000, 50 blocks) are met by cutting
rows with a note saying how many were left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.console import render_console
from bot.neutral import clean_reply, slack_code, slack_mrkdwn
from bot.reply import Button, Buttons, Image, KeyValues, Reply, Table, Text

MAX_SECTION = 3000
MAX_FIELDS = 10
MAX_FIELD = 2000
MAX_BLOCKS = 50
MAX_FALLBACK = 3000
ACTION_PREFIX = "tradectl_press_"
ACTION_RE = re.compile(r"^tradectl_press_[0-9]{1,2}$")
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


def _plain(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": (text or " ")[:limit], "emoji": True}


def _section(text: str) -> dict[str, Any]:
    if len(text) > MAX_SECTION:
        text = _shorten(text, MAX_SECTION - 20) + "\n… (cut)"
    return {"type": "section", "text": _mrkdwn(text or " ")}


def _code_block(lines: list[str], limit: int = MAX_SECTION) -> str:
    body: list[str] = []
    used = 8
    for i, line in enumerate(lines):
        line = slack_code(line)
        more = len(lines) - i
        if used + len(line) + 1 + len(f"… {more} more rows\n") > limit:
            body.append(f"… {more} more rows")
            break
        body.append(line)
        used += len(line) + 1
    return "```\n" + "\n".join(body) + "\n```"


def _key_values(block: KeyValues) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if block.title:
        out.append(_section(f"*{escape(block.title)}*"))
    items = list(block.items)
    for start in range(0, len(items), MAX_FIELDS):
        fields = [_mrkdwn(_shorten(f"*{escape(k)}*\n{escape(v) or '-'}", MAX_FIELD))
                  for k, v in items[start:start + MAX_FIELDS]]
        out.append({"type": "section", "fields": fields})
    return out


def _table(block: Table) -> dict[str, Any]:
    lines = render_console(Reply((Table("", block.headers, block.rows),))).split("\n")
    title = f"*{escape(block.title)}*\n" if block.title else ""
    return _section(title + _code_block(lines, MAX_SECTION - len(title)))


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


def render_slack(reply: Reply) -> SlackMessage:
    reply = clean_reply(reply)
    blocks: list[dict[str, Any]] = []
    files: list[tuple[str, bytes, str]] = []
    warning = next((escape(b.text) for b in reply.blocks if isinstance(b, Text)), "This cannot be undone.")
    buttons = 0
    for block in reply.blocks:
        if isinstance(block, Text):
            blocks.append(_section(_PREFIX[block.style] + escape(block.text)))
        elif isinstance(block, KeyValues):
            blocks.extend(_key_values(block))
        elif isinstance(block, Table):
            blocks.append(_table(block))
        elif isinstance(block, Image):
            name = f"chart-{len(files) + 1}.png"
            files.append((name, block.png, block.caption or "chart"))
            blocks.append({"type": "context", "elements": [
                _mrkdwn(_shorten(f"chart attached: {escape(block.caption or name)}", MAX_SECTION))]})
        elif isinstance(block, Buttons):
            elements = [_button(b, buttons + i, warning) for i, b in enumerate(block.choices[:25])]
            buttons += len(elements)
            blocks.append({"type": "actions", "elements": elements})
    if len(blocks) > MAX_BLOCKS:
        actions = [b for b in blocks if b["type"] == "actions"]
        kept = [b for b in blocks if b["type"] != "actions"][: MAX_BLOCKS - len(actions) - 1]
        blocks = [*kept, _section(f"… {len(blocks) - len(kept) - len(actions)} more sections"), *actions]
    fallback = escape(reply.plain_text())
    if len(fallback) > MAX_FALLBACK:
        fallback = _shorten(fallback, MAX_FALLBACK - 2) + " …"
    return SlackMessage(fallback or " ", tuple(blocks), tuple(files))


def is_refusal(reply: Reply) -> bool:
    return any(isinstance(b, Text) and b.style == "error" for b in reply.blocks)
