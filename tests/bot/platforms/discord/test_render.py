"""The pure parts: Reply -> Discord message, registry -> slash commands, options -> command line."""

from __future__ import annotations

import dataclasses
import json
from typing import Literal

import pytest

from bot.commands import build_registry
from bot.platforms.discord import command_line, render_discord, slash_commands
from bot.platforms.discord.render import MAX_CONTENT, MAX_DESCRIPTION, MAX_EMBED_TOTAL
from bot.registry import Registry, arg, command
from bot.reply import Button, Buttons, Image, KeyValues, Reply, Table, Text

OWNER = 80351110224678912


def test_text_is_content_with_markdown_and_mentions_escaped() -> None:
    msg = render_discord(Reply((Text("done *now* @everyone <@123>", "success"),)))
    assert msg.content.startswith("✅ ")
    assert "\\*now\\*" in msg.content
    assert "@everyone" not in msg.content  # a zero-width space keeps it from pinging
    assert msg.embeds == () and msg.view() is None
    assert msg.kwargs()["allowed_mentions"].to_dict() == {"parse": []}


def test_key_values_are_embed_fields_and_tables_a_code_block() -> None:
    reply = Reply((KeyValues("Status", (("state", "running"), ("equity", "10,000.00 USD"))),
                   Table("Positions", ("pair", "pnl"), (("BTC/USD", "+1.00"), ("ETH/USD", "-2.50")))))
    status, positions = render_discord(reply).embeds
    assert status.title == "Status"
    assert [(f.name, f.value, f.inline) for f in status.fields] == [("state", "running", True),
                                                                    ("equity", "10,000.00 USD", True)]
    assert positions.title == "Positions"
    assert positions.description == "```\npair       pnl\n-------  -----\nBTC/USD  +1.00\nETH/USD  -2.50\n```"


def test_long_tables_are_cut_with_a_count_never_over_the_limits() -> None:
    rows = tuple((f"PAIR{i}/USD", f"{i:,}.00") for i in range(2000))
    reply = Reply((*(Table(f"t{n}", ("pair", "pnl"), rows) for n in range(12)), Text("x" * 5000)))
    msg = render_discord(reply)
    assert len(msg.content) <= MAX_CONTENT
    assert len(msg.embeds) <= 10 and sum(len(e) for e in msg.embeds) <= MAX_EMBED_TOTAL
    assert all(len(e.description or "") <= MAX_DESCRIPTION for e in msg.embeds)
    assert "more rows not shown" in (msg.embeds[-1].description or "")  # the page where the table was cut
    assert "did not fit" in msg.content


def test_image_is_an_attachment_shown_in_an_embed() -> None:
    msg = render_discord(Reply((Image(b"\x89PNG...", "Equity, 30 days"),)))
    assert msg.files == (("chart-1.png", b"\x89PNG..."),)
    assert msg.embeds[0].image.url == "attachment://chart-1.png" and msg.embeds[0].title == "Equity, 30 days"
    first, second = msg.kwargs()["files"], msg.kwargs()["files"]
    assert first[0] is not second[0]  # a discord.File is single-use: every send gets fresh ones


async def test_buttons_carry_the_payload_and_the_owner() -> None:
    reply = Reply((Text("Confirm /kill?", "warning"),
                   Buttons((Button("Confirm", "cf:abcdefghijklmnop", "danger"),
                            Button("Cancel", "cx:abcdefghijklmnop")))))
    view = render_discord(reply, owner=OWNER).view()
    assert view is not None and view.timeout is None
    rows = view.to_components()
    assert [(c["label"], c["custom_id"], c["style"]) for c in rows[0]["components"]] == [
        ("Confirm", f"cf:abcdefghijklmnop#{OWNER}", 4), ("Cancel", f"cx:abcdefghijklmnop#{OWNER}", 2)]
    anyone = render_discord(reply, owner=None).view()
    assert anyone is not None
    assert [c["custom_id"] for c in anyone.to_components()[0]["components"]] == ["cf:abcdefghijklmnop",
                                                                               "cx:abcdefghijklmnop"]


def test_empty_reply_still_says_something() -> None:
    assert render_discord(Reply(())).content == "(no output)"


def test_every_command_becomes_a_valid_slash_command() -> None:
    registry = build_registry()
    commands = slash_commands(registry)
    assert [c["name"] for c in commands] == [s.name for s in registry]
    for c in commands:
        assert 1 <= len(c["description"]) <= 100 and c["contexts"] == [0]
        required = [o["required"] for o in c["options"]]
        assert required == sorted(required, reverse=True)  # Discord wants required options first
    json.dumps(commands)  # plain JSON for the bulk-overwrite endpoint
    by_name = {c["name"]: c for c in commands}
    audit = {o["name"]: o for o in by_name["audit"]["options"]}
    assert audit["n"]["type"] == 4 and audit["n"].get("min_value") is not None
    assert [ch["value"] for ch in audit["scope"]["choices"]] == ["all"]
    pnl = by_name["pnl"]["options"][0]
    assert [ch["value"] for ch in pnl["choices"]] == ["all", "today", "week", "month"]
    grant = {o["name"]: o for o in by_name["grant"]["options"]}
    assert [ch["value"] for ch in grant["role"]["choices"]] == ["viewer", "trader", "admin"]


@dataclasses.dataclass(frozen=True)
class _Args:
    pair: str = arg(kind="pair")
    n: int = arg(5, min=1, max=50)
    mode: Literal["fast", "slow"] = "fast"
    reason: str | None = arg(None, kind="text")


@command("probe", args=_Args, help="A command with every kind of argument")
async def _probe(ctx, args):  # type: ignore[no-untyped-def]
    raise AssertionError("not called")


@pytest.mark.parametrize(("options", "line"), [
    ({"pair": "BTC/USD"}, "/probe BTC/USD"),
    ({"pair": "BTC/USD", "n": 7}, "/probe BTC/USD 7"),
    ({"pair": "BTC/USD", "reason": "risk  off\nnow"}, "/probe BTC/USD 5 fast risk off now"),
    ({"reason": "why"}, "/probe"),  # the required pair is missing: the dispatcher answers with the usage
])
def test_options_become_the_command_line_in_registry_order(options: dict, line: str) -> None:  # type: ignore[type-arg]
    spec = Registry([_probe]).get("probe")  # type: ignore[list-item]
    assert command_line("probe", spec, [{"name": k, "value": v} for k, v in options.items()]) == line


def test_unknown_command_keeps_its_name_for_the_dispatcher() -> None:
    assert command_line("gone", None, [{"name": "x", "value": "1"}]) == "/gone"


def test_embeds_take_the_colour_of_the_reply_s_tone() -> None:
    """Before, every embed was blurple: a /status saying trading is killed looked like any other."""
    import discord

    status = KeyValues("Status", (("state", "killed"),))
    assert render_discord(Reply((Text("Trading is KILLED", "error"), status))).embeds[0].colour == discord.Colour.red()
    assert render_discord(Reply((Text("Paused", "warning"), status))).embeds[0].colour == discord.Colour.orange()
    assert render_discord(Reply((status,))).embeds[0].colour == discord.Colour.blurple()


def test_a_wide_table_becomes_one_bold_block_per_row() -> None:
    rows = (("BTC/USD", "0.0312", "64,000.50", "66,210.00", "+68.94 USD"),)
    [embed] = render_discord(Reply((Table("Open positions", ("pair", "qty", "entry", "mark", "PnL"), rows,
                                          key=("pair", "PnL")),))).embeds
    assert embed.description == "**BTC/USD  +68.94 USD**\nqty 0.0312 · entry 64,000.50\nmark 66,210.00"
