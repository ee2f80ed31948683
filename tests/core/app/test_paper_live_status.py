"""/status and alerts say "PAPER" unmistakably when paper trades on a live feed, and nothing changes on replay."""

from __future__ import annotations

import json
from dataclasses import replace

from bot.app import build_dispatcher
from bot.harness import ChatHarness
from bot.notify.formats import Style, from_payload
from core.ops.outbox import OutboxWriter
from core.settings.settings_models import ChatSettings, Destination, NotifySettings
from core.trading.events import AutoPaused
from core.trading.views import StatusView
from persistence.db import Database
from tests.bot.conftest import ADMIN, BASE_SETTINGS
from tests.bot.fake_trading import FakeTrading
from tests.fakes.clock import ManualClock


class PaperOnKraken(FakeTrading):
    async def status(self) -> StatusView:
        return replace(await super().status(), mode="paper", venue="paper", paper_label="PAPER · live Kraken prices")


async def _status(db: Database, fake: FakeTrading) -> str:
    h = ChatHarness(build_dispatcher(db, fake, ChatSettings(**BASE_SETTINGS), clock=ManualClock()),
                    actor=ADMIN)
    sent = await h.send("/status")
    assert sent.reply is not None
    return sent.reply.plain_text()


async def test_status_says_paper_on_live_prices_first_and_in_the_details(sqlite_db: Database) -> None:
    shown = await _status(sqlite_db, PaperOnKraken())
    assert shown.splitlines()[0].startswith("🟢 Running · PAPER · live Kraken prices · equity 10,000.00 USD")
    assert "PAPER · live Kraken prices (simulated orders and balances)" in shown
    replay = await _status(sqlite_db, FakeTrading())
    assert "PAPER" not in replay and "paper on fake" in replay


def test_every_alert_of_paper_on_a_live_feed_is_headed_paper() -> None:
    notify = NotifySettings(destinations=(Destination(name="ops", platform="discord", target="381870553235193857"),))
    event = AutoPaused(reason="market data feed disconnected for more than 60s")
    labelled = OutboxWriter(notify, label="PAPER · live Kraken prices").rows_for(event)
    alert = from_payload(json.loads(labelled[0].payload), Style())
    assert alert.title.startswith("PAPER · live Kraken prices · ")
    assert alert.text_lines()[0] == alert.title
    plain = from_payload(json.loads(OutboxWriter(notify).rows_for(event)[0].payload), Style())
    assert "PAPER" not in plain.title and alert.title.endswith(plain.title)
