"""The console chat: rendering as plain text, and whole sessions fed through a real pipe."""

from __future__ import annotations

import asyncio
import io
import os
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bot.dispatcher import Dispatcher
from bot.platforms.console import ConsoleChat, FileReader, open_fd_reader, render_console, render_event
from bot.reply import Button, Buttons, Image, KeyValues, Reply, Table, Text
from core.trading.events import EventBus, Killed, PositionClosed
from core.trading.intents import ClosedPosition
from tests.bot.conftest import MakeHarness
from tests.bot.fake_trading import FakeTrading


def test_render_console_aligns_tables_and_numbers_buttons() -> None:
    reply = Reply((
        Text("careful", "warning"),
        KeyValues("Status", (("state", "running"), ("equity", "10,000.00 USD"))),
        Table("Open positions", ("pair", "qty", "PnL"), (("BTC/USD", "0.5", "+500.00"), ("SOL/USD", "120", "-3.10"))),
        Image(b"\x89PNG....", "equity curve"),
        Buttons((Button("Confirm", "cf:AAAAAAAAAAAAAAAA", "danger"), Button("Cancel", "cx:AAAAAAAAAAAAAAAA"))),
    ))
    assert render_console(reply) == "\n".join([
        "warning: careful",
        "Status",
        "  state   running",
        "  equity  10,000.00 USD",
        "Open positions",
        "pair     qty      PnL",
        "-------  ---  -------",
        "BTC/USD  0.5  +500.00",
        "SOL/USD  120    -3.10",
        "[image: equity curve, 8 bytes]",
        "[1] Confirm  [2] Cancel",
        "(type the number, or: yes AAAAAAAAAAAAAAAA / no AAAAAAAAAAAAAAAA)",
    ])


def test_render_console_keeps_cells_on_one_line_and_handles_empty_tables() -> None:
    out = render_console(Reply((Table("T", ("a", "b"), (("x\ny", "1"),)), Table("", ("only",), ()))))
    assert "x y" in out and "(none)" in out
    assert render_console(Reply.error("bad")) == "error: bad"


def test_render_event_is_one_timestamped_line() -> None:
    ev = PositionClosed(pair="BTC/USD", qty=Decimal("0.5"), entry_price=Decimal("40000"), exit_price=Decimal("41000"),
                        fees=Decimal("1"), pnl=Decimal("499"), pnl_pct=Decimal("2.5"), reason="take profit",
                        ts=datetime(2024, 5, 1, 13, 45, 7, tzinfo=UTC))
    line = render_event(ev)
    assert line.startswith("2024-05-01 13:45 UTC [info] Closed BTC/USD: +499.00 USD (+2.50%)") and "\n" not in line
    assert render_event(ev, "Europe/Berlin").startswith("2024-05-01 15:45 CEST [info] Closed BTC/USD")


async def run_session(dispatcher: Dispatcher, lines: bytes, *, events: asyncio.Queue | None = None) -> str:  # type: ignore[type-arg]
    """Feed ``lines`` through a real OS pipe, as ``printf ... | tradectl run`` would, until EOF."""
    read_fd, write_fd = os.pipe()
    out = io.StringIO()
    eofs: list[bool] = []
    reader = await open_fd_reader(read_fd)
    console = ConsoleChat(dispatcher, reader=reader, out=out, events=events, on_eof=lambda: eofs.append(True))
    await console.start()
    await console.start()  # safe twice
    os.write(write_fd, lines)
    os.close(write_fd)
    await asyncio.wait_for(console.eof.wait(), 10)
    await console.stop()
    await console.stop()
    os.close(read_fd)
    assert eofs == [True]
    return out.getvalue()


