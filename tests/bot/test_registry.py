"""The registry: typed argument parsing, usage text, names, menus; and the docs list every command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from bot.commands import build_registry
from bot.errors import UsageError
from bot.identity import Role
from bot.registry import Registry, arg, command
from bot.reply import Reply


@dataclass(frozen=True)
class DemoArgs:
    pair: str = arg(kind="pair")
    n: int = arg(3, min=1, max=9)
    side: Literal["buy", "sell"] = arg("buy")
    note: str = arg("", kind="text")


@command("demo", role=Role.TRADER, args=DemoArgs, help="A demo", usage="More words.")
async def demo(ctx: object, args: DemoArgs) -> Reply:
    return Reply.text(str(args))


def spec():  # type: ignore[no-untyped-def]
    return Registry([demo.__command_spec__]).get("demo")  # type: ignore[attr-defined]


def test_parsing_converts_and_defaults() -> None:
    s = spec()
    assert s.parse(["eth-usd"]) == DemoArgs("ETH/USD", 3, "buy", "")
    assert s.parse(["btc_usd", "9", "SELL", "stop", "loss", "hit"]) == DemoArgs("BTC/USD", 9, "sell", "stop loss hit")
    assert s.synopsis() == "/demo <pair> [n] [buy|sell] [note...]"
    assert s.usage_text() == "usage: /demo <pair> [n] [buy|sell] [note...]\nA demo\nMore words."
    assert s.mutates  # trader commands change something by default
    many_words = ["w"] * 40
    assert s.parse(["BTC/USD", "1", "buy", *many_words]).note == " ".join(many_words)


@pytest.mark.parametrize(("tokens", "message"), [
    ([], "missing <pair>"),
    (["BTC"], "BASE/QUOTE"),
    (["BTC/USD", "10"], "from 1 to 9"),
    (["BTC/USD", "-1"], "whole number"),
    (["BTC/USD", "²"], "whole number"),
    (["BTC/USD", "2", "hold"], "one of buy, sell"),
    (["BTC/USD", "2", "buy", "y" * 201], "longer than 200"),
    (["B" * 101], "too long"),
])
def test_parsing_errors_say_what_is_wrong(tokens: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        spec().parse(tokens)


def test_token_count_is_bounded_without_a_text_argument() -> None:
    from bot.commands import build_registry

    with pytest.raises(UsageError, match="too many arguments"):
        build_registry().get("grant").parse(["1"] * 17)  # type: ignore[union-attr]


def test_declaration_mistakes_are_caught_at_import() -> None:
    with pytest.raises(ValueError, match="lowercase"):
        command("Bad-Name", help="x")
    with pytest.raises(TypeError, match="frozen dataclass"):
        @dataclass
        class Loose:
            n: int = 1

        command("loose", help="x", args=Loose)(demo)
    with pytest.raises(ValueError, match="declared twice"):
        Registry([demo.__command_spec__, demo.__command_spec__])  # type: ignore[attr-defined]


def test_built_in_commands_roles_and_confirmations() -> None:
    reg = build_registry()
    roles = {s.name: s.role for s in reg}
    assert {n for n, r in roles.items() if r is Role.VIEWER} >= {
        "help", "whoami", "status", "positions", "balance", "pnl", "daily", "weekly", "monthly", "trades",
        "performance", "health"}
    assert {n for n, r in roles.items() if r is Role.TRADER} == {"pause", "resume", "close", "buy", "sell", "cancel"}
    assert {n for n, r in roles.items() if r is Role.ADMIN} == {"closeall", "kill", "rearm", "roles", "grant",
                                                                 "revoke", "audit", "report"}
    assert {s.name for s in reg if s.confirm} == {"close", "closeall", "kill", "buy", "sell", "cancel", "pairs"}
    assert {s.name for s in reg if s.destructive} == {"close", "closeall", "kill", "buy", "sell", "cancel"}
    assert reg.get("START") is reg.get("help") and reg.get("profit") is reg.get("pnl")
    assert [n for n, _ in reg.menu(Role.VIEWER)][:3] == ["help", "whoami", "status"]
    assert all(len(h) <= 256 for _, h in reg.menu(Role.ADMIN))  # Telegram's limit for menu descriptions


def test_docs_describe_every_command() -> None:
    text = (Path(__file__).parents[2] / "docs" / "commands.md").read_text()
    for s in build_registry():
        assert f"`{s.synopsis()}`" in text, f"docs/commands.md lacks `{s.synopsis()}`"


def test_groups_follow_the_registration_and_leave_out_what_the_role_cannot_run() -> None:
    async def handler(ctx: object, args: None) -> Reply:
        return Reply.text("")

    specs = [command(name, role=role, group=group, help="x")(handler).__command_spec__  # type: ignore[attr-defined]
             for name, role, group in (("look", Role.VIEWER, "Looking"), ("act", Role.TRADER, "Acting"),
                                       ("peek", Role.VIEWER, "Looking"), ("loose", Role.VIEWER, ""))]
    reg = Registry(specs)
    assert [(g, [s.name for s in ss]) for g, ss in reg.groups(Role.TRADER)] == [
        ("Looking", ["look", "peek"]), ("Acting", ["act"]), ("Other", ["loose"])]  # no group named: "Other"
    assert [g for g, _ in reg.groups(Role.VIEWER)] == ["Looking", "Other"]  # no group without a command to run
