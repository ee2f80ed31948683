"""Neutral text: whatever leaves the process shows user and event text as text — never as markup, a
ping, a link, or a command to the operator's terminal.

Text that reaches a chat or a terminal is partly typed by users (a ``/pause`` reason, an audit row, a
stranger's words) and partly made by the engine; a renderer cannot tell which is which, so every
string goes through one policy in two steps.

1. :func:`clean` makes any ``str`` valid, visible Unicode, the same for every destination: a lone
   surrogate becomes U+FFFD (a well-formed pair is joined); ``\\r\\n``, ``\\r``, NEL and the Unicode
   line and paragraph separators become ``\\n``; terminal escape sequences (CSI, OSC, DCS, APC, ...,
   7-bit and 8-bit) are removed whole, then every other C0 and C1 control and DEL (tab and newline
   stay); invisible format characters (zero-width spaces, bidirectional overrides and isolates, word
   joiners, tag characters, BOM, soft hyphen) are removed, except a zero-width joiner or non-joiner
   between two non-ASCII characters, which emoji sequences and some scripts need; noncharacters
   become U+FFFD. It never raises and is idempotent.
2. One escaper per destination format, each starting with :func:`clean`:

   - :func:`telegram_html`: ``&``, ``<`` and ``>`` as HTML entities (Telegram's HTML parse mode).
   - :func:`discord_markdown`: a backslash before every character that starts markdown or a mention
     (``\\ * _ ~ ` | [ <``, and ``# - + > 1.`` at the start of a line) — so ``[text](url)`` is no masked
     link and ``<@id>``, ``<#id>``, ``<t:...>`` stay text — and a zero-width space after the ``@`` of
     ``@everyone`` / ``@here``. Discord hides the backslashes, so the text reads as typed. Every
     message also carries ``allowed_mentions`` with nothing to parse (see the senders and
     :mod:`bot.platforms.discord.render`): that, not the text, is what guarantees no ping.
   - :func:`discord_code`: inside a code block only a closing fence can do harm.
   - :func:`slack_mrkdwn`: ``&``, ``<`` and ``>`` as entities (no ``<!channel>``, ``<@U...>`` or
     ``<url|label>``), and a zero-width space after the ``@`` of ``@channel``, ``@here``,
     ``@everyone`` and ``@group``. Messages are sent without ``link_names`` and mrkdwn text objects
     with ``verbatim``, so Slack does not turn names into mentions either.
   - the console prints :func:`clean` text as it is.

Escaped text is final: never pass it through :func:`clean` again (that would remove the zero-width
spaces that keep mass mentions inert). :func:`cut` shortens text *before* escaping it, so a limit
never splits an entity or leaves a dangling backslash.

Not done, on purpose: bare URLs stay visible and clickable where the platform links them (the address
is shown as it is, it cannot hide behind other words); Slack's ``*bold*`` / ``_italic_`` have no
escape and may still style user text (they cannot ping or link); Telegram still shows ``@username``
and ``/command`` as the entities its clients detect in any text.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Callable

from bot.reply import Block, Button, Buttons, Image, KeyValues, Reply, Table, Text

REPLACEMENT = "\ufffd"
ZWSP = "\u200b"
ELLIPSIS = "…"

# Unicode general category Cf (format characters), without the two joiners handled below, in the
# Basic Multilingual Plane and beyond (kept apart: a character class with astral ranges is ~20 times
# slower to search, so it is searched only in text that has an astral character). A test checks
# these lists against the running Python's unicodedata.
_FORMAT_BMP = ("\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f\u202a-\u202e"
               "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb")
_FORMAT_ASTRAL = ("\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
                  "\U000e0001\U000e0020-\U000e007f")
_FORMAT = _FORMAT_BMP + _FORMAT_ASTRAL
_JOINERS = "\u200c\u200d"
_NONCHARS_BMP = "\ufdd0-\ufdef\ufffe\uffff"
_NONCHARS_ASTRAL = "".join(f"{chr(p * 0x10000 + 0xFFFE)}{chr(p * 0x10000 + 0xFFFF)}" for p in range(1, 17))
_NONCHARS = _NONCHARS_BMP + _NONCHARS_ASTRAL
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f"

_SUSPECT_BMP = re.compile(f"[{_CONTROLS}\u2028\u2029{_FORMAT_BMP}{_JOINERS}{_NONCHARS_BMP}\ud800-\udfff]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_SUSPECT_ASTRAL = re.compile(f"[{_FORMAT_ASTRAL}{_NONCHARS_ASTRAL}]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NEWLINE = re.compile("\r\n|[\r\x85\u2028\u2029]")
_ESCAPE_SEQUENCE = re.compile(
    # OSC, DCS, SOS, PM and APC strings, up to their terminator (BEL or ST) or the end of the line
    "(?:\x1b[\\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\\\|\x9c)?"
    # CSI: parameters, intermediates, final byte
    "|(?:\x1b\\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    # any other escape (ESC c, ESC 7, ESC ( B, ...)
    "|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
_INTRODUCER = re.compile("[\x1b\x90\x98\x9b\x9d\x9e\x9f]")
_CONTROL = re.compile(f"[{_CONTROLS}]")  # tab (0x09) and newline (0x0a) are not in the range
_INVISIBLE_BMP = re.compile(f"[{_FORMAT_BMP}]")
_INVISIBLE_ASTRAL = re.compile(f"[{_FORMAT_ASTRAL}]")
_NOT_JOINING = re.compile(f"(?<![^\x00-\x7f{_JOINERS}])[{_JOINERS}]|[{_JOINERS}](?![^\x00-\x7f{_JOINERS}])")
_NONCHAR_BMP = re.compile(f"[{_NONCHARS_BMP}]")
_NONCHAR_ASTRAL = re.compile(f"[{_NONCHARS_ASTRAL}]")


def clean(text: str) -> str:
    """``text`` as valid, visible Unicode: no surrogates, controls (but ``\\t`` and ``\\n``), escape
    sequences, invisible format characters or noncharacters. Never raises; ``clean(clean(x)) == clean(x)``."""
    if not _SUSPECT_BMP.search(text) and not (_ASTRAL.search(text) and _SUSPECT_ASTRAL.search(text)):
        return text
    if _SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    text = _NEWLINE.sub("\n", text)
    if _INTRODUCER.search(text):
        text = _ESCAPE_SEQUENCE.sub("", text)
    text = _CONTROL.sub("", text)
    astral = _ASTRAL.search(text) is not None
    text = _INVISIBLE_BMP.sub("", text)
    if astral:
        text = _INVISIBLE_ASTRAL.sub("", text)
    if "\u200c" in text or "\u200d" in text:
        text = _NOT_JOINING.sub("", text)
    text = _NONCHAR_BMP.sub(REPLACEMENT, text)
    return _NONCHAR_ASTRAL.sub(REPLACEMENT, text) if astral else text


def telegram_html(text: str) -> str:
    """Text for Telegram's HTML parse mode: nothing in it is a tag or an entity."""
    return html.escape(clean(text), quote=False)


