"""Hostile text on every way out: renderers, alert senders, the console.

The corpus (tests/bot/hostile.py) goes through every renderer — Telegram, Discord, Slack, console —
in every block a command can return (text, table, key-values, buttons, image caption), and through
every alert sender against the fake platforms, asserting on what the platform receives: nothing live
survives (no mass mention, no ``<!channel>``/``<@...>``, no markdown or HTML link, no escape
sequence), Discord messages parse no mentions, and nothing raises.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.notify import AlertMessage, OutboxDispatcher, WebhookSender
from bot.notify.formats import Alert
from bot.platforms.console import ConsoleChat, FileReader, render_console, render_event
from bot.platforms.discord import DiscordSender, render_discord
from bot.platforms.discord.render import (
    MAX_CONTENT,
    MAX_DESCRIPTION,
    MAX_EMBED_TOTAL,
    DiscordMessage,
    render_discord_messages,
)
from bot.platforms.slack import SlackSender, render_slack, web_client
from bot.platforms.slack.render import MAX_BLOCKS, MAX_SECTION, SlackMessage, render_slack_messages
from bot.platforms.telegram import TelegramAlertSender
from bot.platforms.telegram.render import MAX_CAPTION, MAX_TEXT, PhotoMessage, TextMessage, render_telegram, units
from bot.reply import Button, Buttons, Image, KeyValues, Reply, Table, Text
from core.ops.outbox import OutboxWriter
from core.settings.settings_models import Destination, NotifySettings, SlackSettings
from core.trading.events import EventBus, StateChanged
from persistence.db import Database
from tests.bot.conftest import TRADER, MakeHarness
from tests.bot.fake_trading import FakeTrading
from tests.bot.hostile import (
    BIG,
    CORPUS,
    LONE_SURROGATE,
    PAUSE_REASON,
    TERMINAL,
    assert_clean,
    assert_console_inert,
    assert_discord_code_block,
    assert_discord_inert,
    assert_json_encodable,
    assert_no_mentions_parsed,
    assert_slack_blocks_inert,
    assert_slack_inert,
    assert_telegram_inert,
    ident,
)
from tests.bot.platforms.telegram.conftest import telegram_settings
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram, parse_html
from tests.fakes.webhook import FakeWebhook

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

OWNER = 80351110224678912
TG_CHAT = -100900
DC_CHANNEL = "381870553235193857"
SL_CHANNEL = "C0ALERTS01"


def replies(text: str) -> dict[str, Reply]:
    """``text`` in every place a command's reply can carry it."""
    return {
        "text": Reply((Text(text), Text(text, "error"))),
        "table": Reply((Table(text, ("pair", text), ((text, text), ("BTC/USD", "+1.00"))),)),
        "key-values": Reply((KeyValues(text, ((text, text), ("state", text))),)),
        "buttons": Reply((Text(text, "warning"), Buttons((Button(text, "cf:AAAAAAAAAAAAAAAA", "danger"),
                                                          Button(text, "cx:AAAAAAAAAAAAAAAA"))))),
        "image": Reply((Image(b"\x89PNG", text),)),
    }


# --- what each renderer produces, checked as its platform reads it --------------------------------


def check_telegram(reply: Reply) -> None:
    messages = render_telegram(reply)
    for m in messages:
        if isinstance(m, TextMessage):
            assert 0 < units(m.html) <= MAX_TEXT
            assert_telegram_inert(m.html)
        else:
            assert isinstance(m, PhotoMessage) and units(m.caption_html) <= MAX_CAPTION
            assert_telegram_inert(m.caption_html, own=frozenset())
        for row in m.keyboard:
            for b in row:
                assert b.label.strip(), "Telegram refuses a button without text"
                assert_clean(b.label, "telegram button")


def assert_discord_description(text: str) -> None:
    """A table's page: an aligned code block, or one block per row whose first line the renderer made
    bold (``**...**`` at the start of a line, around escaped text); either may end with escaped lines
    (a note, a hint)."""
    if text.startswith("```"):
        end = text.index("\n```", 3) + len("\n```")
        assert_discord_code_block(text[:end])
        text = text[end:].lstrip("\n")
    assert_discord_inert("\n".join(_without_own_bold(line) for line in text.split("\n")), "embed description")


