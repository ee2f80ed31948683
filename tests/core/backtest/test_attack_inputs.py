"""``tradectl backtest`` fed what users feed it by mistake, run as a real process: every refusal is one
line on stderr with a non-zero exit code, no traceback, and no trades CSV or chart left behind.

Also: prices far below a cent get a tick of their own decimals (a PEPE-like 0.00000075 was quoted on a
tick of 1), fast and engine mode agree on such a pair, and the printed statistics are those of the
trades CSV recomputed here by hand.
"""

from __future__ import annotations

import asyncio
import csv
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from core.backtest.data import Bars, synthetic, to_arrays
from core.backtest.fast import run_fast
from core.backtest.markets import price_decimals
from core.backtest.model import RunSpec
from core.backtest.runner import pair_rules, run_engine
from core.trading.accounting import price_q
from exchanges.base import Candle
from tests.core.backtest.conftest import make_settings
from tests.core.backtest.test_equivalence import assert_equivalent

ROOT = Path(__file__).resolve().parents[3]
HEADER = "timestamp,open,high,low,close,volume"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
FRACTION = RunSpec(sizing="fraction", fraction=Decimal("0.5"))


def tradectl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process, on a 32-column terminal."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith("TRADECTL_") or k == "DATABASE_URL")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="32")
    code = "import sys; from core.app.cli import main; sys.argv[0] = 'tradectl'; main()"
    return subprocess.run([sys.executable, "-c", code, "backtest", *args], env=env, cwd=tmp_path, text=True,
                          capture_output=True, timeout=300)


def tiny(n: int = 300, seed: int = 5, scale: float = 1e-10, pair: str = "PEPE/USDT") -> Bars:
    """A random walk near 7500 ticks of ``scale`` (``0.00000075``: ten decimals), with large volumes."""
    walk = synthetic(n, seed=seed, pair=pair, start_price=7500.0)
    a = walk.arrays

    def price(x: float) -> Decimal:
        return Decimal(round(x)) * Decimal(repr(scale))

    candles = tuple(Candle(pair=pair, timeframe_s=3600, ts=walk.time(i), open=price(a.open[i]),
                           high=price(a.high[i]), low=price(a.low[i]), close=price(a.close[i]),
                           volume=Decimal(round(float(a.volume[i]) * 1e9))) for i in range(n))
    return Bars(arrays=to_arrays(pair, 3600, candles), candles=candles, source="tiny walk")


def write(path: Path, bars: Bars) -> Path:
    assert bars.candles is not None
    path.write_text(HEADER + "\n" + "".join(
        f"{c.ts:%Y-%m-%dT%H:%M:%SZ},{c.open},{c.high},{c.low},{c.close},{c.volume}\n" for c in bars.candles))
    return path


