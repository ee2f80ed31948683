"""``tradectl backtest`` and ``tradectl tune`` as a user runs them, on the bundled candles."""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from core.app.backtest_cli import register
from core.app.tune_cli import register as register_tune
from core.backtest.report import CSV_COLUMNS

runner = CliRunner()
app = typer.Typer()
app.callback()(lambda: None)  # a group, so the command is named as in tradectl
register(app)
register_tune(app)

RANGE = ["--from", "2019-01-01", "--to", "2019-03-01"]
PLAIN = ["--sizing", "fixed", "--qty", "1", "--fee", "0.001", "--slippage-bps", "0", "--impact-bps", "0",
         "--cash", "1000000"]
CONFIG = """# my settings -- hand-written, with comments that must survive
[strategies]
enabled = ["sma_cross"]  # only the reference strategy

[strategies.params.sma_cross]
fast = 10
slow = 30
"""


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("TRADECTL_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)


def test_backtest_prints_stats_and_writes_csv_and_chart(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = runner.invoke(app, ["backtest", "--pair", "BTC/USD", "--timeframe", "1h", *RANGE, "--strategy", "sma_cross",
                              *PLAIN, "--out", str(out), "--quiet"])
    assert run.exit_code == 0, run.output
    assert "mode: fast" in run.output
    for label in ("return", "trades", "win rate", "profit factor", "expectancy", "max drawdown", "sharpe",
                  "fees paid", "exposure"):
        assert f"{label:>14}" in run.output
    (trades_csv,) = out.glob("BTC-USD_1h_20190101-20190301_sma_cross_trades.csv")
    rows = list(csv.reader(trades_csv.open()))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) > 20 and all(r[0] == "BTC/USD" for r in rows[1:])
    assert rows[1][1].startswith("2019-01-") and rows[1][3] == "1"
    (png,) = out.glob("*_equity.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_default_risk_sizing_runs_the_engine(tmp_path: Path) -> None:
    run = runner.invoke(app, ["backtest", "--from", "2019-01-01", "--to", "2019-01-06", "--strategy", "sma_cross",
                              "--param", "sma_cross.fast=3", "--param", "sma_cross.slow=8",
                              "--out", str(tmp_path), "-q"])
    assert run.exit_code == 0, run.output
    assert "mode: engine (fast mode cannot reproduce this configuration: sizing 'risk' needs the engine" in run.output
    assert "120 candles" in run.output


@pytest.mark.slow
def test_full_scan_runs_the_strategies_on_every_candle_with_the_same_trades(tmp_path: Path) -> None:
    """--full-scan is the check on engine mode's shortcut: the strategies run on every candle, and the trades
    are those of the run that skipped the quiet ones."""
    trades = []
    for extra in ([], ["--full-scan"]):
        out = tmp_path / ("full" if extra else "skipping")
        run = runner.invoke(app, ["backtest", "--from", "2019-01-01", "--to", "2019-01-21", "--strategy", "sma_cross",
                                  "--param", "sma_cross.fast=3", "--param", "sma_cross.slow=8", "--mode", "engine",
                                  *extra, "--out", str(out), "-q"])
        assert run.exit_code == 0, run.output
        assert ("every candle scanned (--full-scan)" in run.output) == bool(extra)
        (trades_csv,) = out.glob("*_trades.csv")
        trades.append(trades_csv.read_text())
    assert trades[0] == trades[1] and len(trades[0].splitlines()) > 3


def test_fast_mode_refused_where_it_would_not_be_exact() -> None:
    run = runner.invoke(app, ["backtest", *RANGE, "--mode", "fast", "-q"])
    assert run.exit_code == 2
    assert "fast mode cannot reproduce the engine here: sizing 'risk'" in run.output


def test_bad_dates_and_params_are_usage_errors() -> None:
    assert runner.invoke(app, ["backtest", "--from", "yesterday"]).exit_code == 2
    assert runner.invoke(app, ["backtest", "--param", "fast=3"]).exit_code == 2


def test_tune_writes_the_best_set_to_the_overlay_and_never_the_config(tmp_path: Path) -> None:
    config = tmp_path / "tradectl.toml"
    config.write_text(CONFIG)
    overlay = tmp_path / "data" / "tuned.toml"
    args = ["tune", "--config", str(config), *RANGE, *PLAIN, "--grid", "sma_cross.fast=5,10,20",
            "--grid", "sma_cross.slow=12,30", "--metric", "return", "--min-trades", "1", "--output", str(overlay)]
    run = runner.invoke(app, args)
    assert run.exit_code == 0, run.output
    assert config.read_text() == CONFIG
    assert "6 sets tried, 1 skipped" in run.output  # fast=20 with slow=12 is refused by the strategy
    best_line = next(line for line in run.output.splitlines() if line.startswith("  1  "))
    tuned = tomllib.loads(overlay.read_text())
    assert set(tuned) == {"strategies"}
    params = tuned["strategies"]["params"]["sma_cross"]
    assert f"fast={params['fast']}, slow={params['slow']}" in best_line
    assert "Do not edit by hand" in overlay.read_text()
    again = runner.invoke(app, args)
    # same grid, same data: same ranking (a new study each run; only its name in the first line differs)
    assert again.output.splitlines()[1:] == run.output.splitlines()[1:]


def test_tune_sampling_is_seeded(tmp_path: Path) -> None:
    args = ["tune", *RANGE, *PLAIN, "--grid", "sma_cross.fast=3,5,8,10", "--grid", "sma_cross.slow=20,30,40",
            "--samples", "4", "--min-trades", "1", "--dry-run"]
    first = runner.invoke(app, [*args, "--seed", "7"])
    assert first.exit_code == 0, first.output
    assert "4 sets tried" in first.output
    assert runner.invoke(app, [*args, "--seed", "7"]).output.splitlines()[1:] == first.output.splitlines()[1:]
    assert not (tmp_path / "data" / "tuned.toml").exists()


def test_tune_refuses_to_write_into_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "tradectl.toml"
    config.write_text(CONFIG)
    run = runner.invoke(app, ["tune", "--config", str(config), *RANGE, *PLAIN, "--grid", "sma_cross.fast=5,10",
                              "--output", str(config)])
    assert run.exit_code == 2
    assert "refusing to write tuning results to your config file" in run.output
    assert config.read_text() == CONFIG


def _trade_rows(out: Path) -> list[list[str]]:
    (trades_csv,) = out.glob("*_trades.csv")
    return list(csv.reader(trades_csv.open()))[1:]


def test_warmup_gives_history_before_from_and_trades_as_a_run_going_all_along(tmp_path: Path) -> None:
    """--warmup N: the N candles before --from are history only. The trades are those of a run started N
    candles earlier that entered from --from on (that run is flat at --from on these candles); a cold run
    over the window alone trades differently (its slow SMA needs 30 candles first)."""
    base = ["backtest", "--timeframe", "1h", "--strategy", "sma_cross", *PLAIN, "--quiet"]
    warm_out, cold_out, long_out = tmp_path / "warm", tmp_path / "cold", tmp_path / "long"
    warm = runner.invoke(app, [*base, *RANGE, "--warmup", "60", "--out", str(warm_out)])
    assert warm.exit_code == 0, warm.output
    assert "warm-up: 60 candles, 2018-12-29 12:00 -> 2019-01-01 00:00 UTC, history only" in warm.output
    assert "1416 candles" in warm.output  # January and February 2019: the warm-up is not counted
    cold = runner.invoke(app, [*base, *RANGE, "--out", str(cold_out)])
    longer = runner.invoke(app, [*base, "--from", "2018-12-29T12:00", "--to", "2019-03-01", "--out", str(long_out)])
    assert cold.exit_code == 0 and longer.exit_code == 0, cold.output + longer.output
    warm_rows = _trade_rows(warm_out)
    after_from = [r for r in _trade_rows(long_out) if r[1] >= "2019-01-01"]
    assert warm_rows and warm_rows == after_from  # (the long run holds no position across --from here)
    assert warm_rows != _trade_rows(cold_out)


def test_warmup_says_what_it_found_and_refuses_a_portfolio(tmp_path: Path) -> None:
    base = ["backtest", "--timeframe", "1h", "--strategy", "sma_cross", *PLAIN, "--quiet", "--out", str(tmp_path)]
    first = runner.invoke(app, [*base, "--from", "2017-01-01", "--to", "2018-02-01", "--warmup", "24"])
    assert first.exit_code == 0, first.output
    assert "a cold start" in first.output
    portfolio = runner.invoke(app, [*base, "--pair", "BTC/USD", "--pair", "ETH/USD", "--warmup", "24"])
    assert portfolio.exit_code == 2 and "--warmup applies to a backtest of one pair" in portfolio.output
    negative = runner.invoke(app, [*base, "--warmup", "-5"])
    assert negative.exit_code == 2
    everything = runner.invoke(app, [*base, "--from", "2019-01-01", "--to", "2019-01-02", "--warmup", "100000"])
    assert everything.exit_code == 0, everything.output
    assert "only" in everything.output and "of the 100000 asked for are in the data" in everything.output
