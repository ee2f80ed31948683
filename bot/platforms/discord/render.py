"""A :class:`~bot.reply.Reply` as Discord messages: content, embeds, attachments and buttons.

Pure: :func:`render_discord_messages` builds objects and performs no I/O, so the layout is tested on
its own.

- ``Text`` becomes message content. Every string (content, embed titles, fields, button labels) is
  neutral text (:mod:`bot.neutral`): markdown, masked links and mentions escaped, so nothing a
  command prints can ping ``@everyone`` or turn into formatting or a link; and every message is sent
  with ``allowed_mentions`` that parse nothing, so even text that slipped through could not ping;
- ``KeyValues`` becomes an embed with inline fields (stacked on a phone); one too big for fields
  becomes ``**key**: value`` lines;
- ``Table`` becomes an embed holding an aligned code block when the table fits in :data:`WIDTH`
  characters — what Discord's mobile app shows of a code block without wrapping — and otherwise
  one block per row: its key cells in bold, then short ``label value`` lines (:mod:`bot.layout`);
- ``Image`` becomes a PNG attachment shown in an embed;
- ``Buttons`` become a ``discord.ui.View(timeout=None)`` of :class:`PressButton` items, on the last
  message.

Embeds are coloured by the reply's tone: red when it carries an error (e.g. trading killed), amber
for a warning (paused), green for a success, blurple otherwise.

**Limits and long replies.** A message holds 2,000 characters of content and up to 10 embeds of
4,096 characters of description, 25 fields and 6,000 characters in all. A long table or list is
split into pages, one embed each, never inside a row or a record; every page repeats the title,
numbered (``Last 50 trades (2/3)``), and a code block its header. Pages fill a message, then the
next one: :func:`render_discord_messages` returns them all, to send in order (the first as the
answer, the rest as follow-ups). :func:`render_discord` is the same limited to one message: what
does not fit is counted in a note (``… 23 more rows not shown``) instead of being sent.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import discord

from bot import layout
from bot.neutral import clean, clean_reply, cut, discord_code, discord_markdown
from bot.reply import Button, Buttons, Image, KeyValues, Reply, Table, Text

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_TITLE = 256
MAX_CUSTOM_ID = 100
MAX_MESSAGES = 10
WIDTH = 33  # monospace characters Discord's mobile app shows on a line of a code block
_UNIT = 1500  # the longest escaped line kept whole; a longer one is cut
_NOTE_ROOM = 100  # what the note of a cut reply may take, in content and in a page
_PREFIX = {"error": "❌ ", "warning": "⚠️ ", "success": "✅ ", "plain": ""}
_STYLE = {"primary": discord.ButtonStyle.primary, "danger": discord.ButtonStyle.danger,
          "secondary": discord.ButtonStyle.secondary}
_COLOUR = {"error": discord.Colour.red(), "warning": discord.Colour.orange(), "success": discord.Colour.green(),
           "plain": discord.Colour.blurple()}
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
                             match: re.Match[str], /) -> PressButton:
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
        handler: PressHandler = interaction.client
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


def _colour(reply: Reply) -> discord.Colour:
    styles = {b.style for b in reply.blocks if isinstance(b, Text)}
    for style in ("error", "warning", "success"):
        if style in styles:
            return _COLOUR[style]
    return _COLOUR["plain"]


def _line(text: str) -> str:
    """One line of markdown, escaped, cut to :data:`_UNIT` characters."""
    return cut(text, _UNIT, escape)


def _code(text: str) -> str:
    return cut(text, _UNIT, discord_code)


@dataclass(frozen=True, slots=True)
class _List:
    """A block shown as description pages: ``units`` stay whole; a code list repeats ``header``."""

    block: int
    title: str  # escaped
    units: tuple[str, ...]
    code: bool = False
    header: tuple[str, ...] = ()
    tail: str = ""  # escaped, after the last unit (a table's "more" hint)

    @property
    def joiner(self) -> str:
        return "\n" if self.code else "\n\n" if any("\n" in u for u in self.units) else "\n"

    def description(self, units: list[str], last: bool) -> str:
        if self.code:
            body = "```\n" + "\n".join([*self.header, *units]) + "\n```"
        else:
            body = self.joiner.join(units)
        return body + ("\n" + self.tail if last and self.tail else "")

    def overhead(self) -> int:
        return len(self.description([], True)) + 1


def _title(text: str) -> str:
    return cut(text, MAX_TITLE - layout.NUMBER_ROOM, escape)


def _table_list(index: int, block: Table) -> _List:
    chosen = layout.choose(block, WIDTH)
    tail = _line(block.more) if block.more else ""
    if isinstance(chosen, layout.Grid):
        return _List(index, _title(block.title), tuple(_code(r) for r in chosen.row_lines()), True,
                     tuple(_code(h) for h in chosen.header_lines()), tail)
    units = []
    for record in chosen.records:
        lines = [f"**{_line(record.heading)}**", *(_line(t) for t in record.field_lines(WIDTH))]
        units.extend(lines if sum(map(len, lines)) > 3 * _UNIT else ["\n".join(lines)])
    return _List(index, _title(block.title), tuple(units) or (escape(layout.NONE),), tail=tail)


def _kv_fields(block: KeyValues) -> list[tuple[str, str]] | None:
    """The items as inline fields, or None when they do not fit Discord's field limits."""
    fields = [(escape(k) or escape("-"), escape(" ".join(v.split())) or escape("-")) for k, v in block.items]
    fits = (0 < len(fields) <= MAX_FIELDS and all(len(k) <= MAX_FIELD_NAME and len(v) <= MAX_FIELD_VALUE
                                                  for k, v in fields)
            and sum(len(k) + len(v) for k, v in fields) <= MAX_EMBED_TOTAL // 2)
    return fields if fits else None


def _kv_list(index: int, block: KeyValues) -> _List:
    units = tuple(f"**{_line(layout.cell(k) or '-')}**: {_line(layout.cell(v))}" for k, v in block.items)
    return _List(index, _title(block.title), units or (escape(layout.NONE),))


@dataclass
class _Page:
    embed: discord.Embed
    block: int = -1
    title: str = ""
    units: int = 0


@dataclass
class _Out:
    content: list[str] = field(default_factory=list)
    pages: list[_Page] = field(default_factory=list)
    files: list[tuple[str, bytes]] = field(default_factory=list)

    def content_len(self) -> int:
        return len("\n".join(self.content))

    def embed_total(self) -> int:
        """Characters of the embeds so far, with the room their titles' numbering may still take."""
        return sum(len(p.embed) + (layout.NUMBER_ROOM if p.block >= 0 else 0) for p in self.pages)

    def empty(self) -> bool:
        return not self.content and not self.pages


class _Builder:
    """Blocks into messages, each within Discord's limits less ``reserve`` (room for a note)."""

    def __init__(self, colour: discord.Colour, reserve: int) -> None:
        self.colour, self.reserve = colour, reserve
        self.out: list[_Out] = [_Out()]
        self.totals: dict[int, int] = {}  # units of each list block

    @property
    def current(self) -> _Out:
        return self.out[-1]

    def next_message(self) -> None:
        if not self.current.empty():
            self.out.append(_Out())

    def add_text(self, block: Text) -> None:
        lines = block.text.split("\n")
        lines[0] = layout.with_icon(_PREFIX[block.style], lines[0])
        limit = MAX_CONTENT - self.reserve
        for raw in lines:
            for piece in _pieces(raw, limit):
                if self.current.content and self.current.content_len() + 1 + len(piece) > limit:
                    self.next_message()
                self.current.content.append(piece)

    def add_embed(self, page: _Page) -> None:
        cur = self.current
        if len(cur.pages) >= MAX_EMBEDS or cur.embed_total() + len(page.embed) > MAX_EMBED_TOTAL - self.reserve:
            self.next_message()
        self.current.pages.append(page)

    def add_list(self, items: _List) -> None:
        self.totals[items.block] = len(items.units)
        units = list(items.units)
        title_room = len(items.title) + layout.NUMBER_ROOM
        while units:
            cur = self.current
            room = min(MAX_DESCRIPTION, MAX_EMBED_TOTAL - self.reserve - cur.embed_total() - title_room)
            room -= self.reserve + items.overhead()
            if len(cur.pages) >= MAX_EMBEDS or room < len(units[0]):
                if cur.empty():
                    raise AssertionError("a unit longer than an empty message")  # _UNIT keeps units smaller
                self.next_message()
                continue
            taken: list[str] = []
            used = 0
            while units and used + len(units[0]) + len(items.joiner) <= room:
                used += len(units[0]) + len(items.joiner)
                taken.append(units.pop(0))
            embed = discord.Embed(title=items.title or None, colour=self.colour,
                                  description=items.description(taken, not units))
            cur.pages.append(_Page(embed, items.block, items.title, len(taken)))


def _pieces(raw: str, limit: int) -> list[str]:
    """One line of text as escaped pieces of at most ``limit`` characters (a long line is cut in parts)."""
    text = escape(raw)
    if len(text) <= limit:
        return [text]
    out, rest = [], raw
    while rest:
        n = len(rest)
        while len(escape(rest[:n])) > limit:
            n = max(1, n * 3 // 4)
        out.append(escape(rest[:n]))
        rest = rest[n:]
    return out


def _button(button: Button, owner: int | None) -> PressButton:
    style = _STYLE.get(button.style, discord.ButtonStyle.secondary)
    return PressButton(button.payload, owner, label=button.label, style=style)


def _build(reply: Reply, reserve: int) -> _Builder:
    builder = _Builder(_colour(reply), reserve)
    for index, block in enumerate(reply.blocks):
        if isinstance(block, Text):
            builder.add_text(block)
        elif isinstance(block, Table):
            builder.add_list(_table_list(index, block))
        elif isinstance(block, KeyValues):
            fields = _kv_fields(block)
            if fields is None:
                builder.add_list(_kv_list(index, block))
                continue
            embed = discord.Embed(title=_title(block.title) or None, colour=builder.colour)
            for name, value in fields:
                embed.add_field(name=name, value=value, inline=True)
            builder.add_embed(_Page(embed, index, _title(block.title), len(fields)))
            builder.totals[index] = len(fields)
        elif isinstance(block, Image):
            name = f"chart-{sum(len(o.files) for o in builder.out) + 1}.png"
            embed = discord.Embed(title=_title(block.caption) or None, colour=builder.colour)
            builder.add_embed(_Page(embed.set_image(url=f"attachment://{name}")))
            builder.current.files.append((name, block.png))
    return builder


def _number(messages: list[_Out]) -> None:
    """Each page's title numbered among the pages of its block: ``Last 50 trades (2/3)``."""
    parts: dict[int, int] = {}
    for out in messages:
        for page in out.pages:
            if page.block >= 0:
                parts[page.block] = parts.get(page.block, 0) + 1
    seen: dict[int, int] = {}
    for out in messages:
        for page in out.pages:
            if page.block >= 0 and page.title:
                seen[page.block] = seen.get(page.block, 0) + 1
                page.embed.title = layout.numbered(page.title, seen[page.block], parts[page.block])


def _cut_to(builder: _Builder, max_messages: int) -> list[_Out]:
    """The first ``max_messages`` messages, the last one saying what was left out."""
    kept = builder.out[:max_messages]
    shown: dict[int, int] = {}
    for out in kept:
        for page in out.pages:
            shown[page.block] = shown.get(page.block, 0) + page.units
    last = kept[-1]
    partly = [p for p in last.pages if p.block >= 0 and shown.get(p.block, 0) < builder.totals.get(p.block, 0)]
    if partly:
        page = partly[-1]
        missing = builder.totals[page.block] - shown[page.block]
        page.embed.description = (page.embed.description or "") + f"\n… {missing} more rows not shown"
    sections = sum(1 for b in builder.totals if b not in shown)
    later_text = any(o.content for o in builder.out[max_messages:])
    if sections or later_text:
        what = f"{sections} more sections" if sections else "the rest"
        last.content.append(escape(f"({what} did not fit in {max_messages} Discord message"
                                   f"{'s' if max_messages > 1 else ''})"))
    return kept


def render_discord_messages(reply: Reply, *, owner: int | None = None,
                            max_messages: int = MAX_MESSAGES) -> list[DiscordMessage]:
    """The messages to send for ``reply``, in order (at least one). ``owner``: the Discord user id
    allowed to press the buttons, or None when anyone may (the dispatcher then decides, e.g. for a
    second admin's approval). Buttons go on the last message."""
    reply = clean_reply(reply)
    builder = _build(reply, 0)
    messages = builder.out
    if len(messages) > max_messages:
        builder = _build(reply, _NOTE_ROOM)
        messages = _cut_to(builder, max_messages)
    _number(messages)
    buttons = [b for block in reply.blocks if isinstance(block, Buttons) for b in block.choices][:25]
    out = [DiscordMessage("\n".join(m.content).strip(), tuple(p.embed for p in m.pages), tuple(m.files))
           for m in messages]
    if len(out) == 1 and not out[0].content and not out[0].embeds and not out[0].files:
        out[0] = DiscordMessage("(no output)")
    if buttons:
        last = out[-1]
        out[-1] = DiscordMessage(last.content, last.embeds, last.files, tuple(_button(b, owner) for b in buttons))
    return out


def render_discord(reply: Reply, *, owner: int | None = None) -> DiscordMessage:
    """``reply`` as one message: what does not fit is counted in a note (see :func:`render_discord_messages`)."""
    return render_discord_messages(reply, owner=owner, max_messages=1)[0]


def is_refusal(reply: Reply) -> bool:
    """A reply whose first text is an error: a refused press leaves the buttons for the right person."""
    return any(isinstance(b, Text) and b.style == "error" for b in reply.blocks)