_DISCORD_INLINE = re.compile(r"[\\*_~`|\[<]")
# a line start: after a newline or any other character a client may break a line at; the lead is any
# whitespace a client may trim before it reads the line (a no-break or ideographic space too)
_DISCORD_LINE_START = re.compile(r"(?:^|(?<=[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]))([^\S\n]*)([#>+-]|[0-9]+\.)",
                                 re.MULTILINE)
_DISCORD_MASS = re.compile(r"@(?=everyone|here)", re.IGNORECASE)


def discord_markdown(text: str) -> str:
    """Text for Discord message content, embed titles, descriptions and fields: shown as typed, with
    no formatting, masked link, mention, channel link, timestamp or heading taking effect."""
    text = _DISCORD_INLINE.sub(r"\\\g<0>", clean(text))
    text = _DISCORD_LINE_START.sub(_escape_line_start, text)
    return _DISCORD_MASS.sub("@" + ZWSP, text)


def _escape_line_start(m: re.Match[str]) -> str:
    lead, mark = m.group(1), m.group(2)
    if mark.endswith("."):
        return f"{lead}{mark[:-1]}\\."
    return f"{lead}\\{mark}"


def discord_code(text: str) -> str:
    """Text for a line inside a Discord code block, where nothing renders but a closing fence."""
    return _DISCORD_MASS.sub("@" + ZWSP, clean(text).replace("```", "'''"))


_SLACK_MASS = re.compile(r"@(?=(?:channel|here|everyone|group)\b)", re.IGNORECASE)


def slack_mrkdwn(text: str) -> str:
    """Text for Slack message text and mrkdwn objects: no ``<...>`` control sequence (mention, channel,
    link, ``<!channel>``) and no ``@channel`` that ``link_names`` could turn into one."""
    text = clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SLACK_MASS.sub("@" + ZWSP, text)


def slack_code(text: str) -> str:
    """Text for a line inside a Slack code block (the entities still apply there)."""
    return slack_mrkdwn(text.replace("```", "'''"))


def cut(text: str, limit: int, escape: Callable[[str], str] = clean, *, measure: Callable[[str], int] = len,
        marker: str = ELLIPSIS) -> str:
    """``escape(text)`` if it measures at most ``limit``; otherwise the escape of the longest prefix of
    the clean text that fits together with ``marker``. Cutting before escaping never splits an
    entity, an escape or a surrogate pair."""
    text = clean(text)
    whole = escape(text)
    if measure(whole) <= limit:
        return whole
    room = limit - measure(marker)
    if room <= 0:
        return marker[: max(0, limit)]
    lo, hi = 0, len(text)  # the longest prefix length whose escape fits: binary search
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(escape(text[:mid])) <= room:
            lo = mid
        else:
            hi = mid - 1
    return escape(text[:lo]) + marker


def clean_reply(reply: Reply) -> Reply:
    """Every string a user could see in ``reply`` cleaned (button payloads are the dispatcher's own and
    go back verbatim). Renderers start here, so widths, lengths and limits are measured on what is shown."""
    return dataclasses.replace(reply, blocks=tuple(_clean_block(block) for block in reply.blocks))


def _clean_block(block: Block) -> Block:
    if isinstance(block, Text):
        return Text(clean(block.text), block.style)
    if isinstance(block, KeyValues):
        return KeyValues(clean(block.title), tuple((clean(k), clean(v)) for k, v in block.items))
    if isinstance(block, Table):
        return Table(clean(block.title), tuple(clean(h) for h in block.headers),
                     tuple(tuple(clean(c) for c in row) for row in block.rows),
                     tuple(clean(h) for h in block.key), tuple(clean(h) for h in block.optional), clean(block.more))
    if isinstance(block, Image):
        return Image(block.png, clean(block.caption))
    if isinstance(block, Buttons):
        return Buttons(tuple(Button(clean(b.label), b.payload, b.style) for b in block.choices))
    return block
