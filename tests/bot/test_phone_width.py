"""Every command's reply, rendered for every platform, fits a phone and the platform's limits.

The replies come from the real registry and dispatcher on the busy account of
:mod:`tests.bot.phone_fixture` (five positions from PEPE to BTC, fifty trades, fifty audit rows; see
:mod:`tests.bot.phone_replies`). A phone shows about 32 monospace characters per line on Telegram,
33 on Discord and 41 on Slack: a longer line inside a ``<pre>`` or a code block wraps and an
aligned table turns into fragments. Text outside code blocks wraps at spaces like any text and is
not measured. The console is measured whole at 32 columns (a terminal wraps every line).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest

from bot.platforms.console import render_console
from bot.platforms.discord.render import (
    MAX_CONTENT,
    MAX_DESCRIPTION,
    MAX_EMBED_TOTAL,
    MAX_EMBEDS,
    MAX_FIELD_NAME,
    MAX_FIELD_VALUE,
    MAX_FIELDS,
    MAX_TITLE,
    DiscordMessage,
    render_discord,
    render_discord_messages,
)
from bot.platforms.discord.render import MAX_MESSAGES as DISCORD_MESSAGES
from bot.platforms.slack.render import (
    MAX_BLOCKS,
    MAX_FIELD,
    MAX_MESSAGE_TEXT,
    MAX_SECTION,
    SlackMessage,
    render_slack,
    render_slack_messages,
)
from bot.platforms.slack.render import MAX_FIELDS as SLACK_FIELDS
from bot.platforms.slack.render import MAX_MESSAGES as SLACK_MESSAGES
from bot.platforms.telegram.render import (
    MAX_CAPTION,
    MAX_MESSAGES,
    MAX_TEXT,
    PhotoMessage,
    TextMessage,
    render_telegram,
    units,
)
from bot.reply import Image, Reply
from persistence.db import Database
from tests.bot.phone_replies import Shown, every_reply, phone_harness
from tests.fakes.telegram import parse_html

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TELEGRAM_WIDTH, DISCORD_WIDTH, SLACK_WIDTH, CONSOLE_WIDTH = 32, 33, 41, 32
_PRE = re.compile(r"<pre>(.*?)</pre>", re.DOTALL)
_FENCED = re.compile(r"```\n?(.*?)```", re.DOTALL)


def _too_wide(lines: list[str], width: int) -> list[str]:
    return [f"{len(line)} > {width}: {line!r}" for line in lines if len(line) > width]


def telegram_problems(reply: Reply) -> list[str]:
    problems: list[str] = []
    messages = render_telegram(reply)
    if not 0 < len(messages) <= MAX_MESSAGES + 2:  # + photos and a caption sent apart
        problems.append(f"{len(messages)} messages")
    for m in messages:
        if isinstance(m, PhotoMessage):
            if units(m.caption_html) > MAX_CAPTION:
                problems.append(f"caption of {units(m.caption_html)} units")
            continue
        assert isinstance(m, TextMessage)
        if not 0 < units(m.html) <= MAX_TEXT:
            problems.append(f"message of {units(m.html)} units")
        parse_html(m.html)  # Telegram would parse it
        for pre in _PRE.findall(m.html):
            problems += _too_wide(html.unescape(pre).split("\n"), TELEGRAM_WIDTH)
    return problems


def _discord_message_problems(m: DiscordMessage) -> list[str]:
    problems: list[str] = []
    if len(m.content) > MAX_CONTENT:
        problems.append(f"content of {len(m.content)} characters")
    if len(m.embeds) > MAX_EMBEDS or sum(len(e) for e in m.embeds) > MAX_EMBED_TOTAL:
        problems.append(f"{len(m.embeds)} embeds of {sum(len(e) for e in m.embeds)} characters")
    code = [m.content]
    for e in m.embeds:
        doc = e.to_dict()
        if len(doc.get("title", "")) > MAX_TITLE or len(doc.get("description", "")) > MAX_DESCRIPTION:
            problems.append(f"embed title {len(doc.get('title', ''))}, description {len(doc.get('description', ''))}")
        fields = doc.get("fields", [])
        if len(fields) > MAX_FIELDS or any(len(f["name"]) > MAX_FIELD_NAME or len(f["value"]) > MAX_FIELD_VALUE
                                           for f in fields):
            problems.append(f"{len(fields)} fields over the limits")
        code += [doc.get("description", ""), *(f["value"] for f in fields)]
    for text in code:
        for block in _FENCED.findall(text):
            problems += _too_wide(block.rstrip("\n").split("\n"), DISCORD_WIDTH)
    return problems


def discord_problems(reply: Reply) -> list[str]:
    messages = render_discord_messages(reply, owner=80351110224678912)
    problems = [] if 0 < len(messages) <= DISCORD_MESSAGES else [f"{len(messages)} messages"]
    for m in [*messages, render_discord(reply)]:
        problems += _discord_message_problems(m)
    return problems


def _slack_text(block: dict) -> list[str]:  # type: ignore[type-arg]
    texts = [block["text"]["text"]] if "text" in block else []
    texts += [f["text"] for f in block.get("fields", []) + block.get("elements", []) if f.get("type") == "mrkdwn"]
    return texts


def _slack_message_problems(m: SlackMessage) -> list[str]:
    problems: list[str] = []
    if len(m.blocks) > MAX_BLOCKS:
        problems.append(f"{len(m.blocks)} blocks")
    total = sum(len(t) for b in m.blocks for t in _slack_text(b))
    if total > MAX_MESSAGE_TEXT:
        problems.append(f"{total} characters of text in one message")
    for b in m.blocks:
        if "text" in b and len(b["text"]["text"]) > MAX_SECTION:
            problems.append(f"section of {len(b['text']['text'])} characters")
        if len(b.get("fields", [])) > SLACK_FIELDS or any(len(f["text"]) > MAX_FIELD for f in b.get("fields", [])):
            problems.append("fields over the limits")
        for text in _slack_text(b):
            for block in _FENCED.findall(text):
                problems += _too_wide(html.unescape(block).rstrip("\n").split("\n"), SLACK_WIDTH)
    return problems


def slack_problems(reply: Reply) -> list[str]:
    messages = render_slack_messages(reply)
    problems = [] if 0 < len(messages) <= SLACK_MESSAGES else [f"{len(messages)} messages"]
    for m in [*messages, render_slack(reply)]:
        problems += _slack_message_problems(m)
    return problems


def console_problems(reply: Reply) -> list[str]:
    return _too_wide(render_console(reply, width=CONSOLE_WIDTH).split("\n"), CONSOLE_WIDTH)


CHECKS: dict[str, Callable[[Reply], list[str]]] = {
    "telegram": telegram_problems, "discord": discord_problems, "slack": slack_problems, "console": console_problems,
}


@pytest.fixture
async def shown(sqlite_db: Database) -> list[Shown]:
    h, _ = phone_harness(sqlite_db)
    return await every_reply(h)


async def test_the_fixture_covers_every_command_and_a_busy_account(shown: list[Shown], sqlite_db: Database) -> None:
    h, _ = phone_harness(sqlite_db)
    assert {s.command for s in shown} == {spec.name for spec in h.dispatcher.registry}
    text = {s.line: s.reply.plain_text() for s in shown}
    assert "PEPE/USD" in text["/positions"] and "BTC/USD" in text["/positions"]
    assert "0.00000812" in text["/positions"]
    assert sum("/USD" in line for line in text["/trades 50"].split("\n")) == 50
    assert len(text["/audit all 50"].split("\n")) >= 50


async def test_the_fixture_shows_orders_order_prompts_reports_and_listings(shown: list[Shown]) -> None:
    """Not bare usage errors or empty answers: the replies a busy account really gets."""
    text = {s.line: s.reply.plain_text() for s in shown}
    replies = {s.line: s.reply for s in shown}
    orders = text["/orders"]
    assert "Open orders (5)" in orders and "0.00000755" in orders and "68,500.0" in orders
    assert {"PEPE/USD", "BTC/USD", "ETH/USD", "DOGE/USD", "SOL/USD"} <= set(orders.replace("|", " ").split())
    assert "You pay ≈ 250.65 USD" in text["/buy PEPE/USD 250USD"]
    assert "Bought 31,645,569 PEPE" in text["/buy PEPE/USD 250USD → Confirm"]
    assert "Market now 66,210.0" in text["/sell BTC/USD 0.01 @ 70000"]
    assert "Order placed: limit sell" in text["/sell BTC/USD 0.01 @ 70000 → Confirm"]
    sell_all = text["/sell PEPE/USD 125000000"]
    assert "Sells 125,000,000 PEPE at ≈" in sell_all and "Closes the position." in sell_all  # no "(125000000 PEPE)"
    assert "Cancelled 1 order" in text["/cancel a8f3e9 → Confirm"]
    assert "Cancels 5 orders" in text["/cancel all"]  # four left, and the BTC limit sell
    report = replies["/report daily_report"]
    assert "Daily PnL report: Tue 2024-04-30" in text["/report daily_report"] and "scheduler" not in report.plain_text()
    assert any(isinstance(b, Image) for b in report.blocks)
    assert [b.payload for b in replies["/report"].buttons][:2] == ["run:report daily_report",
                                                                   "run:report weekly_report"]
    assert "run:close BTC/USD" in [b.payload for b in replies["/close"].buttons]
    assert any(isinstance(b, Image) for b in replies["/chart"].blocks)
    assert "Closed trades 11-20" in text["/trades 10 2"]


@pytest.mark.parametrize("platform", list(CHECKS))
async def test_every_reply_fits_a_phone_and_the_platform_limits(platform: str, shown: list[Shown]) -> None:
    problems = {s.line: p for s in shown if (p := CHECKS[platform](s.reply))}
    assert not problems, "\n".join(f"{line}: {p[:3]}" for line, p in problems.items())