def _without_own_bold(line: str) -> str:
    """A line without the bold the renderer opened at its start (``**key**: value``, ``**BTC/USD**``)."""
    if not line.startswith("**"):
        return line
    i = 2
    while i < len(line):
        if line[i] == "\\":
            i += 2
        elif line.startswith("**", i):
            return line[2:i] + line[i + 2:]
        else:
            i += 1
    return line


def check_discord(reply: Reply) -> None:
    for msg in [render_discord(reply, owner=OWNER), *render_discord_messages(reply, owner=OWNER)]:
        check_discord_message(msg)


def check_discord_message(msg: DiscordMessage) -> None:
    kwargs = msg.kwargs()
    assert_no_mentions_parsed(kwargs["allowed_mentions"].to_dict())
    assert len(msg.content) <= MAX_CONTENT and len(msg.embeds) <= 10
    assert sum(len(e) for e in msg.embeds) <= MAX_EMBED_TOTAL
    assert_discord_inert(msg.content, "content")
    for embed in msg.embeds:
        doc = embed.to_dict()
        assert_json_encodable(doc)
        if "title" in doc:
            assert len(doc["title"]) <= 256
            assert_discord_inert(doc["title"], "embed title")
        if "description" in doc:
            assert len(doc["description"]) <= MAX_DESCRIPTION
            assert_discord_description(doc["description"])
        for f in doc.get("fields", []):
            assert len(f["name"]) <= 256 and len(f["value"]) <= 1024
            assert_discord_inert(f["name"], "field name")
            assert_discord_inert(f["value"], "field value")
    view = msg.view()
    for row in view.to_components() if view is not None else []:
        for c in row["components"]:
            assert 0 < len(c["label"]) <= 80
            assert_clean(c["label"], "discord button")
    assert_json_encodable(msg.content)


def check_slack(reply: Reply) -> None:
    for msg in [render_slack(reply), *render_slack_messages(reply)]:
        check_slack_message(msg)


def check_slack_message(msg: SlackMessage) -> None:
    assert_slack_inert(msg.text, "fallback text")
    blocks = list(msg.blocks)
    assert len(blocks) <= MAX_BLOCKS
    assert_slack_blocks_inert(blocks)
    for b in blocks:
        if b["type"] == "section" and "text" in b:
            assert len(b["text"]["text"]) <= MAX_SECTION
        for f in b.get("fields", []):
            assert len(f["text"]) <= 2000
    for _name, _png, title in msg.files:
        assert_clean(title, "slack file title")


def check_console(reply: Reply) -> None:
    assert_console_inert(render_console(reply))


RENDERERS = {"telegram": check_telegram, "discord": check_discord, "slack": check_slack, "console": check_console}


@pytest.mark.parametrize("renderer", list(RENDERERS))
@pytest.mark.parametrize("text", CORPUS, ids=ident)
def test_the_corpus_renders_inert_in_every_block_on_every_platform(renderer: str, text: str) -> None:
    for kind, reply in replies(text).items():
        try:
            RENDERERS[renderer](reply)
        except Exception as exc:
            raise AssertionError(f"{renderer} / {kind}: {exc!r}"[:2000]) from exc


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=200))
def test_any_str_renders_inert_on_every_platform(text: str) -> None:
    for reply in replies(text).values():
        for check in RENDERERS.values():
            check(reply)


@pytest.mark.parametrize("text", ["\xa0-", "\xa0- a list", "\u3000# a heading", "\u2003> a quote",
                                  "a\u2028- a list", "a\u2029# a heading", "\xa0\xa01. first", "x\x85+ y"])
def test_markdown_after_any_whitespace_or_line_break_shows_as_typed_on_discord(text: str) -> None:
    """A list, heading or quote mark after a no-break, em or ideographic space, or after a line or
    paragraph separator: the line is trimmed (the content's leading space; a client's line-break
    rules), so the mark would start a line; it is escaped like one after a plain space."""
    for reply in replies(text).values():
        check_discord(reply)


@pytest.mark.parametrize("text", [PAUSE_REASON, "<b>bold</b> & <a href='https://evil.example'>x</a>", "*_~`|"])
def test_telegram_and_console_show_markup_exactly_as_typed(text: str) -> None:
    [message] = render_telegram(Reply((Text(text),)))
    assert isinstance(message, TextMessage)
    assert parse_html(message.html) == (text, [])  # every character shown, none of it a tag or entity
    assert render_console(Reply((Text(text),))) == text


