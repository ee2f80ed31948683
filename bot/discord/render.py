"""A :class:`~bot.reply.Reply` as a Discord message: content, embeds, attachments and buttons.

Pure: :func:`render_discord` builds objects and performs no I/O, so the layout is tested on its own.

- ``Text`` becomes message content. Every string (content, embed titles, fields, button labels) is
  neutral text (:mod:`bot.neutral`): markdown, masked links and mentions escaped, so nothing a
  command prints can ping ``@everyone`` or turn into formatting or a link; and every message is sent
  with ``allowed_mentions`` that parse nothing, so even text that slipped through could not ping;
- ``KeyValues`` becomes an embed with inline fields, ``Table`` an embed holding an aligned code block;
- ``Image`` becomes a PNG attachment shown in an embed;
- ``Buttons`` become a ``discord.ui.View(timeout=None)`` of :class:`PressButton` items.

Discord's limits (2,000 characters of content, 10 embeds, 6,000 characters across them, 4,096 per
description, 25 fields) are met by cutting rows with a note saying how many were left out, never by
failing to answer.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, Protocol

import discord

from bot.console import render_console
from bot.neutral import clean, clean_reply, cut, discord_code, discord_markdown
from bot.reply import Button, Buttons, Image, KeyValues, Reply, Table, Text

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_CUSTOM_ID = 100
_PREFIX = {"error": "❌ ", "warning": "⚠️ ", "success": "✅ ", "plain": ""}
_STYLE = {"primary": discord.ButtonStyle.primary, "danger": discord.ButtonStyle.danger,
          "secondary": discord.ButtonStyle.secondary}
_COLOUR = discord.Colour.blurple()
# A button's custom_id is the payload the dispatcher gave it, optionally followed by "#<user id>" when
# only that user may press it. The user id is kept in the custom_id (not in memory) so the check
# still applies to buttons pressed after a restart or on another leader.
CUSTOM_ID_RE = re.compile(r"(?P<payload>[^#]{1,64})(?:#(?P<owner>[0-9]{5,25}))?")


class PressHandler(Protocol):
    """What a press is routed to: the gateway adapter, reached through ``interaction.client``."""

    async def handle_press(self, interaction: discord.Interaction[Any], payload: str, owner: int | None) -> None: ...


def custom_id(payload: str, owner: int | None) -> str:
    value = payload if owner is None else f"{payload}#{owner}"
    if len(value) > MAX_CUSTOM_ID or CUSTOM_ID_RE.fullmatch(value) is None:
        raise ValueError(f"button payload {payload!r} cannot be carried in a Discord custom_id")
    return value


class PressButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CUSTOM_ID_RE):
    """A confirmation (or any) button. discord.py rebuilds it from the custom_id on every press, so it
    works for messages sent before a restart; the nonce check in the dispatcher stays authoritative."""

    def __init__(self, payload: str, owner: int | None = None, *, label: str = "",
                 style: discord.ButtonStyle = discord.ButtonStyle.secondary) -> None:
        super().__init__(discord.ui.Button(label=clean(label)[:80] or "?", style=style,
                                           custom_id=custom_id(payload, owner)))
        self.payload = payload
        self.owner = owner

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> "PressButton":
        owner = match.group("owner")
        label = getattr(item, "label", "") or ""
        style = getattr(item, "style", discord.ButtonStyle.secondary)
        return cls(match.group("payload"), int(owner) if owner else None, label=label, style=style)

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        """Only the user who asked may press (defence in depth: the dispatcher checks the nonce's owner
        too). A two-person confirmation carries no owner, so a second admin can press it."""
        if self.owner is None or interaction.user.id == self.owner:
            return True
        await interaction.response.send_message(f"Only <@{self.owner}> can use these buttons.", ephemeral=True,
                                                allowed_mentions=discord.AllowedMentions.none())
        return False

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        handler: PressHandler = interaction.client  # type: ignore[assignment]
        await handler.handle_press(interaction, self.payload, self.owner)


@dataclass(frozen=True)
class DiscordMessage:
    """One message ready to send. Files are kept as bytes: a ``discord.File`` can be sent only once."""

    content: str = ""
    embeds: tuple[discord.Embed, ...] = ()
    files: tuple[tuple[str, bytes], ...] = ()
    buttons: tuple[PressButton, ...] = ()

    def view(self) -> discord.ui.View | None:
        if not self.buttons:
            return None
        view = discord.ui.View(timeout=None)
        for button in self.buttons:
            view.add_item(button)
        return view

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``send_message`` / ``followup.send`` (never pings anyone)."""
        out: dict[str, Any] = {"content": self.content or None, "embeds": list(self.embeds),
                               "allowed_mentions": discord.AllowedMentions.none()}
        if self.files:
            out["files"] = [discord.File(io.BytesIO(png), filename=name) for name, png in self.files]
        view = self.view()
        if view is not None:
            out["view"] = view
        return out


