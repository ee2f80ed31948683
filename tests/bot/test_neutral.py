"""The neutral-text policy on its own: clean text, one escaper per format, cutting without breaking escapes."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.neutral import (
    ELLIPSIS,
    ZWSP,
    clean,
    cut,
    discord_code,
    discord_markdown,
    slack_mrkdwn,
    telegram_html,
)
from bot.notify.senders import AlertMessage, alert_text
from tests.bot.hostile import (
    CORPUS,
    assert_clean,
    assert_discord_inert,
    assert_slack_inert,
    assert_telegram_inert,
    ident,
)

# Any str Python can hold: lone surrogates, controls, unassigned and private-use code points included.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)


@pytest.mark.parametrize(("raw", "shown"), [
    ("/pause \x1b]0;pwned\x07\x1b[2J", "/pause "),  # OSC title + clear screen: gone whole
    ("\x1b]52;c;cHduZWQ=\x07after", "after"),  # OSC 52 clipboard write
    ("a\x1b[31mred\x1b[0m", "ared"),
    ("x\x9b2Jy", "xy"),  # the 8-bit CSI
    ("\x1bP+q\x1b\\dcs", "dcs"),
    ("unterminated \x1b]0;title\nnext line", "unterminated \nnext line"),  # a string never eats past the line
    ("ok\rerror: overwritten", "ok\nerror: overwritten"),  # a carriage return cannot overwrite the line
    ("a\r\nb\x85c\u2028d\u2029e", "a\nb\nc\nd\ne"),
    ("tab\tnew\nline", "tab\tnew\nline"),
    ("a\x00b\x08\x0b\x0c\x7f\x80\x9cc", "abc"),
    ("apc\x9fstring to the end", "apc"),  # an 8-bit string introducer takes the rest of the line, as a terminal would
    ("bad\ud800x", "bad\ufffdx"), ("\udfff", "\ufffd"), ("\ud83d\ude00", "\U0001F600"),  # a pair is joined
    ("\u202egnp.exe", "gnp.exe"), ("\u2066iso\u2069", "iso"), ("@\u200beveryone", "@everyone"),
    ("\ufeffbom", "bom"), ("tag\U000e0041", "tag"), ("soft\u00adhyphen", "softhyphen"),
    ("\U0001F468\u200d\U0001F469", "\U0001F468\u200d\U0001F469"),  # an emoji sequence keeps its joiner
    ("\u0645\u200c\u0646", "\u0645\u200c\u0646"),  # so does a Persian word its non-joiner
    ("@\u200deveryone", "@everyone"), ("a\u200d", "a"),
    ("\ufdd0\ufffe\U0010ffff", "\ufffd\ufffd\ufffd"),
    ("plain text, 1,234.56 USD", "plain text, 1,234.56 USD"),
])
def test_clean_shows_text_and_nothing_else(raw: str, shown: str) -> None:
    assert clean(raw) == shown


def test_every_format_character_is_removed_or_a_kept_joiner() -> None:
    """Checked against the running Python's Unicode database, so a newer Unicode adds no gap unseen."""
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if unicodedata.category(ch) == "Cf":
            assert clean(f"\u00e9{ch}\u00e9").replace("\u00e9", "") in ("", "\u200c", "\u200d"), hex(cp)
            assert clean(f"a{ch}a") == "aa", hex(cp)


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_clean_never_raises_is_idempotent_and_encodable(text: str) -> None:
    once = clean(text)
    assert clean(once) == once
    assert_clean(once)


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_every_escaper_is_inert_for_any_text(text: str) -> None:
    assert_telegram_inert(telegram_html(text), own=frozenset())
    assert_discord_inert(discord_markdown(text))
    assert_slack_inert(slack_mrkdwn(text))


@pytest.mark.parametrize("text", CORPUS, ids=ident)
def test_every_escaper_is_inert_for_the_corpus(text: str) -> None:
    assert_telegram_inert(telegram_html(text), own=frozenset())
    assert_discord_inert(discord_markdown(text))
    assert_slack_inert(slack_mrkdwn(text))
    assert "```" not in discord_code(text)


def test_discord_escapes_read_as_typed() -> None:
    assert discord_markdown("[re-login here](https://evil.example/login)") == \
        "\\[re-login here](https://evil.example/login)"
    assert discord_markdown("@everyone <@123> <t:0:R>") == f"@{ZWSP}everyone \\<@123> \\<t:0:R>"
    assert discord_markdown("# big\n  - item\n10. ten\n> quote\n-# small") == \
        "\\# big\n  \\- item\n10\\. ten\n\\> quote\n\\-# small"
    assert discord_markdown("a \\<@1>") == "a \\\\\\<@1>"  # a typed backslash cannot un-escape the mention
    assert discord_markdown("BTC/USD 1,234.56 -> 1.5%") == "BTC/USD 1,234.56 -> 1.5%"  # plain text is untouched


def test_slack_escapes_read_as_typed() -> None:
    assert slack_mrkdwn("<!channel> & <@U1> <https://e.example|x>") == \
        "&lt;!channel&gt; &amp; &lt;@U1&gt; &lt;https://e.example|x&gt;"
    assert slack_mrkdwn("@channel @Here, @everyone @groups") == f"@{ZWSP}channel @{ZWSP}Here, @{ZWSP}everyone @groups"


def test_telegram_escapes_read_as_typed() -> None:
    assert telegram_html('<a href="x">y</a> & \x1b[2J') == '&lt;a href="x"&gt;y&lt;/a&gt; &amp; '


@pytest.mark.parametrize("escape", [slack_mrkdwn, discord_markdown, telegram_html])
@pytest.mark.parametrize("limit", [1, 2, 5, 17, 100])
def test_cut_fits_and_never_splits_an_escape(escape, limit: int) -> None:  # type: ignore[no-untyped-def]
    text = "<&>\\[@everyone_*" * 20 + "\ud800"
    out = cut(text, limit, escape)
    assert len(out) <= limit
    if limit > 1:
        assert out.endswith(ELLIPSIS)
        body, whole = out[: -len(ELLIPSIS)], clean(text)
        assert any(escape(whole[:k]) == body for k in range(len(whole)))  # a whole prefix, escaped: no half escape
    assert cut("short", 100, escape) == escape("short")


def test_alert_text_fits_after_escaping_and_keeps_every_digest_line() -> None:
    """The dispatcher sized this digest on raw text (2,460 characters); escaped for Slack it is four
    times longer. The sender shortens the longest lines instead of dropping any."""
    lines = tuple(f"#{i} " + "<" * 200 for i in range(12))
    text = alert_text(AlertMessage("digest", "warning", lines, False, digest=True), 3000, slack_mrkdwn)
    assert len(text) <= 3000 and text.startswith("⚠️ 12 alerts:\n")
    assert all(f"• #{i} &lt;" in text for i in range(12)) and text.count(ELLIPSIS) == 12
    assert_slack_inert(text)
    assert alert_text(AlertMessage("x", "info", ("\x00\x1b[2J",), False), 3000) == "(an alert with no text)"
