"""Print what the main replies look like on a phone, per platform, from the real renderers.

The examples in docs/commands.md ("What replies look like on a phone") are this script's output::

    .venv/bin/python -m tests.bot.phone_examples > /tmp/phone.md

Each reply of :mod:`tests.bot.phone_replies` is rendered by the platform's renderer and shown as its
reader sees the text: Telegram's HTML parsed (bold and ``<pre>`` as plain text), Discord's and
Slack's markup and escapes removed, embed titles and fields on lines of their own, and a line
``----- next message -----`` where a reply is split; a long message is shortened to its first lines
and ``[… n more lines]``.
"""

from __future__ import annotations

import asyncio
import html
import re
import sys
import tempfile
from pathlib import Path

from bot.platforms.console import render_console
from bot.platforms.discord.render import render_discord_messages
from bot.platforms.slack.render import render_slack_messages
from bot.platforms.telegram.render import TextMessage, render_telegram
from bot.reply import Reply
from persistence.db import Database
from persistence.migrate import upgrade
from tests.bot.phone_replies import Shown, every_reply, phone_harness
from tests.fakes.telegram import parse_html

NEXT = "----- next message -----"
# (command line, platforms, at most this many lines of each rendering)
EXAMPLES = (
    ("/status", ("telegram", "discord", "console"), 18),
    ("/positions", ("slack",), 12),
    ("/trades 50", ("telegram", "discord"), 10),
    ("/audit 50", ("slack",), 10),
    ("/balance", ("telegram",), 20),
    ("/daily 30", ("discord",), 8),
    ("/help", ("telegram",), 20),
    ("/kill exchange maintenance announced for 02:00 → Confirm", ("telegram",), 16),
)


def telegram(reply: Reply) -> list[str]:
    parts = []
    for m in render_telegram(reply):
        parts.append(parse_html(m.html)[0] if isinstance(m, TextMessage) else f"[photo] {m.caption_html}")
    return _joined(parts)


_DISCORD_ESCAPE = re.compile(r"\\(.)")


def _discord_seen(text: str) -> str:
    return _DISCORD_ESCAPE.sub(r"\1", text.replace("**", "")).replace("\u200b", "")


def discord(reply: Reply) -> list[str]:
    parts = []
    for m in render_discord_messages(reply):
        lines = [_discord_seen(m.content)] if m.content else []
        for e in m.embeds:
            doc = e.to_dict()
            lines.append(f"┃ {_discord_seen(doc.get('title', ''))}")
            if doc.get("description"):
                lines += [f"┃ {line}" for line in _discord_seen(doc["description"]).split("\n")]
            lines += [f"┃ {_discord_seen(f['name'])}: {_discord_seen(f['value'])}" for f in doc.get("fields", [])]
        lines += [f"[button] {b.item.label}" for b in m.buttons]
        parts.append("\n".join(lines))
    return _joined(parts)


def _slack_seen(text: str) -> str:
    return html.unescape(re.sub(r"(?<![`\w])\*([^*\n]+)\*(?![`\w])", r"\1", text))


def slack(reply: Reply) -> list[str]:
    parts = []
    for m in render_slack_messages(reply):
        lines = []
        for b in m.blocks:
            if "text" in b:
                lines.append(_slack_seen(b["text"]["text"]))
            for f in b.get("fields", []):
                lines.append(_slack_seen(f["text"]).replace("\n", ": ", 1))
            for e in b.get("elements", []):
                lines.append(f"[button] {e['text']['text']}" if e.get("type") == "button" else _slack_seen(e["text"]))
        parts.append("\n".join(lines))
    return _joined(parts)


def console(reply: Reply) -> list[str]:
    return render_console(reply, width=32).split("\n")


def _joined(parts: list[str]) -> list[str]:
    return f"\n{NEXT}\n".join(parts).split("\n")


RENDER = {"telegram": telegram, "discord": discord, "slack": slack, "console": console}
NAMES = {"telegram": "Telegram", "discord": "Discord", "slack": "Slack", "console": "Console, 32 columns"}


def _shortened(lines: list[str], most: int) -> list[str]:
    """The first ``most`` lines of each message, and how many more it has."""
    out: list[str] = []
    part: list[str] = []
    for line in [*lines, NEXT]:
        if line != NEXT:
            part.append(line)
            continue
        out += part[:most] + ([f"[… {len(part) - most} more lines]"] if len(part) > most else [])
        out.append(NEXT)
        part = []
    return out[:-1]


def examples(shown: list[Shown]) -> str:
    """The examples as docs/commands.md shows them: a heading naming the command (and the button pressed
    after it, as labelled), then the rendering in a text block."""
    by_line = {s.line: s for s in shown}
    out: list[str] = []
    for line, platforms, most in EXAMPLES:
        s = by_line[line]
        for platform in platforms:
            lines = _shortened(RENDER[platform](s.reply), most)
            heading = f"`{line.split(' → ')[0]}`" + (f" then {s.pressed}" if s.pressed else "")
            out += [f"{heading} on {NAMES[platform]}:", "", "```text", *(x.rstrip() for x in lines), "```", ""]
    return "\n".join(out)


async def main() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'phone.db'}")
        await db.start()
        try:
            await upgrade(db)
            h, _ = phone_harness(db)
            return examples(await every_reply(h))
        finally:
            await db.stop()


if __name__ == "__main__":
    sys.stdout.write(asyncio.run(main()))