def plain(path: Path, n: int = 80) -> Path:
    lines = []
    for i in range(n):
        c = 2500 + 40 * ((i // 6) % 5) + (i % 7)
        lines.append(f"{T0 + timedelta(hours=i):%Y-%m-%dT%H:%M:%SZ},{c - 1},{c + 3},{c - 3},{c},{10 + i}")
    path.write_text(HEADER + "\n" + "\n".join(lines) + "\n")
    return path


RUN = ("--pair", "BTC/USD", "--timeframe", "1h", "--strategy", "sma_cross", "--param", "sma_cross.fast=3",
       "--param", "sma_cross.slow=8", "--sizing", "fixed", "--qty", "0.1", "--mode", "fast", "-q")


def refused(run: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    """One line on stderr saying ``words``, nothing else, exit ``code``."""
    assert run.returncode == code, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr + run.stdout, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert words in run.stderr, run.stderr


def nothing_written(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


def test_prices_far_below_a_cent_are_quoted_on_their_own_decimals() -> None:
    assert price_decimals(np.array([0.00000075, 0.0000007512])) == 10
    assert price_decimals(np.array([0.000000000251])) == 12
    assert price_decimals(np.array([2505.56, 2500.0])) == 2
    bars = tiny()
    rules = pair_rules(make_settings("sma_cross"), bars)
    assert rules.rules.price_tick == Decimal("1E-10"), rules.describe()


def test_fast_and_engine_agree_on_a_pair_priced_in_fractions_of_a_satoshi() -> None:
    """SHIB/BTC-like: 0.00000000075 BTC, thirteen decimals; the tick used to be inferred as 1."""
    bars = tiny(scale=1e-13, pair="SHIB/BTC")
    settings = make_settings("sma_cross", {"fast": 5, "slow": 12}, paper={"starting_balances": {"BTC": "1"}})
    assert pair_rules(settings, bars).rules.price_tick == Decimal("1E-13")
    engine = asyncio.run(run_engine(settings, bars, FRACTION))
    fast = run_fast(settings, bars, FRACTION)
    assert_equivalent(fast, engine)
    assert len(engine.trades) >= 5
    assert Decimal("0.5") < engine.end_equity < Decimal("2")
    assert all(t.entry_price < Decimal("0.000000001") for t in engine.trades)


def test_a_pepe_like_file_backtests_at_its_own_prices(tmp_path: Path) -> None:
    path = write(tmp_path / "pepe.csv", tiny())
    run = tradectl(tmp_path, "--csv", str(path), "--pair", "PEPE/USDT", "--strategy", "sma_cross", "--param",
                   "sma_cross.fast=5", "--param", "sma_cross.slow=12", "--sizing", "fraction", "--fraction", "0.5",
                   "--cash", "1000", "--mode", "fast", "--out", "out", "-q")
    assert run.returncode == 0, run.stderr
    assert "price tick 0.0000000001 (inferred from the candles' prices)" in run.stdout
    end = re.search(r"equity  1,000\.00 USDT -> ([\d,.]+) USDT", run.stdout)
    assert end is not None, run.stdout
    assert float(end.group(1).replace(",", "")) > 500  # bought at 1 a unit, it was 0.00
    (trades,) = (tmp_path / "out").glob("*_trades.csv")
    assert all(Decimal(r["entry_price"]) < Decimal("0.000001") for r in csv.DictReader(trades.open()))


def test_a_tick_that_cannot_quote_the_prices_is_refused(tmp_path: Path) -> None:
    path = plain(tmp_path / "btc.csv")
    fine = tradectl(tmp_path, "--csv", str(path), *RUN, "--tick", "0.000000000000000001", "--out", "out")
    refused(fine, 2, "price tick 0.000000000000000001 (set) is too fine for prices up to 2669")
    coarse = tradectl(tmp_path, "--csv", str(path), *RUN, "--tick", "5000", "--out", "out")
    refused(coarse, 2, "price tick 5000 (set) is larger than the candles' lowest price 2497")
    assert nothing_written(tmp_path / "out")


def test_prices_and_volumes_past_what_a_float_holds_are_refused(tmp_path: Path) -> None:
    for name, row in (("huge", "{t},1e400,1e400,1e400,1e400,5"), ("tiny", "{t},1e-400,1e-400,1e-400,1e-400,5"),
                      ("volume", "{t},2500,2500,2500,2500,1e400")):
        path = plain(tmp_path / f"{name}.csv")
        lines = path.read_text().splitlines()
        lines[30] = row.format(t=lines[30].split(",")[0])
        path.write_text("\n".join(lines) + "\n")
        run = tradectl(tmp_path, "--csv", str(path), *RUN, "--out", "out")
        refused(run, 2, f"{path}: the candle at 2024-01-02 05:00:00 UTC has ")
    assert nothing_written(tmp_path / "out")


def test_an_out_that_cannot_hold_the_results_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    path = plain(tmp_path / "btc.csv")
    (tmp_path / "a-file").write_text("x")
    refused(tradectl(tmp_path, "--csv", str(path), *RUN, "--out", "/dev/null"), 2, "--out /dev/null: not a directory")
    refused(tradectl(tmp_path, "--csv", str(path), *RUN, "--out", "a-file/sub"), 2, "a-file is not a directory")
    # the chart's name is taken by a directory: the trades CSV written before it must not stay
    out = tmp_path / "out"
    (out / "BTC-USD_1h_20240101-20240104_sma_cross_equity.png").mkdir(parents=True)
    run = tradectl(tmp_path, "--csv", str(path), *RUN, "--out", "out")
    refused(run, 1, f"cannot write the results to {Path('out')}")
    assert [p.name for p in out.iterdir()] == ["BTC-USD_1h_20240101-20240104_sma_cross_equity.png"]


def test_cash_and_dates_that_make_no_run_are_named(tmp_path: Path) -> None:
    path = plain(tmp_path / "btc.csv")
    for cash in ("0", "-100", "nan"):
        refused(tradectl(tmp_path, "--csv", str(path), *RUN, "--cash", cash, "--out", "out"), 2,
                f"--cash {cash}: starting cash must be a number above 0")
    refused(tradectl(tmp_path, "--csv", str(path), *RUN, "--cash", "1e30", "--out", "out"), 2,
            "starting equity 1,000,000,000,000,000,000,000,000,000,000 USD buys")
    refused(tradectl(tmp_path, "--csv", str(path), *RUN, "--from", "2024-01-03", "--to", "2024-01-02",
                     "--out", "out"), 2, "--from 2024-01-03 is not before --to 2024-01-02")
    assert nothing_written(tmp_path / "out")


def test_the_printed_statistics_are_those_of_the_trades_csv(tmp_path: Path) -> None:
    path = plain(tmp_path / "btc.csv", 200)
    run = tradectl(tmp_path, "--csv", str(path), *RUN, "--fee", "0.001", "--out", "out")
    assert run.returncode == 0, run.stderr
    (trades_csv,) = (tmp_path / "out").glob("*_trades.csv")
    trades = list(csv.DictReader(trades_csv.open()))
    closed = [t for t in trades if t["exit_reason"] != "open"]
    assert len(closed) >= 5
    pnl = [Decimal(t["pnl"]) for t in closed]
    marked = sum(Decimal(t["pnl"]) for t in trades)  # a position still open is marked at the last close
    for t in closed:  # each trade's own arithmetic
        qty, entry, exit_, fees = (Decimal(t[k]) for k in ("qty", "entry_price", "exit_price", "fees"))
        assert qty * (exit_ - entry) - fees == Decimal(t["pnl"])
        assert fees == (qty * entry * Decimal("0.001")).quantize(Decimal("1e-8")) + (
            qty * exit_ * Decimal("0.001")).quantize(Decimal("1e-8"))
    wins, losses = [p for p in pnl if p > 0], [p for p in pnl if p <= 0]
    printed = dict(re.findall(r"^ +([a-z ]+?)  (.+)$", run.stdout, re.M))
    assert printed["equity"] == f"10,000.00 USD -> {10000 + marked:,.2f} USD"
    still_open = len(trades) - len(closed)
    assert printed["trades"] == f"{len(closed)} closed" + (f", {still_open} open at the end" if still_open else "")
    assert printed["win rate"] == f"{len(wins) / len(closed) * 100:.1f}%"
    assert printed["profit factor"] == f"{sum(wins) / -sum(losses):.2f}"
    assert printed["expectancy"] == f"{sum(pnl) / len(closed):,.2f} USD per trade"
    assert printed["fees paid"] == f"{sum(Decimal(t['fees']) for t in trades):,.2f} USD"


def test_a_file_of_candles_the_engine_refuses_all_is_one_line(tmp_path: Path) -> None:
    """Candles stamped at half past the hour (a local time with a :30 offset written without it)."""
    path = plain(tmp_path / "btc.csv")
    lines = path.read_text().splitlines()
    shifted = [lines[0], *(f"{datetime.fromisoformat(ln.split(',')[0]) + timedelta(minutes=30):%Y-%m-%dT%H:%M:%SZ},"
                           + ln.split(",", 1)[1] for ln in lines[1:])]
    path.write_text("\n".join(shifted) + "\n")
    refused(tradectl(tmp_path, "--csv", str(path), *RUN, "--out", "out"), 2,
            "0 of 80 candles left once those the engine refuses are left out (misaligned timestamp 80); a timestamp "
            "must be a candle's open time on the 3600s timeframe, not 2024-01-01 00:30:00 UTC")
    path.write_text("\n".join([shifted[0], lines[1], *shifted[2:]]) + "\n")  # one candle left: no run either
    refused(tradectl(tmp_path, "--csv", str(path), *RUN, "--out", "out"), 2, "1 of 80 candles left")
    assert nothing_written(tmp_path / "out")


def test_the_bundled_btc_usd_candles_are_not_backtested_as_another_pair(tmp_path: Path) -> None:
    """ETH/BTC on BTC/USD prices was a run of ETH at 3,700 BTC; now it asks for the pair's own candles."""
    for pair in ("ETH/BTC", "ETH/USD"):
        run = tradectl(tmp_path, "--pair", pair, "--strategy", "sma_cross", "--sizing", "fixed", "--qty", "0.01",
                       "--cash", "1", "--mode", "fast", "--from", "2019-01-01", "--to", "2019-01-08", "--out", "out",
                       "-q")
        refused(run, 2, f"no candles for {pair}: the bundled file holds BTC/USD only")
    assert nothing_written(tmp_path / "out")
    ok = tradectl(tmp_path, "--pair", "BTC/USD", "--strategy", "sma_cross", "--sizing", "fixed", "--qty", "0.01",
                  "--mode", "fast", "--from", "2019-01-01", "--to", "2019-01-08", "--out", "out", "-q")
    assert ok.returncode == 0 and "from the bundled file coinbase_BTC-USD_1h.csv" in ok.stdout, ok.stderr


def test_a_warmup_longer_than_time_before_from_takes_what_the_file_holds(tmp_path: Path) -> None:
    path = plain(tmp_path / "btc.csv")
    run = tradectl(tmp_path, "--csv", str(path), *RUN, "--from", "2024-01-02", "--warmup", "100000000000",
                   "--out", "out")
    assert run.returncode == 0, run.stderr
    assert "warm-up: 24 candles, 2024-01-01 00:00 -> 2024-01-02 00:00 UTC, history only (only 24 of the " \
           "100000000000 asked for are in the data)" in run.stdout
    early = tradectl(tmp_path, "--csv", str(path), *RUN, "--from", "0001-01-01", "--warmup", "5", "--out", "out")
    assert early.returncode == 0 and "a cold start" in early.stdout, early.stderr


def test_lenient_dropping_every_row_says_so(tmp_path: Path) -> None:
    path = plain(tmp_path / "btc.csv", 10)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], *(ln.rsplit(",", 2)[0] + ",nan,5" for ln in lines[1:])]) + "\n")
    run = tradectl(tmp_path, "--csv", str(path), *RUN, "--lenient", "--out", "out")
    refused(run, 2, "fewer than two candles between the start and the end in "
                    f"{path}; 10 rows were dropped (--lenient): non-finite value 10")


