"""Command mentions as Slack users type them: ``/status`` becomes ``/tradectl status``.

On Slack the app has one slash command (``slack.command``) and our commands are words after it;
``/status`` alone is Slack's own built-in. The command core writes ``/status`` everywhere (help,
refusals, next-page hints such as ``Older trades: /trades 10 2``, alerts such as ``trading stays
halted until an admin sends /rearm``), so the Slack adapter rewrites what it shows — replies and
alerts alike — through one :class:`SlashCommands`.

Only real mentions change: a slash that starts a word, followed by a registered command name (or
alias) that ends there. ``BTC/USD``, ``a/b``, ``http://x/status``, ``~/status``, ``/status/x`` and
``/statusx`` stay as they are. The rewrite is plain text in, plain text out, applied before
escaping; it is idempotent as long as the slash command's own name is not a command.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from bot.notify.formats import Alert
from bot.notify.senders import AlertMessage
from bot.registry import CommandSpec
from bot.reply import Block, Buttons, Image, KeyValues, Reply, Table, Text

# Not a mention when the slash follows a word, another slash, or something that makes it part of a
# path, URL, pair or parameter; nor when the name runs on into more of a word, a path or a handle.
_BEFORE = r"(?<![\w/.:<~\-@#=?&%+\\])"
_AFTER = r"(?![\w/\-@])"


class SlashCommands:
    """Rewrites mentions of ``names`` (the registry's commands and aliases) to ``command`` + name."""

    def __init__(self, command: str, names: Iterable[str]) -> None:
        self.command = command
        words = sorted({n for n in names if n}, key=len, reverse=True)
        self._pattern = (re.compile(_BEFORE + "/(" + "|".join(map(re.escape, words)) + ")" + _AFTER)
                         if words else None)

    def text(self, text: str) -> str:
        if self._pattern is None or "/" not in text:
            return text
        return self._pattern.sub(lambda m: f"{self.command} {m.group(1)}", text)

    def reply(self, reply: Reply) -> Reply:
        """Every block kind: texts, key-value pairs, table titles, cells and next-page hints, image
        captions and button labels (never a button's payload: the dispatcher's, sent back as is)."""
        return dataclasses.replace(reply, blocks=tuple(self._block(b) for b in reply.blocks))

    def alert(self, message: AlertMessage) -> AlertMessage:
        """The plain lines and the structured alerts (titles, lines, fields) of an alert message."""
        return dataclasses.replace(message, lines=tuple(self.text(line) for line in message.lines),
                                   alerts=tuple(self._alert(a) for a in message.alerts))

    def _alert(self, alert: Alert) -> Alert:
        fix = self.text
        return dataclasses.replace(alert, title=fix(alert.title), lines=tuple(fix(x) for x in alert.lines),
                                   fields=tuple((fix(k), fix(v)) for k, v in alert.fields))

    def _block(self, b: Block) -> Block:
        fix = self.text
        if isinstance(b, Text):
            return dataclasses.replace(b, text=fix(b.text))
        if isinstance(b, KeyValues):
            return dataclasses.replace(b, title=fix(b.title), items=tuple((fix(k), fix(v)) for k, v in b.items))
        if isinstance(b, Table):
            return dataclasses.replace(b, title=fix(b.title), rows=tuple(tuple(fix(c) for c in row) for row in b.rows),
                                       more=fix(b.more))
        if isinstance(b, Image):
            return dataclasses.replace(b, caption=fix(b.caption))
        if isinstance(b, Buttons):
            return Buttons(tuple(dataclasses.replace(c, label=fix(c.label)) for c in b.choices))
        return b


def registry_names(specs: Iterable[CommandSpec]) -> list[str]:
    """The command names and aliases of a registry (iterating a registry yields its specs)."""
    return [n for spec in specs for n in (spec.name, *spec.aliases)]