def test_the_big_string_is_cut_on_every_platform_and_nothing_raises() -> None:
    for reply in replies(BIG).values():
        for check in RENDERERS.values():
            check(reply)
    assert len(render_telegram(replies(BIG)["text"])) > 2  # Telegram splits a long reply into several messages


# --- alert senders, asserted on what the fake platforms receive ------------------------------------


def event_line(text: str) -> str:
    """An alert line as the engine writes it for a ``/pause`` with ``text`` as the reason."""
    return StateChanged(state="paused", previous="running", by="telegram:2", reason=text).summary()


def alerts() -> list[AlertMessage]:
    singles = [AlertMessage("state_changed", "info", (event_line(t),), silent=False) for t in CORPUS]
    digest = AlertMessage("digest", "warning", tuple(event_line(t) for t in CORPUS), silent=True, digest=True)
    bare = [AlertMessage("x", "info", (t,), silent=False) for t in ("\x00", "\x1b[2J", "\u202e", "")]
    # structured alerts (rendered natively: Telegram HTML, Discord embeds, Slack blocks), hostile text everywhere
    rich = [Alert("state_changed", "warning", t, (t, event_line(t)), (("reason", t), (t[:20] or "x", t)), when="14:02")
            for t in CORPUS]
    structured = [AlertMessage(a.kind, a.severity, a.text_lines(), silent=False, alerts=(a,)) for a in rich]
    rich_digest = AlertMessage("digest", "error", tuple(a.one_line() for a in rich), silent=False, digest=True,
                               alerts=tuple(rich))
    return [*singles, digest, *bare, *structured, rich_digest]


@dataclass
class Platforms:
    telegram: FakeTelegram
    discord: FakeDiscord
    slack: FakeSlack
    hooks: FakeWebhook


@pytest.fixture
async def platforms() -> AsyncIterator[Platforms]:
    async with (FakeTelegram(chat_rate_per_s=1000, chat_burst=1000, group_per_minute=100_000) as tg,
                FakeDiscord(channel_limit=1000, global_per_s=1000) as dc,
                FakeSlack(post_rate_per_s=1000, post_burst=1000) as sl,
                FakeWebhook(burst=1000) as hooks):
        yield Platforms(tg, dc, sl, hooks)


def senders(p: Platforms) -> dict[str, Any]:
    slack = SlackSettings(bot_token=SecretStr(p.slack.bot_token), api_base=p.slack.api_base, request_timeout_s=5)
    return {"telegram": TelegramAlertSender(telegram_settings(p.telegram, enabled=False)),
            "discord": DiscordSender(p.discord.token, api_base=p.discord.api_base, webhook=WebhookSender("discord")),
            "slack": SlackSender(web_client(slack), webhook=WebhookSender("slack"))}


async def close(sent: dict[str, Any]) -> None:
    for sender in sent.values():
        await sender.aclose()


def _telegram_received(p: Platforms, expected: int) -> None:
    tg = p.telegram.sent_to(TG_CHAT)
    assert len(tg) == expected
    for m in tg:
        # plain text, or (a structured alert) HTML whose only markup is ours: bold title, italic field names
        assert {e["type"] for e in m.entities} <= {"bold", "italic"} and 0 < units(m.text) <= MAX_TEXT, m.entities
        assert_clean(m.text, "telegram alert")


def discord_texts(body: dict[str, Any]) -> list[str]:
    """The content and every text of every embed: what Discord renders as markdown."""
    parts = [body.get("content") or ""]
    for embed in body.get("embeds") or []:
        parts += [embed.get("title", ""), embed.get("description", "")]
        parts += [x for f in embed.get("fields", []) for x in (f["name"], f["value"])]
    return [x for x in parts if x]


def _discord_body_inert(body: dict[str, Any], where: str) -> None:
    assert_no_mentions_parsed(body.get("allowed_mentions"))
    texts = discord_texts(body)
    assert texts and len(body.get("content") or "") <= 2000
    for text in texts:
        assert_discord_inert(text, where)
    for embed in body.get("embeds") or []:
        assert len(embed.get("description", "")) <= 4096 and len(embed["title"]) <= 256


