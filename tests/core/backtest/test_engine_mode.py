"""Engine mode as a user meets it: breakers pause and resume, auto mode falls back, progress shows."""

from __future__ import annotations

import asyncio
import io
from decimal import Decimal

import pytest

from core.backtest.api import run_backtest
from core.backtest.data import Bars
from core.backtest.fast import run_fast
from core.backtest.model import RunSpec
from core.backtest.progress import Progress
from core.backtest.runner import run_engine
from tests.core.backtest.conftest import REFERENCE_SLICE, cut, make_settings

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("resume", ["next_day", "never"])
def test_a_breaker_pauses_entries_and_the_next_day_resumes_them(bundled: Bars, resume: str) -> None:
    bars = cut(bundled, REFERENCE_SLICE[0], REFERENCE_SLICE[0] + 150)
    settings = make_settings("sma_cross", {"fast": 3, "slow": 8}, risk={"daily_loss_limit": "0.001"},
                             paper={"starting_balances": {"USD": "100000"}})
    spec = RunSpec(sizing="fixed", qty=Decimal(1), resume_after_pause=resume)  # type: ignore[arg-type]
    result = asyncio.run(run_engine(settings, bars, spec))
    assert result.pauses, "a 0.1% daily loss limit must trip on the first losing day"
    first = result.pauses[0]
    assert "daily loss" in first.reason
    if resume == "never":
        assert len(result.pauses) == 1 and first.resumed_at is None
        assert all(t.entry_time < first.at for t in result.trades)
    else:
        assert first.resumed_at is not None and first.resumed_at.date() > first.at.date()
        assert any(t.entry_time > first.resumed_at for t in result.trades)


def test_auto_mode_reruns_in_the_engine_when_fast_mode_is_not_exact(bundled: Bars) -> None:
    # 0.2% of each candle's volume: the entry of 2018-08-05 08:00 takes six candles, and an exit
    # signal arrives after its first fill, which only the engine reproduces.
    bars = cut(bundled, 9560, 9620)
    settings = make_settings("sma_cross", {"fast": 5, "slow": 12}, paper={"volume_share": "0.002"})
    spec = RunSpec(sizing="fraction", fraction=Decimal("0.95"))
    fast = run_fast(settings, bars, spec)
    assert not fast.exact and "entry order was still filling" in fast.notes[0]
    outcome = run_backtest(settings, bars, spec, "auto", progress=False)
    assert outcome.result.mode == "engine"
    assert outcome.mode_reason.startswith("fast mode met a case it does not reproduce exactly")


def test_progress_line_only_when_asked() -> None:
    quiet = io.StringIO()
    Progress(100, stream=quiet).update(50)  # a StringIO is not a terminal
    assert quiet.getvalue() == ""
    shown = io.StringIO()
    bar = Progress(100, "backtest", enabled=True, stream=shown)
    bar.update(100)
    bar.close()
    assert shown.getvalue().startswith("\rbacktest [") and "100/100 bars" in shown.getvalue()
    assert shown.getvalue().endswith("\n")


def test_the_progress_line_fits_a_narrow_terminal() -> None:
    """A line wider than the terminal wraps, and each redraw then lands below the last one."""
    for columns in (20, 32, 60, 200):
        out = io.StringIO()
        bar = Progress(20_083, "backtest", enabled=True, stream=out, columns=columns)
        for done in (0, 5_000, 20_083):
            bar._last_draw = 0.0  # draw every update, not ten a second
            bar.update(done)
        bar.close()
        lines = [part for part in out.getvalue().replace("\n", "").split("\r") if part]
        assert lines and all(len(line) < columns for line in lines), (columns, lines)
        assert all("eta" in line for line in lines)
    wide = Progress(10, "backtest", enabled=True, stream=io.StringIO(), columns=200)._line(0.5, 5, 100.0, 0.05)
    assert "5/10 bars" in wide and "[" + "#" * 15 + "-" * 15 + "]" in wide
