"""Long replies on every platform: each part reads on its own, no row is lost, and a cut says so.

Before, a long table was cut with "… 29 more rows" on Discord and Slack and nothing else, and a
Telegram continuation started with a bare data row. Now each part of a split table starts with its
title numbered ("Last 50 trades (2/3)") and, for a grid, its header; rows are never split between
parts; a table's ``more`` hint (how to see the next page) follows its last row; and a renderer that
must stop early counts what it left out.
"""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.platforms.console import render_console
from bot.platforms.discord.render import render_discord, render_discord_messages
from bot.platforms.slack.render import render_slack, render_slack_messages
from bot.platforms.telegram.render import TextMessage, render_telegram
from bot.reply import Reply, Table, Text
from persistence.db import Database
from tests.bot.phone_replies import every_reply, phone_harness
from tests.fakes.telegram import parse_html

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LONG_GRID = Table("Prices", ("pair", "bid"), tuple((f"P{i:04d}/USD", f"{i}.00") for i in range(900)))
_PART = re.compile(r"^(?P<title>.*) \((?P<k>[0-9]+)/(?P<n>[0-9]+)\)$")


@pytest.fixture
async def long_replies(sqlite_db: Database) -> dict[str, Reply]:
    h, _ = phone_harness(sqlite_db)
    return {s.line: s.reply for s in await every_reply(h) if s.line in ("/trades 50", "/audit all 50")}


def _table(reply: Reply) -> Table:
    return next(b for b in reply.blocks if isinstance(b, Table))


def _numbering(titles: list[str], title: str) -> None:
    """``titles`` are ``title (1/n)`` .. ``title (n/n)`` in order, with n > 1."""
    parts = [_PART.match(t) for t in titles]
    assert all(p is not None and p["title"] == title for p in parts), titles
    n = len(parts)
    assert n > 1 and [(int(p["k"]), int(p["n"])) for p in parts if p] == [(k, n) for k in range(1, n + 1)]


# --- Telegram ---------------------------------------------------------------------------------------


def _telegram_texts(reply: Reply, **kw: int) -> list[tuple[str, list[dict]]]:  # type: ignore[type-arg]
    return [parse_html(m.html) for m in render_telegram(reply, **kw) if isinstance(m, TextMessage)]


@pytest.mark.parametrize("line", ["/trades 50", "/audit all 50"])
async def test_telegram_parts_start_with_the_numbered_title_and_keep_every_record(
        long_replies: dict[str, Reply], line: str) -> None:
    table = _table(long_replies[line])
    messages = _telegram_texts(long_replies[line])
    _numbering([text.split("\n")[0] for text, _ in messages if text.startswith(table.title)], table.title)
    headings = 0
    for text, entities in messages:
        bold = [text[e["offset"]:e["offset"] + e["length"]] for e in entities if e["type"] == "bold"]
        headings += sum(1 for b in bold if not b.startswith(table.title))  # one bold first line per record
    assert headings == len(table.rows) == 50


def test_telegram_grid_parts_repeat_the_header() -> None:
    messages = _telegram_texts(Reply((LONG_GRID,)))
    _numbering([text.split("\n")[0] for text, _ in messages], "Prices")
    rows = []
    for text, _ in messages:
        lines = text.split("\n")
        assert lines[1].split() == ["pair", "bid"] and set(lines[2]) <= {"-", " "}
        rows += lines[3:]
    assert rows == [f"{p}  {b:>6}" for p, b in LONG_GRID.rows]


# --- Discord ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["/trades 50", "/audit all 50"])
async def test_discord_pages_are_numbered_embeds_spread_over_messages(long_replies: dict[str, Reply],
                                                                       line: str) -> None:
    table = _table(long_replies[line])
    messages = render_discord_messages(long_replies[line])
    assert len(messages) > 1
    pages = [e for m in messages for e in m.embeds if e.title and e.title.startswith(table.title.split(",")[0])]
    _numbering([e.title or "" for e in pages], table.title)
    records = sum(len(re.findall(r"^\*\*", e.description or "", re.MULTILINE)) for e in pages)
    assert records == 50


async def test_discord_in_one_message_counts_the_rows_left_out(long_replies: dict[str, Reply]) -> None:
    message = render_discord(long_replies["/trades 50"])
    shown = sum(len(re.findall(r"^\*\*", e.description or "", re.MULTILINE)) for e in message.embeds)
    assert 0 < shown < 50
    assert (message.embeds[-1].description or "").endswith(f"… {50 - shown} more rows not shown")


def test_discord_grid_pages_repeat_the_header_in_their_code_block() -> None:
    pages = [e for m in render_discord_messages(Reply((LONG_GRID,))) for e in m.embeds]
    _numbering([e.title or "" for e in pages], "Prices")
    rows = []
    for e in pages:
        lines = (e.description or "").split("\n")
        assert lines[0] == "```" and lines[1].split() == ["pair", "bid"] and lines[-1] == "```"
        rows += lines[3:-1]
    assert len(rows) == 900 and rows[-1].startswith("P0899/USD")


# --- Slack ------------------------------------------------------------------------------------------


def _sections(messages: list) -> list[str]:  # type: ignore[type-arg]
    return [b["text"]["text"] for m in messages for b in m.blocks if b["type"] == "section" and "text" in b]


