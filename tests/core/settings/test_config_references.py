"""Settings that name a command, a pair or an id must name a real one: a typo in a security list
used to fail open (``two_person_commands = ["kil"]`` let one admin kill alone)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.app import build_dispatcher
from bot.harness import ChatHarness
from bot.identity import Actor, ChatRef
from core.settings.config import ConfigError, load_settings
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.core.app.test_service import env_for, tradectl
from tests.fakes.clock import ManualClock

BAD = [
    # (variable, value, what the error must name)
    ("TRADECTL_CHAT__TWO_PERSON_COMMANDS", '["kil"]', ["chat.two_person_commands", "'kil'", "'kill'"]),
    ("TRADECTL_CHAT__CONFIRM_COMMANDS", '["/grant", "pasue"]', ["chat.confirm_commands", "'pasue'"]),
    ("TRADECTL_CHAT__TRADER_PAIRS", '{"alice": ["BTC/USD"]}', ["chat.trader_pairs", "'alice'", "platform:user_id"]),
    ("TRADECTL_CHAT__TRADER_PAIRS", '{"telegram:5": ["ETH/USD"]}', ["chat.trader_pairs", "'ETH/USD'", "trading.pairs"]),
    ("TRADECTL_CHAT__ADMINS", '{"telegram": ["@alice"]}', ["chat.admins", "'@alice'"]),
    ("TRADECTL_CHAT__VIEWERS", '{"discord": ["bob#1234"]}', ["chat.viewers", "'bob#1234'"]),
    ("TRADECTL_CHAT__TRADERS", '{"slack": ["alice"]}', ["chat.traders", "'alice'"]),
    ("TRADECTL_CHAT__ALLOWED_CHATS", '{"slack": ["#general"]}', ["chat.allowed_chats", "'#general'"]),
    ("TRADECTL_DISCORD__GUILDS", '["12345"]', ["discord.guilds", "'12345'"]),
    ("TRADECTL_NOTIFY__DESTINATIONS", '[{"name": "ops", "platform": "discord", "target": "#alerts"}]',
     ["notify.destinations[ops].target", "'#alerts'"]),
    ("TRADECTL_NOTIFY__DESTINATIONS", '[{"name": "ops", "platform": "telegram", "target": "ops-group"}]',
     ["notify.destinations[ops].target", "'ops-group'"]),
]


@pytest.mark.parametrize(("var", "value", "named"), BAD, ids=[f"{v}={x}" for v, x, _ in BAD])
def test_config_check_refuses_a_setting_that_names_nothing(tmp_path: Path, var: str, value: str,
                                                           named: list[str]) -> None:
    res = tradectl(["config", "check"], env_for(tmp_path, **{var: value}), tmp_path)
    assert res.returncode == 2, res.stdout[-500:] + res.stderr
    line = res.stderr.strip()
    assert line.startswith("configuration error:") and "\n" not in line, line
    for text in named:
        assert text in line, line
    assert var in line  # where it came from


def test_run_refuses_it_before_opening_the_database(tmp_path: Path) -> None:
    res = tradectl(["run"], env_for(tmp_path, TRADECTL_CHAT__TWO_PERSON_COMMANDS='["kil"]'), tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "chat.two_person_commands: 'kil' is not a command" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "svc.db").exists()


def test_names_are_normalised_to_the_command(tmp_path: Path) -> None:
    """``/KILL`` means kill, and an alias means its command (config check shows the effective list)."""
    env = env_for(tmp_path, TRADECTL_CHAT__TWO_PERSON_COMMANDS='["KILL", "/closeall"]',
                  TRADECTL_CHAT__CONFIRM_COMMANDS='["/Start"]')
    res = tradectl(["config", "check", "--json"], env, tmp_path)
    assert res.returncode == 0, res.stderr
    chat = json.loads(res.stdout)["chat"]
    assert chat["two_person_commands"] == ["kill", "closeall"]
    assert chat["confirm_commands"] == ["help"]


ADMIN, ADMIN2 = Actor("telegram", "1", "alice"), Actor("telegram", "4", "dave")
GROUP = ChatRef("telegram", "-100", "group")


async def test_an_upper_case_two_person_command_still_needs_a_second_admin(db: Database) -> None:
    settings = load_settings(env={"TRADECTL_CHAT__TWO_PERSON_COMMANDS": '["KILL"]',
                                  "TRADECTL_CHAT__ADMINS": '{"telegram": ["1", "4"]}',
                                  "TRADECTL_CHAT__ALLOWED_CHATS": '{"telegram": ["-100"]}'}, dotenv_path=None)
    fake = FakeTrading()
    h = ChatHarness(build_dispatcher(db, fake, settings.chat, clock=ManualClock()), actor=ADMIN, chat=GROUP)
    asked = await h.send("/kill")
    assert "second admin" in asked.text
    assert "Self-approval is refused" in (await h.press(asked.confirm_payload)).text
    assert fake.intents == []
    assert "KILLED" in (await h.press(asked.confirm_payload, as_=ADMIN2)).text


def test_trader_pairs_key_without_platform_is_refused() -> None:
    """A key the dispatcher never looks up left the trader free to close any pair."""
    with pytest.raises(ConfigError, match=r"chat\.trader_pairs.*'2'.*platform:user_id"):
        load_settings(env={"TRADECTL_CHAT__TRADER_PAIRS": '{"2": ["BTC/USD"]}'}, dotenv_path=None)
    ok = load_settings(env={"TRADECTL_CHAT__TRADER_PAIRS": '{"telegram:2": ["BTC/USD"]}'}, dotenv_path=None)
    assert ok.chat.trader_pairs == {"telegram:2": ("BTC/USD",)}


def test_a_backtest_of_another_pair_is_not_stopped_by_trader_pairs() -> None:
    """Traders' pairs are checked where the chat service is assembled, not by every settings load."""
    s = load_settings(env={"TRADECTL_CHAT__TRADER_PAIRS": '{"telegram:2": ["BTC/USD"]}'}, dotenv_path=None,
                      overrides={"trading": {"pairs": ["ETH/USD"]}})
    assert s.trading.pairs == ("ETH/USD",)


def test_every_command_list_is_checked_against_the_registry() -> None:
    """A new setting declared as ``CommandNames`` is checked without being listed anywhere."""
    from bot.commands import build_registry
    from core.settings.config import Settings
    from core.settings.config_checks import command_fields

    fields = set(command_fields(Settings))
    assert {("chat", "confirm_commands"), ("chat", "two_person_commands")} <= fields
    names = {n: s.name for s in build_registry() for n in (s.name, *s.aliases)}
    for path in fields:
        env = {f"TRADECTL_{path[0].upper()}__{path[1].upper()}": '["nosuchcommand"]'}
        with pytest.raises(ConfigError, match=rf"{'.'.join(path)}: 'nosuchcommand' is not a command"):
            load_settings(env=env, dotenv_path=None, commands=names)