def test_fast_mode_matches_backtesting_py_on_prices_far_below_a_cent() -> None:
    """backtesting.py, independent of our tick and rounding, fills a PEPE-like pair at the same prices."""
    import warnings

    import pandas as pd
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    def sma(values: np.ndarray, n: int) -> np.ndarray:
        return pd.Series(values).rolling(n).mean().to_numpy()

    class Cross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, 5)
            self.slow = self.I(sma, self.data.Close, 12)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                if not self.position:
                    self.buy(size=1_000_000_000)
            elif crossover(self.slow, self.fast):
                self.position.close()

    bars = tiny(600, seed=9)
    a = bars.arrays
    frame = pd.DataFrame({"Open": a.open, "High": a.high, "Low": a.low, "Close": a.close, "Volume": a.volume},
                         index=pd.to_datetime(a.ts, unit="s", utc=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(frame, Cross, cash=1_000_000, commission=0.001, exclusive_orders=True,
                         trade_on_close=False, finalize_trades=True).run()
    # a trade's average prices keep 8 significant digits (core.trading.accounting.price_q); PnL and fees are exact
    theirs = [(int(r.EntryBar), int(r.ExitBar), Decimal(int(r.Size)), price_q(Decimal(repr(float(r.EntryPrice)))),
               price_q(Decimal(repr(float(r.ExitPrice))))) for r in stats._trades.itertuples()]
    their_pnl = [float(r.PnL) for r in stats._trades.itertuples()]
    settings = make_settings("sma_cross", {"fast": 5, "slow": 12},
                             paper={"slippage_bps": "0", "impact_bps": "0", "taker_fee": "0.001", "maker_fee": "0.001",
                                    "volume_share": "1", "starting_balances": {"USDT": "1000000"}},
                             risk={"cooldown_after_loss_s": 0})
    ours = run_fast(settings, bars, RunSpec(sizing="fixed", qty=Decimal(1_000_000_000)))
    closed = [t.key() for t in ours.trades if t.closed]
    assert len(closed) > 10
    assert closed == theirs[:len(closed)]
    assert [float(t.pnl) for t in ours.trades if t.closed] == pytest.approx(their_pnl[:len(closed)], abs=1e-6)
    assert all(k[3] < Decimal("0.000001") for k in closed)


def test_a_window_without_candles_says_where_the_file_is(tmp_path: Path) -> None:
    path = plain(tmp_path / "btc.csv")
    run = tradectl(tmp_path, "--csv", str(path), *RUN, "--from", "2030-01-01", "--out", "out")
    refused(run, 2, f"fewer than two candles between 2030-01-01 00:00:00+00:00 and the end in {path}; its candles "
                    "run from 2024-01-01 00:00 to 2024-01-04 07:00 UTC")
    assert nothing_written(tmp_path / "out")


def test_an_external_strategy_is_named_in_the_output_and_its_file_names(tmp_path: Path) -> None:
    """Run alone it left the names empty (``strategies: ;``, ``..._20240104__trades.csv``); its free-text
    name goes into the file name with anything but letters, digits, ``.``, ``_``, ``-`` made ``-``."""
    example = (ROOT / "strategies" / "examples" / "dip_buyer.py").read_text()
    (tmp_path / "dip.py").write_text(example.replace('NAME = "dip_buyer"', 'NAME = "desk/dip buyer"'))
    pin = subprocess.run([sys.executable, "-c", "import sys; from core.app.cli import main; main()", "strategy",
                          "hash", "dip.py"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=True).stdout
    (tmp_path / "tradectl.toml").write_text("[strategies]\nenabled = []\n\n"
                                            + pin.replace('name = "dip_buyer"', 'name = "desk/dip buyer"'))
    path = plain(tmp_path / "btc.csv")
    run = tradectl(tmp_path, "--csv", str(path), "--pair", "BTC/USD", "--sizing", "fixed", "--qty", "0.1",
                   "--out", "out", "-q")
    assert run.returncode == 0, run.stderr
    assert "BTC/USD 1h, strategies: desk-dip-buyer; sizing fixed" in run.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "BTC-USD_1h_20240101-20240104_desk-dip-buyer_equity.png",
        "BTC-USD_1h_20240101-20240104_desk-dip-buyer_trades.csv"]
