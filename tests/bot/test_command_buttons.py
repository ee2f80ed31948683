"""Command buttons (``run:<command line>``): a press is the presser typing that line, through every check;
"More" under a page with a next one; /close and /report without arguments offer a button per choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.reply import Buttons, Image
from core.trading.views import JobOutcome, JobView, TradeView
from tests.bot.conftest import ADMIN, GROUP, TRADER, VIEWER, MakeHarness
from tests.bot.fake_trading import FakeTrading

T0 = datetime(2024, 1, 2, 12, 0, tzinfo=UTC)


async def decisions(h, n: int = 50) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return [(r.command, r.args, r.decision) for r in reversed(await h.dispatcher.audit.recent(n))]


def add_trades(fake: FakeTrading, count: int) -> None:
    for i in range(count):
        fake.closed.append(TradeView(pair="BTC/USD", qty=Decimal("0.5"), entry_price=Decimal(40000),
                                     exit_price=Decimal(41000), pnl=Decimal(500), pnl_pct=Decimal("2.5"),
                                     fees=Decimal(0),
                                     opened_at=T0, closed_at=T0 + timedelta(minutes=i), exit_reason="closed from chat"))


async def test_a_viewer_pressing_a_trader_command_is_refused_and_audited_like_typing(
        make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    typed = await h.send("/close BTC/USD", as_=VIEWER, chat=GROUP)
    pressed = await h.press("run:close BTC/USD", as_=VIEWER, chat=GROUP)
    assert pressed.reply is not None and pressed.reply.private
    assert pressed.text == typed.text and "needs the trader role" in pressed.text
    assert fake.intents == [] and not pressed.buttons  # no confirmation asked, nothing closed
    assert await decisions(h) == [("close", "BTC/USD", "denied")] * 2


async def test_a_pressed_kill_asks_for_confirmation_and_kills_nothing(make_harness: MakeHarness,
                                                                     fake: FakeTrading) -> None:
    h = await make_harness()
    asked = await h.press("run:kill")
    assert "Confirm /kill" in asked.text and [b.label for b in asked.buttons] == ["🛑 Kill now", "Cancel"]
    assert fake.intents == [] and fake.state == "running"
    assert h.dispatcher.urgent(ADMIN, GROUP, payload="run:kill")  # in the kill lane, as typed /kill is
    assert not h.dispatcher.urgent(VIEWER, GROUP, payload="run:kill")
    done = await h.press(asked.confirm_payload)
    assert "KILLED" in done.text and fake.state == "killed"
    assert await decisions(h) == [("kill", "", "allowed"), ("kill", "", "confirmed")]


async def test_a_pressed_line_is_validated_like_a_typed_one(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    bad = await h.press("run:trades 999")
    assert "n must be a whole number from 1 to 50" in bad.text
    unknown = await h.press("run:nosuch")
    assert "Unknown command /nosuch" in unknown.text
    too_long = await h.press("run:trades " + "1" * 60)  # longer than any payload we send
    assert "This button is not valid" in too_long.text
    assert [d for _, _, d in await decisions(h)] == ["invalid", "unknown", "invalid"]


async def test_more_button_on_a_page_with_a_next_one_and_not_on_the_last(make_harness: MakeHarness,
                                                                        fake: FakeTrading) -> None:
    add_trades(fake, 5)
    h = await make_harness()
    first = await h.send("/trades 2")
    assert [(b.label, b.payload) for b in first.buttons] == [("More", "run:trades 2 2")]
    second = await h.press(first.buttons[0].payload)
    assert "Closed trades 3-4" in second.text and [b.payload for b in second.buttons] == ["run:trades 2 3"]
    last = await h.send("/trades 2 3")
    assert "Closed trades 5-5" in last.text and last.buttons == ()
    assert not (await h.send("/trades")).buttons  # all on one page
    assert await decisions(h, 4) == [("trades", "2", "allowed"), ("trades", "2 2", "allowed"),
                                     ("trades", "2 3", "allowed"), ("trades", "", "allowed")]


async def test_more_button_on_the_audit_log(make_harness: MakeHarness) -> None:
    h = await make_harness()
    for _ in range(3):
        await h.send("/status")
    page = await h.send("/audit 2")
    assert [b.payload for b in page.buttons] == ["run:audit 2 2"]
    everything = await h.send("/audit all 50")
    assert everything.buttons == ()


async def test_close_without_a_pair_offers_a_button_per_position(make_harness: MakeHarness,
                                                                 fake: FakeTrading) -> None:
    h = await make_harness(trader_pairs={"telegram:2": ("ETH/USD",)})
    listed = await h.send("/close")
    assert [(b.label, b.payload) for b in listed.buttons] == [("BTC/USD", "run:close BTC/USD"),
                                                              ("ETH/USD", "run:close ETH/USD")]
    assert "BTC/USD" in listed.text and "/close BTC/USD" in listed.text  # still listed as text
    assert [b.label for b in (await h.send("/close", as_=TRADER)).buttons] == ["ETH/USD"]  # the trader's pairs
    asked = await h.press("run:close ETH/USD")
    assert "Close ETH/USD" in [b.label for b in asked.buttons] and fake.intents == []
    await h.press(asked.confirm_payload)
    assert fake.submitted() == ["ClosePosition"] and "ETH/USD" not in fake.open


async def test_close_lists_every_position_but_offers_at_most_eight_buttons(make_harness: MakeHarness,
                                                                          fake: FakeTrading) -> None:
    pairs = [f"C{i}/USD" for i in range(10)]
    fake.add_positions(*pairs)
    h = await make_harness()
    listed = await h.send("/close")
    assert len(listed.buttons) == 8
    assert all(p in listed.text for p in pairs)


class WithJobs(FakeTrading):
    """A trading service with two scheduled jobs; running one records its name."""

    def __init__(self) -> None:
        super().__init__()
        self.ran: list[str] = []

    async def schedule(self):  # type: ignore[no-untyped-def]
        return [JobView("daily_report", "daily at 08:00", T0), JobView("checkin", "hourly", None)], []

    async def run_job(self, name: str) -> JobOutcome:
        self.ran.append(name)
        return JobOutcome(status="finished", events=())


async def test_report_without_a_job_offers_the_jobs(make_harness: MakeHarness) -> None:
    jobs = WithJobs()
    h = await make_harness(services=jobs)
    listed = await h.send("/report")
    assert [b.payload for b in listed.buttons] == ["run:report daily_report", "run:report checkin"]
    assert "daily_report" in listed.text and jobs.ran == []
    done = await h.press("run:report checkin")
    assert "checkin: finished" in done.text and jobs.ran == ["checkin"]
    refused = await h.press("run:report checkin", as_=TRADER)
    assert "needs the admin role" in refused.text and jobs.ran == ["checkin"]
    assert h.dispatcher.registry.get("report").synopsis() == "/report [job]"  # type: ignore[union-attr]


async def test_chart_offers_the_other_spans(make_harness: MakeHarness) -> None:
    h = await make_harness()
    sent = await h.send("/chart")
    assert sent.reply is not None and isinstance(sent.reply.blocks[0], Image)
    assert isinstance(sent.reply.blocks[-1], Buttons)
    assert [b.payload for b in sent.buttons] == ["run:chart 7", "run:chart 90", "run:chart 365"]
