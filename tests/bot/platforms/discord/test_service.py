"""The service process (``python -m core.app.cli run``) wired to Discord and Slack, both fakes on loopback.

Checks the wiring rather than the adapters: the Discord gateway is connected by the leader, Slack's
Socket Mode connection is open, commands on both are answered, alerts reach both platforms through
their REST/Web API senders, and SIGTERM stops it all cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.bot.platforms.discord.conftest import ADMIN, CHANNEL, GUILD
from tests.core.app.test_service import terminate
from tests.core.waiting import eventually
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import TEAM, FakeSlack

ROOT = Path(__file__).resolve().parents[4]
SLACK_ADMIN, SLACK_OPS = "U0ALICE001", "C0OPS00001"
DISCORD_ALERTS, SLACK_ALERTS = "381870553235193000", "C0ALERTS01"


def service_env(discord: FakeDiscord, slack: FakeSlack, workdir: Path) -> dict[str, str]:
    candles = workdir / "candles.csv"
    with (ROOT / "exchanges" / "data" / "coinbase_BTC-USD_1h.csv").open(encoding="utf-8") as src:
        candles.write_text("".join(line for _, line in zip(range(500), src, strict=False)), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECTL_") and k != "DATABASE_URL"}
    env.update({
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{workdir}/service.db",
        "TRADECTL_CHAT__CONSOLE": "off",
        "TRADECTL_CHAT__ADMINS": json.dumps({"discord": [ADMIN], "slack": [SLACK_ADMIN]}),
        "TRADECTL_CHAT__ALLOWED_CHATS": json.dumps({"discord": [CHANNEL], "slack": [SLACK_OPS]}),
        "TRADECTL_DISCORD__ENABLED": "true",
        "TRADECTL_DISCORD__TOKEN": discord.token,
        "TRADECTL_DISCORD__GUILDS": json.dumps([GUILD]),
        "TRADECTL_DISCORD__API_BASE": discord.api_base,
        "TRADECTL_DISCORD__GATEWAY_URL": discord.gateway_url,
        "TRADECTL_SLACK__ENABLED": "true",
        "TRADECTL_SLACK__BOT_TOKEN": slack.bot_token,
        "TRADECTL_SLACK__APP_TOKEN": slack.app_token,
        "TRADECTL_SLACK__WORKSPACES": json.dumps([TEAM]),
        "TRADECTL_SLACK__API_BASE": slack.api_base,
        "TRADECTL_NOTIFY__DESTINATIONS": json.dumps([
            {"name": "ops", "platform": "discord", "target": DISCORD_ALERTS},
            {"name": "team", "platform": "slack", "target": SLACK_ALERTS}]),
        "TRADECTL_SCHEDULE__ENABLED": "false",
        "TRADECTL_REPLAY__CSV": str(candles),
        "TRADECTL_REPLAY__SPEED": "5",
        "TRADECTL_LOGGING__FORMAT": "text",
    })
    return env


async def test_service_serves_discord_from_the_leader_and_slack(tmp_path: Path) -> None:
    async with FakeDiscord() as discord, FakeSlack(post_rate_per_s=50, post_burst=50) as slack:
        log = tmp_path / "run.log"
        with log.open("wb") as out:
            # the service runs beside the test; Popen returns at once
            proc = subprocess.Popen([sys.executable, "-m", "core.app.cli", "run"], cwd=tmp_path, stdout=out,  # noqa: ASYNC220
                                    stderr=subprocess.STDOUT, env=service_env(discord, slack, tmp_path))
        try:
            await eventually(lambda: len(discord.sessions) == 1 and len(slack.sockets) == 1, timeout=90,
                             what="both platforms connected")
            assert {c["name"] for c in discord.commands[GUILD]} >= {"status", "close", "kill"}

            it = await discord.slash("status", user_id=ADMIN, channel_id=CHANNEL, guild_id=GUILD)
            await eventually(lambda: "Running · equity" in it.text(), timeout=30, what="discord answer")

            await slack.command("status", user=SLACK_ADMIN, channel=SLACK_OPS)
            await eventually(lambda: bool(slack.channel(SLACK_OPS)), timeout=30, what="slack answer")
            assert "Running · equity" in slack.channel(SLACK_OPS)[0].readable()

            # "became leader" went through the outbox to both platforms' senders
            await eventually(lambda: bool(discord.channel_posts[DISCORD_ALERTS]) and bool(slack.channel(SLACK_ALERTS)),
                             timeout=30, what="alerts on both platforms")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; service log:\n{log.read_text(errors='replace')[-4000:]}") from None
        finally:
            code = await asyncio.to_thread(terminate, proc, 60)
        assert code == 0, log.read_text(errors="replace")[-3000:]
        await eventually(lambda: not discord.sessions and not slack.sockets, timeout=5, what="disconnected")
