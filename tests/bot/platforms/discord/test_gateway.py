"""The Discord adapter end to end: real discord.py over a fake gateway and REST API on loopback.

Interactions arrive as gateway ``INTERACTION_CREATE`` events and every answer (callbacks, follow-ups,
edits) goes back through discord.py's HTTP client, so what is checked is what a Discord user sees.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.app import build_dispatcher
from bot.platforms.discord import DiscordGateway
from core.ops.leader import LeaderElector
from core.settings.settings_models import ChatSettings
from core.trading.intents import ClosePosition, Kill
from exchanges.clock import SystemClock
from persistence.db import Database
from tests.bot.fake_trading import FakeTrading
from tests.bot.platforms.discord.conftest import (
    ADMIN,
    ADMIN2,
    CHANNEL,
    CHAT_SETTINGS,
    DM,
    GUILD,
    OTHER_CHANNEL,
    OTHER_GUILD,
    STRANGER,
    TRADER,
    VIEWER,
    StartGateway,
    discord_settings,
)
from tests.core.waiting import eventually
from tests.fakes.discord import EPHEMERAL, FakeDiscord, FakeInteraction


def answered(it: FakeInteraction, n: int = 1):  # type: ignore[no-untyped-def]
    """At least ``n`` answers and something readable among them (a bare "thinking..." defer is not an answer)."""
    return lambda: len(it.answers) >= n and bool(it.text()) and bool(it.messages())


async def slash(fake: FakeDiscord, name: str, options: dict[str, Any] | None = None, *, user: str = ADMIN,
                channel: str = CHANNEL, guild: str | None = GUILD, n: int = 1,
                at: datetime | None = None) -> FakeInteraction:
    it = await fake.slash(name, options, user_id=user, channel_id=channel, guild_id=guild, at=at)
    await eventually(answered(it, n), what=f"answer to /{name}")
    return it


async def test_slash_commands_come_from_the_registry(start_gateway: StartGateway, fake_discord: FakeDiscord) -> None:
    gateway = await start_gateway()
    registered = {c["name"]: c for c in fake_discord.commands[GUILD]}
    assert list(registered) == [spec.name for spec in gateway.dispatcher.registry]
    close = registered["close"]
    described = "the pair, e.g. BTC/USD (without it: the open positions, to choose from)"
    assert close["options"] == [{"name": "pair", "description": described,
                                 "required": False, "type": 3, "max_length": 100, "autocomplete": True}]
    assert "default_member_permissions" not in close  # guild admins cannot change who may /close
    assert "global" not in fake_discord.commands  # DMs are off: nothing registered outside the server


async def test_status_is_answered_with_embeds(start_gateway: StartGateway, fake_discord: FakeDiscord) -> None:
    await start_gateway()
    it = await slash(fake_discord, "status", user=VIEWER)
    kind, body = it.answers[0]
    assert kind == "callback" and body["type"] == 4  # answered directly, no defer needed
    assert "🟢 Running · equity" in it.text() and "Open positions" in it.text() and "BTC/USD" in it.text()
    assert body["data"]["allowed_mentions"] == {"parse": []}
    assert not body["data"].get("components")


async def test_close_asks_and_only_the_requester_can_confirm(start_gateway: StartGateway, fake_discord: FakeDiscord,
                                                              trading: FakeTrading) -> None:
    await start_gateway()
    ask = await slash(fake_discord, "close", {"pair": "btc/usd"}, user=TRADER)
    assert "Confirm /close BTC/USD" in ask.text()
    assert [b["custom_id"].split("#")[1] for b in fake_discord.buttons(ask.original_id)] == [TRADER, TRADER]

    other = await fake_discord.press(ask.original_id, "Close BTC/USD", user_id=ADMIN, guild_id=GUILD)
    await eventually(answered(other))
    assert other.answers[0][1]["data"]["flags"] == EPHEMERAL
    assert f"Only <@{TRADER}>" in other.text()
    assert trading.intents == [] and len(fake_discord.buttons(ask.original_id)) == 2

    press = await fake_discord.press(ask.original_id, "Close BTC/USD", user_id=TRADER, guild_id=GUILD)
    await eventually(answered(press, 2))
    assert press.answers[0] == ("callback", {"type": 7, "data": {"tts": False, "components": []}})
    assert fake_discord.buttons(ask.original_id) == []  # used buttons disappear
    assert "Closed 1 position" in press.text()
    assert trading.intents == [ClosePosition(requested_by=f"discord:{TRADER}", pair="BTC/USD")]



async def test_names_discord_sends_are_shown_beside_the_id(start_gateway: StartGateway,
                                                           fake_discord: FakeDiscord) -> None:
    await start_gateway()
    me = await fake_discord.slash("whoami", user_id=ADMIN, channel_id=CHANNEL, guild_id=GUILD, user_name="Alice")
    await eventually(answered(me), what="answer to /whoami")
    assert "Alice" in me.text() and ADMIN in me.text()
    ask = await slash(fake_discord, "close", {"pair": "BTC/USD"}, user=TRADER)  # no global name: the username
    press = await fake_discord.press(ask.original_id, "Close BTC/USD", user_id=TRADER, guild_id=GUILD,
                                     user_name="Bob")
    await eventually(answered(press, 2), what="answer to the press")
    roles = await slash(fake_discord, "roles")
    assert f"Bob (discord:{TRADER})" in roles.text()  # the name from the press, the latest seen
    assert f"user8912 (discord:{ADMIN})" in roles.text()  # no global name this time: the username


async def test_roles_are_ours_not_discords(start_gateway: StartGateway, fake_discord: FakeDiscord,
                                           trading: FakeTrading) -> None:
    await start_gateway()
    it = await slash(fake_discord, "close", {"pair": "BTC/USD"}, user=VIEWER)
    assert "/close needs the trader role; you are viewer" in it.text()
    assert fake_discord.buttons(it.original_id) == []
    stranger = await slash(fake_discord, "status", user=STRANGER)
    assert "Not authorized" in stranger.text()
    assert trading.intents == []


async def test_unlisted_server_channel_and_dm_are_refused(start_gateway: StartGateway, fake_discord: FakeDiscord,
                                                          trading: FakeTrading) -> None:
    await start_gateway()
    other_server = await slash(fake_discord, "kill", guild=OTHER_GUILD)
    assert other_server.answers[0][1]["data"]["flags"] == EPHEMERAL
    assert "server is not allowed" in other_server.text()
    other_channel = await slash(fake_discord, "status", channel=OTHER_CHANNEL)
    assert "Not authorized" in other_channel.text()  # chat.allowed_chats.discord, checked by the dispatcher
    dm = await slash(fake_discord, "status", channel=DM, guild=None)
    assert "direct messages" in dm.text()
    assert trading.intents == []


async def test_dm_works_when_allowed(start_gateway: StartGateway, fake_discord: FakeDiscord) -> None:
    await start_gateway(allow_dms=True)
    assert next(c["contexts"] for c in fake_discord.commands["global"]) == [1]  # DM only: servers list them once
    dm = await slash(fake_discord, "whoami", channel=DM, guild=None)
    assert ADMIN in dm.text() and "admin" in dm.text()


async def test_slow_command_is_deferred_then_followed_up(start_gateway: StartGateway,
                                                         fake_discord: FakeDiscord) -> None:
    class SlowTrading(FakeTrading):
        async def status(self):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.5)
            return await super().status()

    await start_gateway(services=SlowTrading(), defer_after_s=0.1)
    it = await slash(fake_discord, "status", n=2)
    assert it.answers[0][0] == "callback" and it.answers[0][1]["type"] == 5  # "thinking..." within the budget
    assert it.answers[1][0] == "followup"
    shown = fake_discord.messages[it.original_id]
    assert shown["embeds"] and not shown["flags"] & 128  # the loading message became the answer


async def test_stale_destructive_command_is_refused(start_gateway: StartGateway, fake_discord: FakeDiscord,
                                                    trading: FakeTrading) -> None:
    await start_gateway()
    old = datetime.now(UTC) - timedelta(minutes=10)  # e.g. replayed after an outage
    it = await slash(fake_discord, "kill", at=old)
    assert "Refused" in it.text() and fake_discord.buttons(it.original_id) == []
    assert trading.intents == []


async def test_two_person_confirmation_needs_a_second_admin(start_gateway: StartGateway, fake_discord: FakeDiscord,
                                                            trading: FakeTrading) -> None:
    await start_gateway(chat={"two_person_commands": ("kill",)})
    ask = await slash(fake_discord, "kill")
    assert all("#" not in b["custom_id"] for b in fake_discord.buttons(ask.original_id))  # any admin may press
    self_press = await fake_discord.press(ask.original_id, "🛑 Kill now", user_id=ADMIN, guild_id=GUILD)
    await eventually(answered(self_press))
    assert "Self-approval is refused" in self_press.text()
    assert self_press.answers[0][1]["data"]["flags"] == EPHEMERAL  # shown to the presser only; buttons stay
    trader_press = await fake_discord.press(ask.original_id, "🛑 Kill now", user_id=TRADER, guild_id=GUILD)
    await eventually(answered(trader_press))
    assert "Only an admin" in trader_press.text() and trading.intents == []
    second = await fake_discord.press(ask.original_id, "🛑 Kill now", user_id=ADMIN2, guild_id=GUILD)
    await eventually(answered(second, 2))
    assert [type(i) for i in trading.intents] == [Kill]
    assert fake_discord.buttons(ask.original_id) == []


async def test_buttons_still_work_after_a_restart(start_gateway: StartGateway, fake_discord: FakeDiscord,
                                                  trading: FakeTrading) -> None:
    first = await start_gateway()
    ask = await slash(fake_discord, "close", {"pair": "ETH/USD"}, user=TRADER)
    await first.stop()
    await start_gateway(epoch=2)  # a new process or a new leader: nothing in memory
    other = await fake_discord.press(ask.original_id, "Close ETH/USD", user_id=ADMIN, guild_id=GUILD)
    await eventually(answered(other))
    assert f"Only <@{TRADER}>" in other.text()
    press = await fake_discord.press(ask.original_id, "Close ETH/USD", user_id=TRADER, guild_id=GUILD)
    await eventually(answered(press, 2))
    assert trading.intents == [ClosePosition(requested_by=f"discord:{TRADER}", pair="ETH/USD")]


async def test_gateway_runs_on_the_leader_only(sqlite_db: Database, fake_discord: FakeDiscord,
                                               trading: FakeTrading) -> None:
    gateways, electors = [], []
    for i in range(2):
        dispatcher = build_dispatcher(sqlite_db, trading, ChatSettings(**CHAT_SETTINGS), clock=SystemClock(),
                                      instance_id=f"replica-{i}")
        gateway = DiscordGateway(dispatcher, discord_settings(fake_discord))
        elector = LeaderElector(sqlite_db, group="g", instance_id=f"replica-{i}", ttl_s=3, renew_s=0.5,
                                step_down_s=2, follower_poll_s=0.1, on_elected=gateway.start, on_lost=gateway.stop)
        gateways.append(gateway)
        electors.append(elector)
    try:
        for elector in electors:
            await elector.start()
        await eventually(lambda: len(fake_discord.sessions) == 1, what="one gateway session")
        leader = next(i for i, e in enumerate(electors) if e.is_leader)
        for _ in range(10):
            assert len(fake_discord.sessions) <= 1
            await asyncio.sleep(0.05)
        await electors[leader].stop()  # graceful: the lease is released, the standby takes over
        follower = 1 - leader
        await eventually(lambda: electors[follower].is_leader and gateways[follower].connected.is_set(),
                         what="takeover")
        assert len(fake_discord.sessions) == 1 and fake_discord.identifies == 2
        it = await slash(fake_discord, "whoami")
        assert ADMIN in it.text()
    finally:
        for elector in electors:
            await elector.stop()
