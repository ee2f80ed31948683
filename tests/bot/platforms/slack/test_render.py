"""Reply -> Slack Block Kit, as a pure function."""

from __future__ import annotations

import json
import re

from bot.platforms.slack import render_slack
from bot.platforms.slack.render import ACTION_RE, MAX_BLOCKS, MAX_SECTION, render_slack_messages
from bot.reply import Button, Buttons, Image, KeyValues, Reply, Table, Text


def test_text_is_escaped_mrkdwn() -> None:
    msg = render_slack(Reply((Text("closed <!channel> & <@U123> > 0", "error"),)))
    (section,) = msg.blocks
    assert section["text"] == {"type": "mrkdwn", "text": ":x: closed &lt;!channel&gt; &amp; &lt;@U123&gt; &gt; 0",
                               "verbatim": True}  # verbatim: Slack links no names or URLs in it
    assert "<" not in msg.text  # the notification fallback is escaped too


def test_key_values_are_fields_ten_at_a_time() -> None:
    items = tuple((f"k{i}", f"v{i}") for i in range(13))
    title, first, second = render_slack(Reply((KeyValues("Health", items),))).blocks
    assert title["text"]["text"] == "*Health*"
    assert len(first["fields"]) == 10 and len(second["fields"]) == 3
    assert first["fields"][0] == {"type": "mrkdwn", "text": "*k0*\nv0", "verbatim": True}


def test_table_is_an_aligned_code_block_cut_with_a_count() -> None:
    (small,) = render_slack(Reply((Table("Trades", ("pair", "pnl"), (("BTC/USD", "+1.00"),)),))).blocks
    assert small["text"]["text"] == "*Trades*\n```\npair       pnl\n-------  -----\nBTC/USD  +1.00\n```"
    rows = tuple((f"P{i}/USD", "<1>") for i in range(1000))
    *pages, note = render_slack(Reply((Table("All", ("pair", "pnl"), rows),))).blocks
    for page in pages:  # each section reads on its own: numbered title, then the header again
        text = page["text"]["text"]
        assert len(text) <= MAX_SECTION and "&lt;1&gt;" in text
        assert re.match(r"\*All \([0-9]+/[0-9]+\)\*\n```\npair +pnl\n", text), text[:60]
    shown = sum(page["text"]["text"].count("P") for page in pages)
    assert note["text"]["text"] == f"… {1000 - shown} more rows not shown"
    everything = render_slack_messages(Reply((Table("All", ("pair", "pnl"), rows),)))
    assert sum(b["text"]["text"].count("/USD") for m in everything for b in m.blocks) == 1000


def test_buttons_carry_the_payload_with_a_confirm_dialog_for_danger() -> None:
    reply = Reply((Text("Confirm /kill: halt trading", "warning"),
                   Buttons((Button("Confirm", "cf:abcdefghijklmnop", "danger"),
                            Button("Cancel", "cx:abcdefghijklmnop")))))
    actions = render_slack(reply).blocks[-1]
    confirm, cancel = actions["elements"]
    assert actions["type"] == "actions"
    assert (confirm["value"], cancel["value"]) == ("cf:abcdefghijklmnop", "cx:abcdefghijklmnop")
    assert confirm["action_id"] != cancel["action_id"]
    assert all(ACTION_RE.match(e["action_id"]) for e in (confirm, cancel))
    assert confirm["style"] == "danger" and "halt trading" in confirm["confirm"]["text"]["text"]
    assert confirm["confirm"]["confirm"]["text"] == "Confirm" and confirm["confirm"]["style"] == "danger"
    assert "style" not in cancel and "confirm" not in cancel


def test_images_become_uploads_and_limits_hold() -> None:
    msg = render_slack(Reply((Image(b"png-bytes", "Equity"),)))
    assert msg.files == (("chart-1.png", b"png-bytes", "Equity"),)
    assert msg.blocks[0]["type"] == "context"
    many = Reply((*(Text(f"line {i}") for i in range(80)), Buttons((Button("Go", "cf:abcdefghijklmnop"),))))
    blocks = render_slack(many).blocks
    assert len(blocks) <= MAX_BLOCKS and blocks[-1]["type"] == "actions"  # the buttons are never the part cut
    json.dumps(blocks)
