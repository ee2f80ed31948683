"""1,000 alerts in a burst to one Discord channel and one Slack channel, under the platforms' real limits.

Goal: zero lost, zero dropped on 429, none delivered twice, in order, as a handful of readable
digests. Prints the delivery time (from the start of the burst to the last alert shown) and the
message count per platform.

The platforms are the loopback fakes the tests use (tests/fakes), configured with the limits the
platforms publish or are observed to apply: Discord 5 messages per 5 s per channel plus 50 requests
per second globally, with ``X-RateLimit-*`` headers; Slack about one ``chat.postMessage`` per second
per channel with a burst of 5, then 429 with ``Retry-After``. The senders are the production ones
(httpx for Discord, slack_sdk's AsyncWebClient for Slack) driven by the production outbox dispatcher
at its default rate of one message per second per destination.

    python benchmarks/bench_alerts.py                     # SQLite, real limits (~40 s)
    python benchmarks/bench_alerts.py --db postgres       # TRADECTL_TEST_PG_URL or --url
    python benchmarks/bench_alerts.py --scale 10          # limits and dispatcher rate 10x faster
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from bot.notify import OutboxDispatcher
from bot.platforms.discord import DiscordSender
from bot.platforms.slack import SlackSender, web_client
from core.ops.outbox import OutboxWriter
from core.settings.settings_models import Destination, NotifySettings, SlackSettings
from core.trading.events import EventBus, PositionClosed
from persistence.db import Database
from persistence.migrate import upgrade
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack

DISCORD_CHANNEL, SLACK_CHANNEL = "381870553235193857", "C0OPS00001"
_NUM = re.compile(r"\[#(\d+)\]")


def closed(n: int) -> PositionClosed:
    return PositionClosed(pair="BTC/USD", qty=Decimal("0.25"), entry_price=Decimal("64000"),
                          exit_price=Decimal("64350.5"), fees=Decimal("41.7"), pnl=Decimal("45.42"),
                          pnl_pct=Decimal("0.28"), reason=f"#{n}")


async def open_db(kind: str, url: str | None) -> tuple[Database, str | None]:
    if kind == "sqlite":
        db = Database(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
        await db.start()
        await upgrade(db)
        return db, None
    import asyncpg

    url = url or os.environ.get("TRADECTL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = "bench_" + secrets.token_hex(4)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    await conn.execute(f"CREATE SCHEMA {schema}")
    await conn.close()
    db = Database(url, schema=schema)
    await db.start()
    await upgrade(db)
    return db, schema


def report(name: str, numbers: list[int], texts: list[str], n: int, seconds: float, rejected: int,
           limit: int) -> bool:
    lost = sorted(set(range(n)) - set(numbers))
    twice = len(numbers) - len(set(numbers))
    ordered = numbers == sorted(numbers)
    longest = max((len(t) for t in texts), default=0)
    print(f"{name:8} {n} alerts -> {len(texts)} messages in {seconds:5.1f} s; 429 answers: {rejected}; "
          f"lost: {len(lost)}; twice: {twice}; in order: {ordered}; longest message: {longest}/{limit} chars")
    return not lost and not twice and ordered and longest <= limit


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--url", default=None)
    ap.add_argument("--scale", type=float, default=1.0, help="speed up limits and dispatch rate by this factor")
    ap.add_argument("--per-event-tx", action="store_true", help="write each event in its own transaction while "
                    "the dispatcher runs, instead of one burst")
    args = ap.parse_args()
    n, k = args.events, args.scale

    db, schema = await open_db(args.db, args.url)
    settings = NotifySettings(destinations=(Destination(name="ops", platform="discord", target=DISCORD_CHANNEL),
                                            Destination(name="team", platform="slack", target=SLACK_CHANNEL)),
                              per_destination_rate=min(50.0, 1.0 * k))
    bus = EventBus(outbox=OutboxWriter(settings))
    async with FakeDiscord(channel_limit=5, channel_window_s=5.0 / k, global_per_s=50) as discord, \
            FakeSlack(post_rate_per_s=1.0 * k, post_burst=5) as slack:
        discord_sender = DiscordSender(discord.token, api_base=discord.api_base)
        slack_sender = SlackSender(web_client(SlackSettings(bot_token=SecretStr(slack.bot_token),
                                                            api_base=slack.api_base)))
        dispatcher = OutboxDispatcher(db, settings, {"discord": discord_sender, "slack": slack_sender},
                                      instance_id="bench", poll_s=0.05)
        started = time.monotonic()
        if args.per_event_tx:  # one transaction per event, as the engine writes them one by one
            await dispatcher.start()
            for i in range(n):
                await bus.record(db, closed(i))
        else:  # the whole burst commits at once (e.g. a kill flattening everything), then delivery starts
            async with db.session() as session:
                for i in range(n):
                    bus.stage(session, closed(i))
            await dispatcher.start()
        written = time.monotonic() - started
        done: dict[str, float] = {}

        def discord_numbers() -> list[int]:
            return [int(x) for m in discord.channel_posts[DISCORD_CHANNEL] for x in _NUM.findall(m["content"])]

        def slack_numbers() -> list[int]:
            return [int(x) for p in slack.channel(SLACK_CHANNEL) for x in _NUM.findall(p.text)]

        deadline = started + 60 + 4 * n / k
        while len(done) < 2 and time.monotonic() < deadline:
            for name, numbers in (("discord", discord_numbers), ("slack", slack_numbers)):
                if name not in done and len(numbers()) >= n:
                    done[name] = time.monotonic() - started
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # anything sent twice would show up now
        await dispatcher.stop()
        await discord_sender.aclose()
        how = "one transaction per event" if args.per_event_tx else "one transaction"
        print(f"{n} events written in {written:.1f} s ({args.db}, {how}); limits x{k:g}: Discord 5 msgs / "
              f"{5 / k:g} s per channel, Slack {k:g} msg/s per channel (burst 5); dispatcher "
              f"{settings.per_destination_rate:g} msg/s per destination")
        ok = report("discord", discord_numbers(), [m["content"] for m in discord.channel_posts[DISCORD_CHANNEL]], n,
                    done.get("discord", float("nan")), discord.status_429, discord_sender.max_chars)
        ok &= report("slack", slack_numbers(), [p.text for p in slack.channel(SLACK_CHANNEL)], n,
                     done.get("slack", float("nan")), slack.status_429, slack_sender.max_chars)
        digests = [m["content"] for m in discord.channel_posts[DISCORD_CHANNEL] if " alerts:\n" in m["content"]]
        if digests:
            print("a Discord digest begins:", " / ".join(digests[0].split("\n")[:3]))
    await db.stop()
    if schema:
        import asyncpg

        url = args.url or os.environ.get("TRADECTL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