@pytest.mark.parametrize("line", ["/trades 50", "/audit all 50"])
async def test_slack_sections_are_numbered_and_keep_every_record(long_replies: dict[str, Reply], line: str) -> None:
    table = _table(long_replies[line])
    sections = [s for s in _sections(render_slack_messages(long_replies[line]))
                if s.startswith("*" + table.title.split(",")[0])]
    _numbering([html.unescape(s.split("\n")[0].strip("*")) for s in sections], table.title)
    assert sum(len(re.findall(r"^\*(?!.*\([0-9]+/[0-9]+\)\*$)", s, re.MULTILINE)) for s in sections) == 50


def test_slack_in_one_message_counts_the_rows_left_out() -> None:
    *pages, note = render_slack(Reply((LONG_GRID,))).blocks
    shown = sum(page["text"]["text"].count("/USD") for page in pages)
    assert 0 < shown < 900 and note["text"]["text"] == f"… {900 - shown} more rows not shown"
    everything = render_slack_messages(Reply((LONG_GRID,)))
    assert len(everything) > 1 and sum(s.count("/USD") for s in _sections(everything)) == 900


# --- the table's own "more" hint, and the console ---------------------------------------------------


MORE = Table("Last 50 trades", ("pair", "PnL"), tuple((f"P{i}/USD", "+1.00") for i in range(50)),
             more="Older trades: /trades 50 page 2")


def test_the_more_hint_follows_the_last_row_on_every_platform() -> None:
    reply = Reply((Text("Newest first."), MORE))
    telegram = [text for text, _ in _telegram_texts(reply, limit=400)]
    assert len(telegram) > 1 and telegram[-1].endswith("P49/USD  +1.00\nOlder trades: /trades 50 page 2")
    assert not any("Older trades" in t for t in telegram[:-1])
    discord = [e.description or "" for m in render_discord_messages(reply) for e in m.embeds]
    assert discord[-1].endswith("```\nOlder trades: /trades 50 page 2")
    slack = _sections(render_slack_messages(reply))
    assert slack[-1].endswith("```\nOlder trades: /trades 50 page 2")
    assert render_console(reply).endswith("P49/USD  +1.00\nOlder trades: /trades 50 page 2")


def test_telegram_beyond_its_message_cap_says_how_many_rows_were_left_out() -> None:
    messages = _telegram_texts(Reply((LONG_GRID,)), max_messages=2)
    assert len(messages) == 2
    shown = sum(1 for text, _ in messages for line in text.split("\n") if line.startswith("P0"))
    assert messages[-1][0].endswith(f"… {900 - shown} more rows not shown: the reply is longer than 2 messages.")


# --- any table, every platform ----------------------------------------------------------------------

_CELL = st.text(alphabet="ab c-+.,:/0123456789*_<>&@#`|", max_size=70)


@st.composite
def tables(draw: st.DrawFn) -> Table:
    columns = draw(st.integers(1, 5))
    n = draw(st.integers(0, 300))
    rows = tuple((f"R{i:04d}x", *(draw(_CELL) for _ in range(columns - 1))) for i in range(n))
    headers = tuple(f"h{c}" for c in range(columns))
    return Table(draw(_CELL), headers, rows, more=draw(st.sampled_from(["", "Older: /trades 50 page 2"])))


def _keys(text: str) -> set[str]:
    return set(re.findall(r"R[0-9]{4}x", text))


@settings(max_examples=40, deadline=None)
@given(tables())
def test_any_table_is_shown_whole_and_within_the_limits_on_every_platform(table: Table) -> None:
    reply = Reply((Text("intro"), table, Text("outro")))
    every = {row[0] for row in table.rows}
    telegram = render_telegram(reply)
    assert all(isinstance(m, TextMessage) and 0 < len(m.html.encode("utf-16-le")) // 2 <= 4096 for m in telegram)
    assert _keys("".join(parse_html(m.html)[0] for m in telegram if isinstance(m, TextMessage))) == every
    discord = render_discord_messages(reply)
    for m in discord:
        assert len(m.content) <= 2000 and len(m.embeds) <= 10 and sum(len(e) for e in m.embeds) <= 6000
        assert all(len(e.description or "") <= 4096 and len(e.title or "") <= 256 for e in m.embeds)
    assert _keys("".join(e.description or "" for m in discord for e in m.embeds)) == every
    slack = render_slack_messages(reply)
    for s in slack:
        texts = _sections([s])
        assert len(s.blocks) <= 50 and all(len(t) <= 3000 for t in texts) and sum(map(len, texts)) <= 10000
    assert _keys("".join(_sections(slack))) == every


def test_discord_pages_keep_room_for_the_numbering_their_titles_get_later() -> None:
    """The pages of one table filled a message to 6,000 characters before " (1/2)" was added to the
    first page's title: 6,002, and Discord refuses the whole message."""
    rows = tuple((f"R{i:04d}x", "x" * 7) for i in range(370))
    reply = Reply((Text("intro"), Table("T", ("h0", "h1"), rows), Text("outro")))
    messages = render_discord_messages(reply)
    assert all(sum(len(e) for e in m.embeds) <= 6000 for m in messages)
    assert _keys("".join(e.description or "" for m in messages for e in m.embeds)) == {r[0] for r in rows}
