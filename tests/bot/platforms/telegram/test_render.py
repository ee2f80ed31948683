"""Rendering replies as Telegram messages: what a user sees, and that Telegram would accept it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.platforms.telegram.render import MAX_TEXT, PhotoMessage, TextMessage, render_telegram, units
from bot.reply import Button, Buttons, Image, KeyValues, Reply, Table, Text
from tests.fakes.telegram import parse_html

CONFIRM = Buttons((Button("Confirm", "cf:AAAAAAAAAAAAAAAA", "danger"), Button("Cancel", "cx:AAAAAAAAAAAAAAAA")))


def texts(reply: Reply, **kw: int) -> list[str]:
    return [m.html for m in render_telegram(reply, **kw) if isinstance(m, TextMessage)]


def test_text_is_escaped_and_styled() -> None:
    [html] = texts(Reply((Text("a < b & c > d", "error"),)))
    assert html == "⛔ a &lt; b &amp; c &gt; d"
    assert parse_html(html)[0] == "⛔ a < b & c > d"


def test_key_values_are_bold_keys_and_plain_values() -> None:
    [html] = texts(Reply((KeyValues("Status", (("state", "running <ok>"), ("equity", "10,000.00 USD"))),)))
    assert html == "<b>Status</b>\n<b>state</b>: running &lt;ok&gt;\n<b>equity</b>: 10,000.00 USD"


def test_tables_are_monospace_and_aligned() -> None:
    [html] = texts(Reply((Table("Open positions", ("pair", "PnL"), (("BTC/USD", "+500.00"), ("ETH/USD", "-5.00"))),)))
    text, entities = parse_html(html)
    assert text.splitlines() == ["Open positions", "pair         PnL", "-------  -------",
                                 "BTC/USD  +500.00", "ETH/USD    -5.00"]
    assert [e["type"] for e in entities] == ["bold", "pre"]
    assert text[entities[1]["offset"]:].startswith("pair")


def test_empty_table_says_none() -> None:
    [html] = texts(Reply((Table("Trades", ("pair", "PnL"), ()),)))
    assert "(none)" in html


def test_long_table_is_split_on_lines_and_stays_monospace() -> None:
    rows = tuple((f"PAIR{i:04d}/USD", f"{i * 1.5:,.2f}") for i in range(600))
    messages = texts(Reply((Text("intro"), Table("Many", ("pair", "value"), rows))))
    assert len(messages) > 1
    seen: list[str] = []
    for html in messages:
        assert units(html) <= MAX_TEXT
        text, entities = parse_html(html)  # balanced: every part opens and closes its own <pre>
        assert any(e["type"] == "pre" for e in entities)
        seen += [line for line in text.splitlines() if line.startswith("PAIR")]
    assert seen == [f"{p}  {v:>6}" for p, v in rows]  # value column right-aligned to its widest cell


def test_a_single_line_longer_than_a_message_is_cut() -> None:
    messages = texts(Reply((Text("x&" * 5000),)))
    assert all(units(m) <= MAX_TEXT for m in messages)
    assert "".join(parse_html(m)[0] for m in messages) == "x&" * 5000


def test_length_is_counted_in_utf16_units() -> None:
    messages = texts(Reply((Text("\n".join(["🙂" * 100] * 30)),)))  # 6,000 units, 3,000 code points
    assert len(messages) == 2 and all(units(m) <= MAX_TEXT for m in messages)


def test_buttons_go_on_the_message_they_follow() -> None:
    [message] = render_telegram(Reply((Text("Confirm /kill", "warning"), CONFIRM)))
    assert isinstance(message, TextMessage)
    assert [[b.label for b in row] for row in message.keyboard] == [["Confirm", "Cancel"]]
    assert message.keyboard[0][0].payload == "cf:AAAAAAAAAAAAAAAA"


def test_buttons_on_a_long_reply_go_on_its_last_part() -> None:
    messages = render_telegram(Reply((Text("\n".join(["line"] * 2000)), CONFIRM)))
    assert len(messages) > 1
    assert [bool(m.keyboard) for m in messages] == [False] * (len(messages) - 1) + [True]


def test_images_go_as_photos_with_their_caption() -> None:
    png = b"\x89PNG fake"
    photo, after = render_telegram(Reply((Image(png, "Equity <30d>"), Text("done"))))
    assert isinstance(photo, PhotoMessage) and photo.png == png and photo.caption_html == "Equity &lt;30d&gt;"
    assert isinstance(after, TextMessage) and after.html == "done"


def test_a_caption_too_long_for_a_photo_follows_as_text() -> None:
    photo, text = render_telegram(Reply((Image(b"png", "c" * 2000),)))
    assert isinstance(photo, PhotoMessage) and photo.caption_html == ""
    assert isinstance(text, TextMessage) and text.html == "c" * 2000


_cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    blocks: list[object] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["text", "kv", "table"]))
        if kind == "text":
            blocks.append(Text(draw(st.text(max_size=3000)), draw(st.sampled_from(["plain", "error", "success"]))))
        elif kind == "kv":
            blocks.append(KeyValues(draw(_cell), tuple(draw(st.lists(st.tuples(_cell, _cell), max_size=30)))))
        else:
            rows = draw(st.lists(st.tuples(_cell, _cell), max_size=200))
            blocks.append(Table(draw(_cell), ("a", "b"), tuple(rows)))
    return Reply(tuple(blocks))  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(replies(), st.integers(200, MAX_TEXT))
def test_any_reply_renders_to_valid_parts_within_the_limit(reply: Reply, limit: int) -> None:
    for html in texts(reply, limit=limit):
        assert 0 < units(html) <= limit
        parse_html(html)  # Telegram would parse it
