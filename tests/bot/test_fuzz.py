"""Bad input, generated: random text, unicode, huge arguments, injection-looking strings and random
button payloads, from allowed and unallowed actors. Nothing crashes, no reply shows a traceback,
and nothing changes without the right role and a valid confirmation."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import func, select

from bot.app import build_dispatcher
from bot.commands import build_registry
from bot.identity import Actor, ChatRef
from bot.platforms.console import render_console
from bot.reply import Reply
from core.settings.settings_models import ChatSettings
from persistence.db import Database
from persistence.models import ConfirmationRow, RoleGrantRow
from tests.bot.conftest import ADMIN, BASE_SETTINGS, GROUP, OTHER_GROUP, STRANGER, TRADER, VIEWER
from tests.bot.fake_trading import FakeTrading
from tests.fakes.clock import ManualClock

NAMES = sorted({n for spec in build_registry() for n in (spec.name, *spec.aliases)})
NASTY = [
    "'; DROP TABLE audit_log; --", "\" OR 1=1 --", "<b>bold</b>", "<script>alert(1)</script>", "${jndi:ldap://x/a}",
    "{{7*7}}", "%s%s%s%n", "../../etc/passwd", "\x00", "\u202e\u0645", "\u200b", "`rm -rf /`", "*bold* _it_",
    "@everyone", "<@123>", "<!channel>", "BTC/USD", "btc-usd", "-1", "99999999999", "1e9", "٣", "NaN", "admin",
    "telegram:1", "cf:AAAAAAAAAAAAAAAA", "\n/kill", "/kill\n1",
]
words = st.one_of(st.sampled_from(NASTY), st.text(max_size=30), st.text(min_size=150, max_size=400))
commands = st.one_of(
    st.builds(lambda n, a, at: f"/{n}{at} " + " ".join(a), st.sampled_from(NAMES), st.lists(words, max_size=5),
              st.sampled_from(["", "@mybot", "@"])),
    st.text(max_size=300).map(lambda t: "/" + t),
    st.text(max_size=300),
    st.text(min_size=2000, max_size=6000).map(lambda t: "/status " + t),
)
payloads = st.one_of(
    st.text(max_size=100), st.sampled_from(NASTY),
    st.from_regex(r"\A(cf|cx):[A-Za-z0-9_-]{16}\Z"), st.from_regex(r"\A(cf|cx):.{0,70}\Z"),
    st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
)
RANDOM_USER = st.builds(lambda uid: Actor("telegram", uid), st.text(min_size=1, max_size=80))
LOW_ACTORS = st.one_of(st.sampled_from([VIEWER, STRANGER]), RANDOM_USER)
CHATS = st.one_of(st.sampled_from([GROUP, OTHER_GROUP, None]),
                  st.builds(lambda c, k: ChatRef("telegram", c, k), st.text(max_size=80),
                            st.sampled_from(["private", "group", "channel"])))
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def check_reply(reply: Reply | None) -> None:
    if reply is None:
        return
    text = render_console(reply)
    assert "Traceback" not in text and 'File "' not in text
    assert "Something went wrong" not in text, text  # no input may reach the internal-failure path
    assert len(text) < 20_000


async def state(db: Database) -> tuple[int, int]:
    async with db.session() as s:
        grants = (await s.exec(select(func.count()).select_from(RoleGrantRow))).one()
        pending = (await s.exec(select(func.count()).select_from(ConfirmationRow))).one()
    return int(grants), int(pending)


def dispatcher(db: Database, fake: FakeTrading):  # type: ignore[no-untyped-def]
    settings_ = ChatSettings(**{**BASE_SETTINGS, "rate_limit_per_minute": 100_000})
    return build_dispatcher(db, fake, settings_, clock=ManualClock())


@FUZZ
@given(text=commands, actor=LOW_ACTORS, chat=CHATS)
async def test_viewers_and_strangers_change_nothing(db: Database, text: str, actor: Actor,
                                                    chat: ChatRef | None) -> None:
    fake = FakeTrading()
    fake.add_positions("BTC/USD")
    d = dispatcher(db, fake)
    before = await state(db)
    reply = await d.handle_text(actor, chat or ChatRef("telegram", actor.user_id), text, None, None)
    check_reply(reply)
    assert fake.submitted() == []  # reads (/orders) go through submit too, and change nothing
    assert await state(db) == before


@FUZZ
@given(text=commands, chat=CHATS)
async def test_traders_change_only_what_needs_no_confirmation(db: Database, text: str, chat: ChatRef | None) -> None:
    fake = FakeTrading()
    fake.add_positions("BTC/USD")
    d = dispatcher(db, fake)
    grants_before, _ = await state(db)
    reply = await d.handle_text(TRADER, chat or ChatRef("telegram", TRADER.user_id), text, None, None)
    check_reply(reply)
    assert set(fake.submitted()) <= {"PauseEntries", "Resume"}
    assert (await state(db))[0] == grants_before
    assert "BTC/USD" in fake.open


@FUZZ
@given(text=commands)
async def test_admins_never_skip_a_confirmation(db: Database, text: str) -> None:
    fake = FakeTrading()
    fake.add_positions("BTC/USD")
    d = dispatcher(db, fake)
    reply = await d.handle_text(ADMIN, ChatRef("telegram", ADMIN.user_id), text, None, None)
    check_reply(reply)
    assert not {"Kill", "CloseAll", "ClosePosition", "PlaceOrder", "CancelOrders"} & set(fake.submitted())
    assert "BTC/USD" in fake.open


@FUZZ
@given(payload=payloads, actor=st.one_of(st.sampled_from([ADMIN, TRADER, VIEWER, STRANGER]), RANDOM_USER), chat=CHATS)
async def test_random_button_payloads_do_nothing(db: Database, payload: str, actor: Actor,
                                                 chat: ChatRef | None) -> None:
    fake = FakeTrading()
    fake.add_positions("BTC/USD")
    d = dispatcher(db, fake)
    asked = await d.handle_text(ADMIN, ChatRef("telegram", "1"), "/kill", None, None)  # a real nonce exists
    assert asked is not None and asked.buttons
    reply = await d.handle_callback(actor, chat or ChatRef("telegram", actor.user_id), payload, None)
    check_reply(reply)
    assert fake.submitted() == []
