"""How the service wires Telegram: polling as leader work, alerts on every replica, lease timings."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.app.wiring import build_components
from core.settings.config import ConfigError, Settings, load_settings
from persistence.db import Database
from tests.fakes.telegram import TOKEN

BASE = {"TRADECTL_CHAT__CONSOLE": "off"}


def settings(**env: str) -> Settings:
    return load_settings(env={**BASE, **env}, dotenv_path=None)


async def components(db: Database, s: Settings) -> dict[str, Any]:
    built = await build_components(s, db, on_failure=lambda f: None, stop_event=asyncio.Event(),
                                   exit_after_input=False, version="test")
    return {c.name: c for c in built}


async def test_a_token_adds_polling_and_the_alert_sender(sqlite_db: Database) -> None:
    built = await components(sqlite_db, settings(TRADECTL_TELEGRAM__ENABLED="true", TRADECTL_TELEGRAM__TOKEN=TOKEN))
    names = list(built)
    assert names.index("telegram") < names.index("leader")  # connected before it can be elected, stopped after
    assert "telegram" in built["outbox-dispatcher"].senders
    assert built["telegram"].state == "stopped"  # nothing happens before start(); polling only while leading


async def test_a_token_alone_sends_alerts_but_reads_no_commands(sqlite_db: Database) -> None:
    built = await components(sqlite_db, settings(TRADECTL_TELEGRAM__TOKEN=TOKEN))
    assert "telegram" not in built and "telegram" in built["outbox-dispatcher"].senders


async def test_enabled_without_a_token_refuses_to_start(sqlite_db: Database) -> None:
    with pytest.raises(ValueError, match=r"telegram\.token"):
        await components(sqlite_db, settings(TRADECTL_TELEGRAM__ENABLED="true"))


def test_lease_timings_must_be_ordered() -> None:
    with pytest.raises(ConfigError, match="renew_s < step_down_s < ttl_s"):
        settings(TRADECTL_LEADER__TTL_S="3", TRADECTL_LEADER__STEP_DOWN_S="5")
    fast = settings(TRADECTL_LEADER__TTL_S="3", TRADECTL_LEADER__RENEW_S="1", TRADECTL_LEADER__STEP_DOWN_S="2")
    assert (fast.leader.ttl_s, fast.leader.renew_s, fast.leader.step_down_s) == (3, 1, 2)