def escape(text: str) -> str:
    """Any text as Discord markdown that shows it as typed (see :func:`bot.neutral.discord_markdown`)."""
    return discord_markdown(text)


def _fit(text: str, limit: int, what: str = "characters") -> str:
    """``text`` (already escaped) within ``limit``; a cut never leaves a dangling backslash."""
    if len(text) <= limit:
        return text
    note = f"\n… (cut at {limit} {what})"
    head = text[: limit - len(note)]
    if (len(head) - len(head.rstrip("\\"))) % 2:
        head = head[:-1]
    return head + note


def _title(text: str) -> str | None:
    return cut(text, 256, escape) or None


def _code_block(lines: list[str], limit: int) -> str:
    """Lines in a code block within ``limit`` characters; rows that do not fit are counted, not lost silently."""
    body: list[str] = []
    used = 8  # the fences and newlines
    for i, line in enumerate(lines):
        line = discord_code(line)
        more = len(lines) - i
        if used + len(line) + 1 + len(f"… {more} more rows\n") > limit:
            body.append(f"… {more} more rows")
            break
        body.append(line)
        used += len(line) + 1
    return "```\n" + "\n".join(body) + "\n```"


def _table_embed(block: Table, budget: int) -> discord.Embed:
    text = render_console(Reply((Table("", block.headers, block.rows),)))
    return discord.Embed(title=_title(block.title), colour=_COLOUR,
                         description=_code_block(text.split("\n"), min(MAX_DESCRIPTION, budget)))


def _kv_embed(block: KeyValues, budget: int) -> discord.Embed:
    embed = discord.Embed(title=_title(block.title), colour=_COLOUR)
    fields = [(escape(k), escape(v)) for k, v in block.items]  # measured as sent: escaping lengthens
    fits = (len(fields) <= MAX_FIELDS and all(len(k) <= 256 and len(v) <= 1024 for k, v in fields)
            and sum(len(k) + len(v) for k, v in fields) <= budget)
    if fits:
        for key, value in fields:
            embed.add_field(name=key or escape("-"), value=value or escape("-"), inline=True)  # never empty
    else:
        width = max((len(k) for k, _ in block.items), default=0)
        lines = [f"{k.ljust(width)}  {' '.join(v.split())}" for k, v in block.items]
        embed.description = _code_block(lines, min(MAX_DESCRIPTION, budget))
    return embed


def _button(button: Button, owner: int | None) -> PressButton:
    style = _STYLE.get(button.style, discord.ButtonStyle.secondary)
    return PressButton(button.payload, owner, label=button.label, style=style)


def render_discord(reply: Reply, *, owner: int | None = None) -> DiscordMessage:
    """``owner``: the Discord user id allowed to press the buttons, or None when anyone may (the
    dispatcher then decides, e.g. for a second admin's approval)."""
    texts: list[str] = []
    embeds: list[discord.Embed] = []
    files: list[tuple[str, bytes]] = []
    buttons: list[PressButton] = []
    reply = clean_reply(reply)
    budget = MAX_EMBED_TOTAL
    dropped = 0
    for block in reply.blocks:
        if isinstance(block, Text):
            texts.append(_PREFIX[block.style] + escape(block.text))
        elif isinstance(block, (KeyValues, Table)):
            if len(embeds) >= MAX_EMBEDS or budget < 200:
                dropped += 1
                continue
            room = budget - len(_title(block.title) or "")
            embed = _kv_embed(block, room) if isinstance(block, KeyValues) else _table_embed(block, room)
            budget -= len(embed)
            embeds.append(embed)
        elif isinstance(block, Image):
            name = f"chart-{len(files) + 1}.png"
            files.append((name, block.png))
            if len(embeds) < MAX_EMBEDS:
                embed = discord.Embed(title=_title(block.caption), colour=_COLOUR)
                embeds.append(embed.set_image(url=f"attachment://{name}"))
                budget -= len(embed)
        elif isinstance(block, Buttons):
            buttons.extend(_button(b, owner) for b in block.choices[: 25 - len(buttons)])
    note = f"\n({dropped} more sections did not fit in one Discord message)" if dropped else ""
    content = (_fit("\n".join(texts), MAX_CONTENT - len(note)) + note).strip()
    if not content and not embeds and not files:
        content = "(no output)"
    return DiscordMessage(content, tuple(embeds), tuple(files), tuple(buttons))


def is_refusal(reply: Reply) -> bool:
    """A reply whose first text is an error: a refused press leaves the buttons for the right person."""
    return any(isinstance(b, Text) and b.style == "error" for b in reply.blocks)
