"""Hostile strings, and what "inert" means for each place text can leave the process.

The corpus is what a chat user (or a stranger whose words end up in an audit row or an alert) could
type to make our output do something: ping a channel, hide a link behind friendly words, break our
markup, drive the operator's terminal, hide text with zero-width or bidirectional characters, or
make an encoder raise. Every renderer and alert sender is run over all of it (tests/bot/test_hostile_text.py).

The ``assert_*_inert`` helpers check the output as the platform would read it: Telegram's HTML
parser, Discord's markdown (a backslash escapes the next character), Slack's ``<...>`` control
sequences and entities, a terminal's escape sequences.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes.telegram import parse_html

PAUSE_REASON = "@everyone <@U0123ABCD> <!channel> [re-login here](https://evil.example/login)"
TERMINAL = "\x1b]0;pwned\x07\x1b[2J"
LONE_SURROGATE = "bad\ud800x"
_UNIT = "@everyone <!channel> <@U1> [x](https://evil.example) \x1b[2J \ud800 \u202e <b>*_~`|\n> # - "
BIG = (_UNIT * (100_000 // len(_UNIT) + 1))[:100_000]

MENTIONS = ("@everyone", "@here", "@channel", "@Everyone", "@group", "<!channel>", "<!here>", "<!everyone>",
            "<!subteam^S0123ABCD>", "<@U0123ABCD>", "<@123456789012345678>", "<@!123456789012345678>",
            "<@&123456789012345678>", "<#C0123ABCD>", "<#123456789012345678>")
LINKS = ("[re-login here](https://evil.example/login)", "[x](<https://evil.example>)",
         "<https://evil.example/login|re-login here>", "<https://evil.example>", "<mailto:a@evil.example|help>",
         '<a href="https://evil.example/login">re-login</a>', "[a\\](b)](https://evil.example)")
MARKUP = ("<b>bold</b>", "</pre><b>x", "<pre>", "&lt;b&gt; &amp; &#60;", "<tg-spoiler>s</tg-spoiler>",
          "*bold* _it_ ~strike~ `code` ~~s~~ __u__", "```\nbreak out\n```", "||spoiler||", "# heading",
          "-# small", "> quote", ">>> quote all", "1. list", "- item", "<t:0:R>", "</kill:123456789012345678>",
          "<:pwn:123456789012345678>", "\\<@123456789012345678>", "\\", "&", ":warning:")
ESCAPES = (TERMINAL, "\x1b]52;c;cHduZWQ=\x07", "\x1b[31mred\x1b[0m", "\x9b2J", "\x9d0;pwned\x9c",
           "\x1bP+q\x1b\\", "ok\rerror: overwritten", "\x1bc", "\x08\x08\x08x", "\x1b", "tab\there\x0bvt\x0cff")
INVISIBLE = ("@\u200beveryone", "@\u200deveryone", "e\u200bveryone", "<\u200b!channel>", "[x]\u200b(https://e.example)",
             "\u202egnp.exe", "\u2066isolate\u2069", "\u200fRLM", "\ufeffbom", "tag\U000e0041\U000e0042",
             "soft\u00adhyphen", "\u2028line\u2029para")
INVALID = ("a\x00b", "\x00", LONE_SURROGATE, "\udfff", "\ud83d", "\ud83d\ude00 pair", "\ufffe\uffff\U0010ffff",
           "\x7f\x85\x9f")
CORPUS: tuple[str, ...] = (*MENTIONS, *LINKS, *MARKUP, *ESCAPES, *INVISIBLE, *INVALID, PAUSE_REASON, BIG)


def ident(text: str) -> str:
    """A readable test id."""
    return ascii(text)[1:-1][:40] if len(text) < 1000 else f"{len(text)}-chars"


# --- every destination ---------------------------------------------------------------------------

_NEVER = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069\ufeff\U000e0000-\U000e007f]")


def assert_clean(text: str, where: str = "") -> None:
    """Valid Unicode a platform accepts: no control (but tab and newline), no escape sequence, no
    surrogate, no bidirectional override or isolate, no tag character."""
    m = _NEVER.search(text)
    assert m is None, f"{where}: {m.group()!r} at {m.start()} in {text[max(0, m.start() - 20):m.start() + 20]!r}"
    text.encode("utf-8")


def strings(doc: Any) -> list[str]:
    """Every string inside a JSON-like document."""
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, dict):
        return [s for v in doc.values() for s in strings(v)]
    if isinstance(doc, (list, tuple)):
        return [s for v in doc for s in strings(v)]
    return []


def assert_json_encodable(doc: Any) -> None:
    """As a platform client sends it: UTF-8 JSON (a lone surrogate cannot be encoded)."""
    json.dumps(doc, ensure_ascii=False).encode("utf-8")


# --- the console ---------------------------------------------------------------------------------


def assert_console_inert(text: str) -> None:
    assert "\x1b" not in text, f"ESC in {text[max(0, text.find(chr(27)) - 30):text.find(chr(27)) + 30]!r}"
    assert "\r" not in text, "a carriage return could overwrite what the line showed"
    assert_clean(text, "console")


# --- Telegram ------------------------------------------------------------------------------------


def assert_telegram_inert(html: str, own: frozenset[str] = frozenset({"bold", "pre"})) -> None:
    """Telegram would parse it, and the only entities are the renderer's own (bold titles and keys,
    monospace tables): no link, spoiler or anything else a user's ``<tag>`` could open."""
    assert_clean(html, "telegram html")
    _, entities = parse_html(html)
    assert {e["type"] for e in entities} <= own, entities
    assert "<a" not in html and "<tg-" not in html


