"""The Slack adapter in HTTP mode: real HTTP requests to the adapter's endpoint, signed as Slack signs them.

A request with a bad signature, a tampered body or an old timestamp is refused with 401 before
anything runs: no command, no confirmation, no answer.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import aiohttp
import pytest

from bot.platforms.slack import SlackAdapter
from core.trading.intents import ClosePosition, PauseEntries
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.slack.conftest import ADMIN, OPS, SIGNING_SECRET, TRADER, StartSlack
from tests.core.waiting import eventually
from tests.fakes.slack import FakeSlack, sign

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, adapter: SlackAdapter, body: str, headers: dict[str, str]) -> int:
    url = f"http://127.0.0.1:{adapter.port}{adapter.settings.http_path}"
    async with http.post(url, data=body.encode(), headers={**FORM, **headers}) as resp:
        return resp.status


async def test_signed_command_runs_and_is_answered(start_slack: StartSlack, fake_slack: FakeSlack,
                                                   trading: FakeTrading, http: aiohttp.ClientSession) -> None:
    adapter = await start_slack(mode="http")
    assert fake_slack.sockets == []  # no Socket Mode connection in http mode
    body = urlencode(fake_slack.command_payload("pause maintenance", user=TRADER, channel=OPS))
    assert await post(http, adapter, body, sign(SIGNING_SECRET, body)) == 200
    await eventually(lambda: len(fake_slack.posted) == 1)
    assert "entries paused" in fake_slack.posted[0].readable()
    assert trading.intents == [PauseEntries(requested_by=f"slack:{TRADER}", reason="maintenance")]


@pytest.mark.parametrize("forgery", ["wrong secret", "tampered body", "old timestamp", "no signature"])
async def test_forged_or_replayed_request_is_rejected(start_slack: StartSlack, fake_slack: FakeSlack,
                                                      trading: FakeTrading, http: aiohttp.ClientSession,
                                                      forgery: str) -> None:
    adapter = await start_slack(mode="http")
    body = urlencode(fake_slack.command_payload("pause", user=ADMIN, channel=OPS))
    headers = sign(SIGNING_SECRET, body)
    if forgery == "wrong secret":
        headers = sign("not-the-signing-secret", body)
    elif forgery == "tampered body":
        body = body.replace("pause", "kill")
    elif forgery == "old timestamp":  # a captured request replayed six minutes later, correctly signed
        headers = sign(SIGNING_SECRET, body, int(time.time()) - 360)
    else:
        headers = {}
    assert await post(http, adapter, body, headers) == 401
    await asyncio.sleep(0.3)
    assert trading.intents == [] and fake_slack.posted == []


async def test_button_press_over_http_needs_a_valid_signature_too(start_slack: StartSlack, fake_slack: FakeSlack,
                                                                  trading: FakeTrading,
                                                                  http: aiohttp.ClientSession) -> None:
    adapter = await start_slack(mode="http")
    body = urlencode(fake_slack.command_payload("close ETH/USD", user=TRADER, channel=OPS))
    assert await post(http, adapter, body, sign(SIGNING_SECRET, body)) == 200
    await eventually(lambda: len(fake_slack.posted) == 1)
    ask = fake_slack.posted[0]

    press = urlencode({"payload": json.dumps(fake_slack.action_payload(ask, "Close ETH/USD", user=TRADER))})
    assert await post(http, adapter, press, sign("not-the-signing-secret", press)) == 401
    await asyncio.sleep(0.3)
    assert trading.intents == []

    assert await post(http, adapter, press, sign(SIGNING_SECRET, press)) == 200
    await eventually(lambda: len(fake_slack.posted) == 2)
    assert trading.intents == [ClosePosition(requested_by=f"slack:{TRADER}", pair="ETH/USD")]
