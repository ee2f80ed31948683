"""Who may do what: role boundaries, allowlists, argument limits and role changes from chat."""

from __future__ import annotations

from bot.identity import Actor
from bot.platforms.telegram.render import TextMessage, render_telegram
from bot.reply import KeyValues, Reply
from tests.bot.conftest import ADMIN, ADMIN2, GROUP, OTHER_GROUP, STRANGER, TRADER, VIEWER, MakeHarness
from tests.bot.fake_trading import FakeTrading
from tests.fakes.clock import ManualClock

READ_ONLY = ["/status", "/positions", "/balance", "/pnl", "/pnl week", "/daily 3", "/weekly", "/monthly 2",
             "/trades 5", "/performance", "/health", "/whoami", "/help"]


async def test_viewer_reads_but_cannot_change_anything(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    for text in READ_ONLY:
        sent = await h.send(text, as_=VIEWER)
        assert not sent.has_style("error"), (text, sent.rendered)
    for text in ["/pause", "/resume", "/close BTC/USD", "/closeall", "/kill", "/rearm", "/grant 9 viewer",
                 "/revoke 2", "/roles", "/audit"]:
        sent = await h.send(text, as_=VIEWER)
        assert "needs the" in sent.text and "you are viewer" in sent.text, text
        assert not sent.buttons
    assert fake.intents == []


async def test_trader_pauses_resumes_and_closes_but_not_admin_commands(make_harness: MakeHarness,
                                                                        fake: FakeTrading) -> None:
    h = await make_harness()
    assert "paused" in (await h.send("/pause news at 14:30", as_=TRADER)).text
    assert fake.state == "paused" and fake.reason == "news at 14:30"
    assert "resumed" in (await h.send("/resume", as_=TRADER)).text
    closed = await h.confirm("/close btc-usd", as_=TRADER)
    assert "Closed 1 position" in closed.text and "BTC/USD | 0.5 | 41,000.00" in closed.text
    assert "BTC/USD" not in fake.open
    for text in ["/kill", "/closeall", "/rearm", "/grant 9 viewer", "/revoke 3", "/roles", "/audit"]:
        sent = await h.send(text, as_=TRADER)
        assert "needs the admin role; you are trader" in sent.text, text
        assert not sent.buttons
    assert fake.submitted() == ["PauseEntries", "Resume", "ClosePosition"]
    assert fake.intents[0].requested_by == "telegram:2"


async def test_admin_may_do_everything(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    for text in [*READ_ONLY, "/pause", "/resume", "/roles", "/audit 3", "/grant 9 viewer", "/revoke 9", "/rearm"]:
        sent = await h.send(text)
        if text == "/rearm":
            assert "not killed" in sent.text  # allowed, refused by the engine for a reason
        else:
            assert not sent.has_style("error"), (text, sent.rendered)
    assert "Closed 2 positions" in (await h.confirm("/closeall")).text
    assert "KILLED" in (await h.confirm("/kill")).text
    assert "re-armed" in (await h.send("/rearm")).text


async def test_unallowlisted_user_gets_nothing_and_is_audited(make_harness: MakeHarness, fake: FakeTrading) -> None:
    for silent in (False, True):
        h = await make_harness(unauthorized_reply="silent" if silent else "reply")
        sent = await h.send("/kill", as_=STRANGER)
        assert sent.silent if silent else sent.text == "Not authorized."
        sent = await h.send("/status", as_=STRANGER, chat=GROUP)
        assert sent.silent  # silent mode, or "not authorized" already said this minute
        assert fake.intents == []
    rows = await h.dispatcher.audit.recent(10, user_id="666")
    assert [(r.command, r.decision) for r in rows] == [("status", "denied"), ("kill", "denied")] * 2


async def test_unallowlisted_chat_gets_nothing_even_for_an_admin(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    sent = await h.send("/pause", chat=OTHER_GROUP)
    assert sent.text == "Not authorized."
    assert fake.intents == []
    assert (await h.send("/pause", chat=GROUP)).text.startswith("entries paused")
    rows = await h.dispatcher.audit.recent(5, platform="telegram")
    assert [(r.chat_id, r.decision) for r in rows] == [("-100", "allowed"), ("-200", "denied")]


async def test_identity_is_the_stable_id_not_the_display_name(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    impostor = Actor("telegram", "777", display=ADMIN.display)  # same name as the admin
    assert (await h.send("/status", as_=impostor)).text == "Not authorized."
    cross_platform = Actor("discord", ADMIN.user_id)  # same id, other platform
    assert (await h.send("/status", as_=cross_platform)).text == "Not authorized."


async def test_trader_pair_limit(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness(trader_pairs={"telegram:2": ("ETH/USD",)})
    refused = await h.send("/close BTC/USD", as_=TRADER)
    assert "only for ETH/USD" in refused.text and not refused.buttons
    assert "ETH/USD | 0.5" in (await h.confirm("/close ETH/USD", as_=TRADER)).text
    assert "BTC/USD | 0.5" in (await h.confirm("/close BTC/USD")).text  # admins are not limited
    rows = await h.dispatcher.audit.recent(20, user_id="2")
    assert ("close", "denied") in [(r.command, r.decision) for r in rows]


async def test_grant_and_revoke_flow(make_harness: MakeHarness, fake: FakeTrading, clock: ManualClock) -> None:
    h = await make_harness()
    newcomer = Actor("telegram", "55")
    assert (await h.send("/status", as_=newcomer)).text == "Not authorized."
    assert "is now viewer" in (await h.send("/grant 55 viewer")).text
    assert not (await h.send("/status", as_=newcomer)).has_style("error")
    assert "needs the trader role" in (await h.send("/pause", as_=newcomer)).text
    assert "is now trader" in (await h.send("/grant telegram:55 trader")).text
    assert "paused" in (await h.send("/pause", as_=newcomer)).text
    roles = (await h.send("/roles all")).text
    assert "telegram:55 | trader | granted | alice (telegram:1)" in roles
    assert "no longer has a role" in (await h.send("/revoke 55")).text
    clock.advance(61)  # "not authorized" is said once a minute per user, then silence
    assert (await h.send("/resume", as_=newcomer)).text == "Not authorized."
    assert "has no granted role" in (await h.send("/revoke 55")).text


async def test_settings_roles_cannot_be_revoked_from_chat(make_harness: MakeHarness) -> None:
    h = await make_harness()
    sent = await h.send("/revoke 4")
    assert sent.has_style("error") and "admin by the settings" in sent.text
    assert not (await h.send("/kill", as_=ADMIN2)).has_style("error")  # still an admin
    granted = await h.send("/grant 4 viewer")
    assert "the settings make them admin, which still applies" in granted.text


async def test_grant_refuses_display_names_and_bad_roles(make_harness: MakeHarness) -> None:
    h = await make_harness()
    assert "stable platform id" in (await h.send("/grant @bob viewer")).text
    assert "stable platform id" in (await h.send("/grant slack:bob viewer")).text
    assert "is now viewer" in (await h.send("/grant slack:U024BE7LH viewer")).text
    assert "is now trader" in (await h.send("/grant discord:<@80351110224678912> trader")).text
    assert "viewer, trader or admin" in (await h.send("/grant 9 owner")).text
    assert "name the platform" in (await h.send("/grant matrix:9 viewer")).text


async def test_help_lists_only_what_the_role_allows(make_harness: MakeHarness) -> None:
    h = await make_harness()
    viewer_help = (await h.send("/help", as_=VIEWER)).text
    trader_help = (await h.send("/help", as_=TRADER)).text
    admin_help = (await h.send("/help")).text
    assert "/status" in viewer_help and "/pause" not in viewer_help and "/kill" not in viewer_help
    assert "/pause" in trader_help and "/close [pair]" in trader_help and "/kill" not in trader_help
    assert "/kill" in admin_help and "/grant" in admin_help
    assert "/kill [reason...]: Emergency stop" in admin_help and "/status: State, equity" in viewer_help
    assert "No such command" in (await h.send("/help kill", as_=VIEWER)).text
    assert "usage: /close [pair]" in (await h.send("/help close", as_=TRADER)).text
    menu = h.dispatcher.registry.menu(h.dispatcher.access.bootstrap_role("telegram", "3"))
    assert ("status", "State, equity, today's PnL, unrealized PnL and open positions, at a glance") in menu
    assert all(name not in {"pause", "kill", "grant"} for name, _ in menu)


def _sections(reply: Reply | None) -> dict[str, list[str]]:
    """/help's sections: each group's heading and the commands under it (their synopses)."""
    assert reply is not None
    return {b.title: [k for k, _ in b.items] for b in reply.blocks if isinstance(b, KeyValues)}


async def test_help_groups_the_commands_by_purpose_and_shows_only_groups_the_role_can_use(
        make_harness: MakeHarness) -> None:
    h = await make_harness()
    viewer = _sections((await h.send("/help", as_=VIEWER)).reply)
    trader = _sections((await h.send("/help", as_=TRADER)).reply)
    admin_reply = (await h.send("/help")).reply
    admin = _sections(admin_reply)
    assert list(admin) == ["Status & info", "Profit & trades", "Trading", "Orders & pairs", "Reports", "Admin"]
    assert list(trader) == ["Status & info", "Profit & trades", "Trading", "Orders & pairs", "Reports"]
    assert list(viewer) == ["Status & info", "Profit & trades", "Orders & pairs", "Reports"]  # no Trading, no Admin
    assert admin["Trading"] == ["/pause [reason...]", "/resume", "/close [pair]", "/closeall", "/kill [reason...]",
                                "/rearm"]
    assert trader["Trading"] == ["/pause [reason...]", "/resume", "/close [pair]"]
    assert admin["Admin"] == ["/roles [all]", "/grant <user> <viewer|trader|admin>", "/revoke <user>",
                              "/audit [all] [n] [page]"]
    assert "/status" in viewer["Status & info"] and "/trades [n] [page]" in viewer["Profit & trades"]
    assert viewer["Orders & pairs"] == ["/orders", "/pairs [add|remove] [pair] [close|keep]"]
    assert viewer["Reports"] == ["/chart [days]", "/schedule"]  # /report is for admins
    every = [name for names in admin.values() for name in names]
    assert sorted(every) == sorted(spec.synopsis() for spec in h.dispatcher.registry)  # each once
    # on Telegram a heading line, then one plain line per command: tappable, never in a <pre> block
    assert admin_reply is not None
    html = "\n".join(m.html for m in render_telegram(admin_reply) if isinstance(m, TextMessage))
    assert "<pre>" not in html
    assert "<b>Trading</b>\n<b>/pause [reason...]</b>: Stop new entries" in html


async def test_console_operator_is_admin_and_the_console_chat_always_allowed(make_harness: MakeHarness) -> None:
    from bot.identity import CONSOLE_ACTOR, CONSOLE_CHAT

    h = await make_harness(admins={})
    sent = await h.send("/whoami", as_=CONSOLE_ACTOR, chat=CONSOLE_CHAT)
    assert "role: admin" in sent.text
    assert "console" in sent.text


async def test_a_revocation_on_another_replica_stops_state_changes_at_once(make_harness: MakeHarness,
                                                                            fake: FakeTrading) -> None:
    here, there = await make_harness(), await make_harness()  # two replicas sharing the database
    user = Actor("telegram", "56")
    await there.send("/grant 56 trader")
    assert not (await here.send("/status", as_=user)).has_style("error")  # read: grants cached briefly
    await there.send("/revoke 56")
    assert (await here.send("/pause", as_=user)).text == "Not authorized."  # state change: read fresh
    assert fake.intents == []