def _discord_bot_received(p: Platforms, expected: int) -> None:
    bodies, posts = p.discord.channel_bodies[DC_CHANNEL], p.discord.channel_posts[DC_CHANNEL]
    assert len(bodies) == expected
    for body, post in zip(bodies, posts, strict=True):
        _discord_body_inert(body, "discord bot alert")
        assert not post["mention_everyone"] and not post["mentions"] and not post["mention_roles"]
        if body.get("content") and not body.get("embeds"):
            assert body.get("flags", 0) & 4, "SUPPRESS_EMBEDS: no preview card for a link in the text"
        elif body.get("content"):  # the flag would hide the embed too: the content line has no live address
            assert not re.search(r"(?i)https?://", body["content"]), "an address in an embed alert's content line"


def _discord_webhook_received(p: Platforms, expected: int) -> None:
    hook = p.hooks.received["discord"]
    assert len(hook) == expected
    for body in hook:
        _discord_body_inert(body, "discord webhook alert")


def _slack_bot_received(p: Platforms, expected: int) -> None:
    slack = p.slack.channel(SL_CHANNEL)
    assert len(slack) == expected
    for posted in slack:
        assert 0 < len(posted.text) <= 3000
        assert_slack_inert(posted.text, "slack bot alert")
        assert_slack_blocks_inert(posted.blocks)
        assert posted.raw.get("mrkdwn") is False and not posted.raw.get("link_names"), posted.raw
        assert posted.raw.get("unfurl_links") is False and posted.raw.get("unfurl_media") is False


def _slack_webhook_received(p: Platforms, expected: int) -> None:
    hook = p.hooks.received["slack"]
    assert len(hook) == expected
    for body in hook:
        assert 0 < len(body["text"]) <= 3000
        assert_slack_inert(body["text"], "slack webhook alert")
        assert_slack_blocks_inert(body.get("blocks") or [])
        assert body.get("mrkdwn") is False and not body.get("link_names") and body.get("unfurl_links") is False, body


def assert_received_inert(p: Platforms, *, expected: int) -> None:
    """Every message every platform received, as it received it; every platform's problems reported at once."""
    problems = []
    for check in (_telegram_received, _discord_bot_received, _discord_webhook_received, _slack_bot_received,
                  _slack_webhook_received):
        try:
            check(p, expected)
        except AssertionError as exc:
            problems.append(f"{check.__name__}: {str(exc)[:300]}")
    assert not problems, "\n".join(problems)


async def send_everywhere(p: Platforms, sent: dict[str, Any], message: AlertMessage) -> None:
    """One alert through all five senders: Telegram, Discord bot and webhook, Slack bot and webhook."""
    await sent["telegram"].send(str(TG_CHAT), message)
    await sent["discord"].send(DC_CHANNEL, message)
    await sent["discord"].send(p.hooks.channel_url("discord"), message)
    await sent["slack"].send(SL_CHANNEL, message)
    await sent["slack"].send(p.hooks.channel_url("slack"), message)


async def test_every_alert_sender_delivers_the_corpus_inert(platforms: Platforms) -> None:
    p = platforms
    sent = senders(p)
    messages = alerts()
    try:
        for message in messages:
            await send_everywhere(p, sent, message)
    finally:
        await close(sent)
    assert_received_inert(p, expected=len(messages))
    # the digest shortened its longest line to fit and kept every line
    digest = next(b for b in p.discord.channel_bodies[DC_CHANNEL] if "alerts:" in (b.get("content") or ""))
    assert digest["content"].count("\n• ") == len(CORPUS)


# --- issue 14, case 3: a /pause reason becomes alert text ------------------------------------------