# --- Discord -------------------------------------------------------------------------------------

_MASS_DISCORD = re.compile(r"@(everyone|here)", re.IGNORECASE)
_DISCORD_INLINE = "\\*_~`|[<"


def _unescaped(text: str) -> list[tuple[int, str]]:
    """(position, character) of every character Discord reads without a preceding backslash."""
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        out.append((i, text[i]))
        i += 1
    return out


def assert_discord_inert(text: str, where: str = "discord") -> None:
    """Discord markdown that shows as typed: no mass mention, and no markdown, masked link, mention,
    channel link or timestamp character left unescaped (a backslash makes the next one literal)."""
    assert_clean(text, where)
    assert _MASS_DISCORD.search(text) is None, f"{where}: a mass mention in {text[:200]!r}"
    live = [(i, c) for i, c in _unescaped(text) if c in _DISCORD_INLINE]
    assert not live, f"{where}: unescaped {live[:5]} in {text[:200]!r}"
    for line in re.split(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", text):
        stripped = line.lstrip()  # any whitespace: a client may trim a no-break space as well
        assert not re.match(r"[#>+-]|[0-9]+\.", stripped), f"{where}: line starts with markdown: {line[:80]!r}"


def assert_discord_code_block(text: str, where: str = "discord code block") -> None:
    """One fenced block, start to end: inside it nothing renders or pings."""
    assert_clean(text, where)
    assert text.startswith("```\n") and text.endswith("\n```") and text.count("```") == 2, text[:200]
    assert _MASS_DISCORD.search(text) is None


def assert_no_mentions_parsed(allowed_mentions: Any) -> None:
    assert allowed_mentions == {"parse": []}, f"allowed_mentions is {allowed_mentions!r}"


# --- Slack ---------------------------------------------------------------------------------------

_MASS_SLACK = re.compile(r"@(channel|here|everyone|group)\b", re.IGNORECASE)
_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def assert_slack_inert(text: str, where: str = "slack") -> None:
    """Slack text with no control sequence: no ``<`` or ``>`` at all (every mention, channel, link and
    ``<!channel>`` needs them), every ``&`` an entity, and no ``@channel`` words for ``link_names``."""
    assert_clean(text, where)
    assert "<" not in text and ">" not in text, f"{where}: {text[:200]!r}"
    assert _ENTITY.search(text) is None, f"{where}: a bare & in {text[:200]!r}"
    assert _MASS_SLACK.search(text) is None, f"{where}: a mass mention in {text[:200]!r}"


def slack_text_objects(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every text object inside Block Kit blocks."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


def assert_slack_blocks_inert(blocks: list[dict[str, Any]]) -> None:
    """mrkdwn objects are verbatim and inert; plain_text objects (labels) are clean (Slack does not parse them)."""
    assert_json_encodable(blocks)
    for obj in slack_text_objects(blocks):
        if obj["type"] == "mrkdwn":
            assert obj.get("verbatim") is True, obj
            assert_slack_inert(obj["text"], "slack mrkdwn")
        else:
            assert_clean(obj["text"], "slack plain_text")
