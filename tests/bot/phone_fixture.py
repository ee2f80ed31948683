"""A fuller account for layout tests: what a phone has to show on a busy day.

:class:`PhoneTrading` is the test :class:`~tests.bot.fake_trading.FakeTrading` with five open
positions in coins from PEPE (a price of 0.00000812) to BTC (64,000), fifty closed trades with
exit reasons of every length, and scheduled jobs with their latest runs. :func:`fill_audit_log`
sends fifty commands through a harness, so ``/audit 50`` has fifty varied rows (long arguments,
refusals, unknown commands).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.harness import ChatHarness
from core.trading.views import JobRunSummary, JobView, TradeView
from tests.bot.fake_trading import FakeTrading, make_position

PAIRS = ("PEPE/USD", "DOGE/USD", "SOL/USD", "ETH/USD", "BTC/USD")
# pair, quantity, entry, mark: from a fraction of a cent to tens of thousands
POSITIONS = (
    ("PEPE/USD", "125000000", "0.00000812", "0.00000790"),
    ("DOGE/USD", "15000", "0.1423", "0.1481"),
    ("SOL/USD", "19.8", "142.37", "151.20"),
    ("ETH/USD", "0.704", "3120.55", "3088.10"),
    ("BTC/USD", "0.0312", "64000.50", "66210.00"),
)
REASONS = ("take profit", "stop loss", "trailing stop hit after a 4.1% pullback from the high", "closed from chat",
           "kill: emergency stop requested from chat by telegram:1 (exchange maintenance)", "signal exit")
T_END = datetime(2024, 5, 1, 13, 45, tzinfo=UTC)


def _trades() -> list[TradeView]:
    out = []
    for i in range(50):
        pair, qty, entry, _mark = POSITIONS[i % len(POSITIONS)]
        e = Decimal(entry)
        move = Decimal(((i * 7) % 11) - 5) / 100  # -5% .. +5%
        x = (e * (1 + move)).quantize(e)
        q = Decimal(qty)
        closed = T_END - timedelta(hours=5 * i + 1)
        cents = Decimal("0.01")
        out.append(TradeView(pair=pair, qty=q, entry_price=e, exit_price=x, pnl=(q * (x - e)).quantize(cents),
                             pnl_pct=(move * 100).quantize(cents), fees=(q * e / 1000).quantize(cents),
                             opened_at=closed - timedelta(hours=3), closed_at=closed,
                             exit_reason=REASONS[i % len(REASONS)]))
    return list(reversed(out))  # oldest first, as they were closed


class PhoneTrading(FakeTrading):
    """Five positions, fifty trades and a schedule (the plain fake has none of these)."""

    def __init__(self) -> None:
        super().__init__(pairs=PAIRS)
        for pair, qty, entry, mark in POSITIONS:
            self.open[pair] = make_position(pair, qty, entry, mark)
        self.closed.extend(_trades())

    async def schedule(self) -> tuple[list[JobView], list[JobRunSummary]]:  # type: ignore[override]
        jobs = [JobView("daily_report", "every day at 08:00", T_END + timedelta(hours=18)),
                JobView("weekly_report", "Mondays at 08:00", T_END + timedelta(days=5)),
                JobView("reconcile", "every 15 minutes", T_END + timedelta(minutes=15)),
                JobView("retention", "every day at 03:30", T_END + timedelta(hours=14))]
        runs = [JobRunSummary(name, T_END - timedelta(hours=h), status)
                for name, h, status in (("reconcile", 0, "finished"), ("daily_report", 6, "finished"),
                                        ("retention", 10, "failed: database busy, retried"),
                                        ("weekly_report", 54, "finished"))]
        return jobs, runs


AUDIT_COMMANDS = (
    "/status", "/positions", "/pnl week", "/trades 5", "/balance",
    "/pause waiting for the FOMC minutes at 20:00 before adding any risk", "/resume", "/nosuchcommand",
    "/daily 30", "/audit 3", "/help close", "/close NOPE/USD", "/performance", "/whoami", "/health",
    "/trades 500", "/pnl month",
)


async def fill_audit_log(h: ChatHarness, rows: int = 50) -> None:
    """``rows`` commands, cycling through :data:`AUDIT_COMMANDS`: each leaves one audit row."""
    for i in range(rows):
        await h.send(AUDIT_COMMANDS[i % len(AUDIT_COMMANDS)])