async def test_console_session_status_kill_confirm_resume_rearm(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness(admins={})  # no platform admins: the console operator is admin regardless
    out = await run_session(h.dispatcher, b"/status\n/kill\n1\n/resume\nrearm\n/status\n")
    assert "🟢 Running · equity" in out
    assert "warning: Confirm /kill" in out and "[1] 🛑 Kill now  [2] Cancel" in out
    assert "ok: 🛑 Trading is KILLED: closed 2 positions." in out
    assert "BTC/USD" in out.split("KILLED", 1)[1] and "+1,000.00 USD" in out
    assert "error: trading is killed; an admin must /rearm first" in out
    assert "ok: re-armed" in out
    assert fake.state == "paused" and fake.open == {}
    assert [i.requested_by for i in fake.intents] == ["console:local"] * 3


async def test_console_confirms_with_yes_nonce_and_cancels_with_no(make_harness: MakeHarness,
                                                                   fake: FakeTrading) -> None:
    h = await make_harness()
    out = io.StringIO()
    console = ConsoleChat(h.dispatcher, reader=FileReader(io.BytesIO(b"")), out=out)
    asked = await console.handle_line("/close BTC/USD")
    assert asked is not None
    nonce = asked.rsplit("yes ", 1)[1].split(" ")[0]
    assert "Closed 1 position" in (await console.handle_line(f"yes {nonce}") or "")
    asked = await console.handle_line("close ETH/USD")
    nonce = (asked or "").rsplit("no ", 1)[1].rstrip(")")
    assert "Cancelled" in (await console.handle_line(f"no {nonce}") or "")
    assert "not valid" in (await console.handle_line("yes AAAAAAAAAAAAAAAA") or "")
    assert "choose a number from 1 to 2" in (await console.handle_line("/closeall") or "") + (
        await console.handle_line("7") or "") + out.getvalue()
    assert fake.submitted() == ["ClosePosition"]


async def test_console_reads_a_regular_file_and_prints_events(make_harness: MakeHarness, tmp_path: Path) -> None:
    h = await make_harness()
    script = tmp_path / "commands.txt"
    script.write_bytes(b"/whoami\n\n   \nhelp\n")
    bus = EventBus()
    queue = bus.subscribe()
    out = io.StringIO()
    with script.open("rb") as f:
        console = ConsoleChat(h.dispatcher, reader=FileReader(f), out=out, events=queue)
        bus.publish(Killed(by="console:local", complete=True, closed=(ClosedPosition(
            pair="BTC/USD", qty=Decimal("0.5"), exit_price=Decimal("41000"), pnl=Decimal("500"), fees=Decimal(1)),)))
        await console.start()
        await asyncio.wait_for(console.eof.wait(), 5)
        for _ in range(100):
            if "Kill switch by the console operator" in out.getvalue():
                break
            await asyncio.sleep(0.01)
        await console.stop()
    text = out.getvalue()
    assert re.search(r"user id +local", text) and "/kill" in text
    assert ("[critical] 🛑 Kill switch by the console operator: 1 position closed: "
            "BTC/USD 0.5 @ 41,000.00: +500.00 USD") in text


async def test_console_keeps_going_when_the_database_fails(make_harness: MakeHarness, fake: FakeTrading) -> None:
    h = await make_harness()
    db = h.dispatcher.audit.db
    await db.stop()  # the database goes away under the console
    out = io.StringIO()
    console = ConsoleChat(h.dispatcher, reader=FileReader(io.BytesIO(b"")), out=out)
    try:
        reply = await console.handle_line("/kill")
    finally:
        await db.start()
    assert reply is not None and "error: Something went wrong, reference " in reply
    assert "Traceback" not in out.getvalue()
    assert fake.intents == []
    assert "Running · equity" in (await console.handle_line("/status") or "")


async def test_console_saves_images_and_says_where(make_harness: MakeHarness, tmp_path: Path) -> None:
    h = await make_harness()
    out = io.StringIO()
    console = ConsoleChat(h.dispatcher, reader=FileReader(io.BytesIO(b"")), out=out, image_dir=tmp_path / "images")
    shown = await console.handle_line("/chart 7") or ""
    (saved,) = (tmp_path / "images").iterdir()
    assert saved.suffix == ".png" and saved.read_bytes().endswith(b"equity 7 days")
    assert f"saved to {saved}]" in shown
    # without a directory (and in the pure renderer) the image is only described
    plain = ConsoleChat(h.dispatcher, reader=FileReader(io.BytesIO(b"")), out=io.StringIO())
    assert "saved to" not in (await plain.handle_line("/chart 7") or "")


async def test_console_events_carry_the_paper_on_live_prices_heading(make_harness: MakeHarness) -> None:
    """Paper trading on a live feed: the console's event lines say so first, with the heading the chat
    platforms' alerts carry (the outbox payload's ``label``), so a simulated close never reads as real."""
    from bot.notify.formats import Style, from_payload
    from core.settings.settings_models import TradingSettings
    from tests.core.waiting import eventually

    label = TradingSettings(mode="paper", feed="kraken").paper_label
    assert label == "PAPER · live Kraken prices"
    h = await make_harness()
    bus = EventBus()
    out = io.StringIO()
    console = ConsoleChat(h.dispatcher, reader=FileReader(io.BytesIO(b"")), out=out, events=bus.subscribe(),
                          label=label)
    event = Killed(by="console:local", complete=True, closed=())
    await console.start()
    try:
        bus.publish(event)
        await eventually(lambda: "Kill switch" in out.getvalue(), timeout=5, what="the event line")
    finally:
        await console.stop()
    line = out.getvalue().strip().splitlines()[-1]
    platforms = from_payload({"kind": event.kind, "severity": event.severity, "data": event.to_dict(),
                              "label": label}, Style())
    assert platforms.title.startswith(f"{label} · ")
    assert line.endswith(f"[critical] {platforms.headline()}")
    assert render_event(event).endswith(f"[critical] {platforms.headline().removeprefix(label + ' · ')}")