async def test_case3_a_pause_reason_reaches_every_alert_channel_inert(db: Database, platforms: Platforms) -> None:
    """A trader's ``/pause @everyone <@U...> <!channel> [re-login here](https://evil...)`` becomes the
    state-change alert. Before: the Discord webhook carried it with no allowed_mentions, Slack webhooks
    sent ``<!channel>`` raw, Discord bot alerts rendered the masked link."""
    p = platforms
    destinations = tuple(Destination(name=name, platform=platform, target=target) for name, platform, target in (
        ("tg", "telegram", str(TG_CHAT)), ("dc-bot", "discord", DC_CHANNEL), ("dc-hook", "discord", "1"),
        ("sl-bot", "slack", SL_CHANNEL), ("sl-hook", "slack", "C0HOOK0001")))
    notify = NotifySettings(destinations=destinations)
    sent = senders(p)
    outbox = OutboxDispatcher(db, notify, sent, instance_id="hostile", poll_s=0.02,
                              targets={"dc-hook": p.hooks.channel_url("discord"),
                                       "sl-hook": p.hooks.channel_url("slack")})
    bus = EventBus(outbox=OutboxWriter(notify))
    await bus.record(db, StateChanged(state="paused", previous="running", by=TRADER.key, reason=PAUSE_REASON))
    await outbox.start()
    try:
        for _ in range(500):
            if (p.telegram.sent_to(TG_CHAT) and p.discord.channel_bodies[DC_CHANNEL] and p.slack.channel(SL_CHANNEL)
                    and p.hooks.received["discord"] and p.hooks.received["slack"]):
                break
            await asyncio.sleep(0.02)
    finally:
        await outbox.stop()
        await close(sent)
    assert_received_inert(p, expected=1)
    content = "\n".join(discord_texts(p.discord.channel_bodies[DC_CHANNEL][0]))
    assert "\\[re-login here](https://evil.example/login)" in content  # reads as typed, is no link
    assert "&lt;!channel&gt;" in p.hooks.received["slack"][0]["text"]


# --- issue 14, case 4: terminal injection into the console ------------------------------------------


async def test_case4_a_reason_cannot_drive_the_console_operators_terminal(make_harness: MakeHarness,
                                                                          fake: FakeTrading) -> None:
    """A paused reason holding ``ESC ] 0;pwned BEL ESC [2J`` (retitle the window, clear the screen) —
    and OSC 52, which writes the clipboard — reaches the console through /status and through the
    state-change event; the terminal gets text only."""
    h = await make_harness()
    fake.state, fake.reason = "paused", f"news {TERMINAL} \x1b]52;c;cHduZWQ=\x07 \u202eevil\rover"
    events: asyncio.Queue[Any] = asyncio.Queue()
    out = io.StringIO()
    console = ConsoleChat(h.dispatcher, reader=FileReader(io.BytesIO(b"")), out=out, events=events)
    await console.handle_line("/status")
    events.put_nowait(StateChanged(state="paused", previous="running", by=TRADER.key, reason=fake.reason))
    await console.start()
    try:
        for _ in range(200):
            if "[info] ⏸ Entries paused by" in out.getvalue():
                break
            await asyncio.sleep(0.01)
    finally:
        await console.stop()
    printed = out.getvalue()
    assert "[info] ⏸ Entries paused by" in printed and "news" in printed and "evil" in printed
    assert_console_inert(printed)
    assert "\x1b" not in render_event(StateChanged(state="paused", previous="running", by="x", reason=TERMINAL))


# --- issue 14, case 10 (rendering): a lone surrogate ------------------------------------------------


async def test_case10_status_with_a_lone_surrogate_in_the_reason_renders_everywhere(make_harness: MakeHarness,
                                                                                   fake: FakeTrading) -> None:
    """Before: render_telegram raised UnicodeEncodeError on such a paused reason, so /status got no reply."""
    h = await make_harness()
    fake.state, fake.reason = "paused", LONE_SURROGATE
    reply = (await h.send("/status")).reply
    assert reply is not None and LONE_SURROGATE in reply.plain_text()
    for check in RENDERERS.values():
        check(reply)
    html = "\n".join(m.html for m in render_telegram(reply) if isinstance(m, TextMessage))
    assert "bad\ufffdx" in html  # the reason is still shown, its broken character replaced


async def test_case10_an_alert_with_a_lone_surrogate_is_delivered_everywhere(platforms: Platforms) -> None:
    """Before: the Discord and Slack senders raised while encoding the request, so the alert (and every
    alert behind it, delivered in order) never left."""
    p = platforms
    sent = senders(p)
    message = AlertMessage("state_changed", "info", (event_line(LONE_SURROGATE),), silent=False)
    try:
        await send_everywhere(p, sent, message)
    finally:
        await close(sent)
    assert_received_inert(p, expected=1)
    assert p.slack.channel(SL_CHANNEL)[0].text.endswith("bad\ufffdx")

