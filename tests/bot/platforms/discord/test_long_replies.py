"""Long replies and suggestions on Discord, end to end: real discord.py against the fake Discord.

A long reply arrives as several messages (the answer, then follow-ups), every row in one of them and
each part numbered; while a pair or a job is typed, Discord's autocomplete offers the matching ones.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tests.bot.phone_fixture import PAIRS, PhoneTrading
from tests.bot.platforms.discord.conftest import (
    ADMIN,
    CHANNEL,
    GUILD,
    OTHER_GUILD,
    TRADER,
    VIEWER,
    StartGateway,
)
from tests.core.waiting import eventually
from tests.fakes.discord import EPHEMERAL, FakeDiscord, FakeInteraction, snowflake

PART = re.compile(r"^Last 50 closed trades \((\d+)/(\d+)\)$")


def parts(it: FakeInteraction) -> list[tuple[int, int]]:
    """The numbered titles of the trade table's pages, in the order they were sent."""
    found = []
    for message in it.messages():
        for embed in message.get("embeds") or []:
            match = PART.match(embed.get("title") or "")
            if match:
                found.append((int(match.group(1)), int(match.group(2))))
    return found


async def long_trades(fake: FakeDiscord) -> FakeInteraction:
    it = await fake.slash("trades", {"n": 50}, user_id=VIEWER, channel_id=CHANNEL, guild_id=GUILD)
    await eventually(lambda: bool(parts(it)) and parts(it)[-1][0] == parts(it)[-1][1], what="every part of /trades 50")
    return it


def assert_every_trade(it: FakeInteraction, trading: PhoneTrading) -> None:
    text = it.text()
    assert "not shown" not in text and "did not fit" not in text
    total = parts(it)[0][1]
    assert total > 1 and parts(it) == [(k, total) for k in range(1, total + 1)]  # numbered, none missing
    rows = sum(len(re.findall(re.escape(f"**{p}**"), text)) for p in PAIRS)
    assert rows == len(trading.closed) == 50  # every trade is shown once, its pair in bold


async def test_a_long_reply_arrives_as_several_messages_with_every_row(start_gateway: StartGateway,
                                                                       fake_discord: FakeDiscord) -> None:
    trading = PhoneTrading()
    await start_gateway(services=trading)
    it = await long_trades(fake_discord)
    assert [kind for kind, _ in it.answers] == ["callback"] + ["followup"] * (len(it.answers) - 1)
    assert len(it.answers) > 1
    assert_every_trade(it, trading)
    for message in it.messages():
        assert not (int(message.get("flags") or 0) & EPHEMERAL)  # the whole channel sees every part


async def test_a_deferred_long_reply_fills_the_loading_message_then_follows_up(start_gateway: StartGateway,
                                                                              fake_discord: FakeDiscord) -> None:
    class SlowTrading(PhoneTrading):
        async def trades(self, count: int):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.4)
            return await super().trades(count)

    trading = SlowTrading()
    await start_gateway(services=trading, defer_after_s=0.05)
    it = await long_trades(fake_discord)
    assert it.answers[0][0] == "callback" and it.answers[0][1]["type"] == 5  # "thinking…"
    assert all(kind == "followup" for kind, _ in it.answers[1:]) and len(it.answers) > 2
    assert_every_trade(it, trading)
    assert fake_discord.messages[it.original_id]["embeds"]  # the first part replaced "thinking…"


async def autocomplete(fake: FakeDiscord, command: str, option: str, typed: str, *, user: str = ADMIN,
                       guild: str = GUILD) -> list[dict[str, Any]]:
    """A user types ``typed`` in ``option`` of ``/command``; the choices the bot offered."""
    it, payload = fake._base(4, user, CHANNEL, guild, None)
    payload["data"] = {"id": snowflake(), "name": command, "type": 1,
                       "options": [{"name": option, "type": 3, "value": typed, "focused": True}]}
    await fake.dispatch("INTERACTION_CREATE", payload)
    await eventually(lambda: it.answers, what=f"suggestions for /{command} {option}")
    kind, body = it.answers[0]
    assert kind == "callback" and body["type"] == 8  # APPLICATION_COMMAND_AUTOCOMPLETE_RESULT
    return list(body["data"]["choices"])


async def test_pairs_are_suggested_as_the_user_types(start_gateway: StartGateway, fake_discord: FakeDiscord) -> None:
    await start_gateway(services=PhoneTrading())
    close = next(c for c in fake_discord.commands[GUILD] if c["name"] == "close")
    assert close["options"][0]["autocomplete"] is True
    assert await autocomplete(fake_discord, "close", "pair", "e", user=TRADER) == [
        {"name": "ETH/USD", "value": "ETH/USD"}, {"name": "PEPE/USD", "value": "PEPE/USD"},
        {"name": "DOGE/USD", "value": "DOGE/USD"}]  # starting with it first, then containing it
    assert await autocomplete(fake_discord, "close", "pair", "btcusd", user=TRADER) == [
        {"name": "BTC/USD", "value": "BTC/USD"}]
    everything = await autocomplete(fake_discord, "close", "pair", "", user=TRADER)
    assert [c["value"] for c in everything] == list(PAIRS)
    assert await autocomplete(fake_discord, "close", "pair", "e", user=VIEWER) == []  # may not /close
    assert await autocomplete(fake_discord, "close", "pair", "e", guild=OTHER_GUILD) == []  # server not served


async def test_jobs_are_suggested_for_report(start_gateway: StartGateway, fake_discord: FakeDiscord) -> None:
    await start_gateway(services=PhoneTrading())
    report = next(c for c in fake_discord.commands[GUILD] if c["name"] == "report")
    assert report["options"][0]["autocomplete"] is True
    assert [c["value"] for c in await autocomplete(fake_discord, "report", "job", "rep")] == [
        "daily_report", "weekly_report"]
    assert [c["value"] for c in await autocomplete(fake_discord, "report", "job", "re")] == [
        "reconcile", "retention", "daily_report", "weekly_report"]


async def test_no_job_suggestions_without_a_schedule(start_gateway: StartGateway, fake_discord: FakeDiscord) -> None:
    await start_gateway()  # the plain fake: no scheduler
    assert await autocomplete(fake_discord, "report", "job", "") == []
