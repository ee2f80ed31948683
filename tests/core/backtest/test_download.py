"""``tradectl data download``/``list`` against the fake Kraken and Coinbase venues on loopback."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from core.app.cli import app
from core.backtest.candlefile import read_candles
from core.backtest.download import KRAKEN_LIMIT, CoinbaseSource, KrakenSource, download, find_candles
from tests.exchanges.fakes.coinbase import FakeCoinbase
from tests.exchanges.fakes.kraken import FakeKraken

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
NOW = T0 + HOUR * 2000  # long after every candle the tests use: all are closed


def _price(i: int) -> str:
    return f"{100 + (i % 17) * 0.25:.2f}"


def coinbase_rows(hours: range, skip: set[int] = frozenset()) -> list[dict[str, str]]:  # type: ignore[assignment]
    return [{"start": str(int((T0 + HOUR * i).timestamp())), "low": "99.00", "high": "106.00", "open": _price(i),
             "close": _price(i + 1), "volume": "1.5"} for i in hours if i not in skip]


def kraken_rows(hours: range) -> list[list[Any]]:
    return [[int((T0 + HOUR * i).timestamp()), _price(i), "106.00", "99.00", _price(i + 1), "100.0", "1.5", 3]
            for i in hours]


async def test_coinbase_pages_resumes_and_reports_a_gap(tmp_path: Path) -> None:
    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(800), skip={400, 401, 402}))
        source = CoinbaseSource(fake.rest_url)
        try:
            first = await download(source, tmp_path, "BTC/USD", "1h", since=T0, until=T0 + HOUR * 800, now=NOW)
            pages = fake.count("GET /market/products/{product_id}/candles")
            assert pages == 3  # 800 candles at 350 a call
            assert all("Authorization" not in str(c) for c in fake.calls)  # public endpoint, no key
            stored = first.stored
            assert (first.added, stored.rows) == (797, 797)
            assert (stored.first, stored.last) == (T0, T0 + HOUR * 799)
            assert (stored.gaps.count, stored.gaps.missing) == (1, 3)
            assert stored.gaps.first == (T0 + HOUR * 399, 3)
            assert "3 missing from 2024-01-17 16:00" in stored.gaps.describe(3600)

            fake.add_candles("BTC/USD", 3600, coinbase_rows(range(800, 900)))
            fake.calls.clear()
            second = await download(source, tmp_path, "BTC/USD", "1h", now=T0 + HOUR * 900)
        finally:
            await source.close()
    starts = [int(q["query"]["start"]) for name, q in fake.calls if name.endswith("/candles")]
    assert starts == [int((T0 + HOUR * 800).timestamp())]  # continued after the last stored candle
    assert (second.added, second.stored.rows, second.stored.last) == (100, 897, T0 + HOUR * 899)
    candles, report = read_candles(stored.path, "BTC/USD", 3600)  # the strict reader takes the file as is
    assert len(candles) == 897 and report.gaps == 1 and str(candles[0].open) == "100.00"


class Interrupted(Exception):
    pass


async def test_an_interrupted_download_keeps_its_checkpoints_and_the_next_run_continues(tmp_path: Path) -> None:
    def stop_at_700(count: int, _newest: datetime) -> None:
        if count >= 700:
            raise Interrupted  # Ctrl-C or a dropped connection while the second page arrives

    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(800)))
        source = CoinbaseSource(fake.rest_url)
        try:
            with pytest.raises(Interrupted):
                await download(source, tmp_path, "BTC/USD", "1h", since=T0, now=NOW, progress=stop_at_700,
                               checkpoint_pages=1)
            kept, _ = read_candles(tmp_path / "candles" / "coinbase" / "BTC-USD_1h.csv", "BTC/USD", 3600)
            assert len(kept) == 700 and kept[-1].ts == T0 + HOUR * 699  # both pages: the one in hand is kept too
            fake.calls.clear()
            done = await download(source, tmp_path, "BTC/USD", "1h", until=T0 + HOUR * 800, now=NOW)
        finally:
            await source.close()
    starts = [int(q["query"]["start"]) for name, q in fake.calls if name.endswith("/candles")]
    assert starts[0] == int((T0 + HOUR * 700).timestamp())
    assert (done.added, done.stored.rows, done.stored.gaps.count) == (100, 800, 0)


async def test_kraken_gives_only_its_last_720_candles_and_says_so(tmp_path: Path) -> None:
    async with FakeKraken() as fake:
        fake.add_candles("BTC/USD", 60, kraken_rows(range(1000)))
        source = KrakenSource(fake.rest_url)
        try:
            first = await download(source, tmp_path, "BTC/USD", "1h", since=T0, now=T0 + HOUR * 1000)
            fake.add_candles("BTC/USD", 60, kraken_rows(range(1000, 1010)))
            second = await download(source, tmp_path, "BTC/USD", "1h", now=T0 + HOUR * 1010)
        finally:
            await source.close()
    # the fake, like Kraken, returns the newest 720 rows, the newest of them still running
    assert first.stored.rows == KRAKEN_LIMIT - 1 and first.stored.first == T0 + HOUR * 280
    assert any("only its most recent 720 candles" in n and "2024-01-12 16:00" in n for n in first.notes)
    assert second.added == 10 and second.stored.last == T0 + HOUR * 1008
    assert second.stored.gaps.count == 0 and not second.notes


async def test_cli_download_list_and_backtest_finds_the_file(tmp_path: Path) -> None:
    config = tmp_path / "tradectl.toml"
    runner = CliRunner()
    async with FakeCoinbase() as fake:
        fake.add_candles("ETH/USDT", 3600, coinbase_rows(range(300), skip={100}))
        config.write_text(f'[service]\ndata_dir = "{tmp_path / "data"}"\n[coinbase]\nrest_url = "{fake.rest_url}"\n'
                          f'[backtest]\noutput_dir = "{tmp_path / "out"}"\noverlay = "{tmp_path / "tuned.toml"}"\n')
        got = await asyncio.to_thread(runner.invoke, app, [
            "data", "download", "--venue", "coinbase", "--pair", "ETH/USDT", "--timeframe", "1h", "--since",
            "2024-01-01", "--until", "2024-01-13T12:00", "--config", str(config), "--quiet"])
    assert got.exit_code == 0, got.output
    assert "299 new candles" in got.output and "gaps: 1 (1 candles missing)" in got.output
    listed = runner.invoke(app, ["data", "list", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.startswith("coinbase"))
    assert row.split() == ["coinbase", "ETH/USDT", "1h", "2024-01-01", "00:00", "2024-01-13", "11:00", "299", "1", "1"]
    ran = runner.invoke(app, ["backtest", "--config", str(config), "--pair", "ETH/USDT", "--timeframe", "1h",
                              "--strategy", "sma_cross", "--param", "sma_cross.fast=5", "--param", "sma_cross.slow=20",
                              "--sizing", "fixed", "--qty", "1", "--cash", "10000", "--quiet"])
    assert ran.exit_code == 0, ran.output
    path = tmp_path / "data" / "candles" / "coinbase" / "ETH-USDT_1h.csv"
    assert f"candles: {path} (downloaded from coinbase)" in ran.output
    assert "299 rows" in ran.output
    assert find_candles(tmp_path / "data", "BTC/USD", "1h") is None


async def test_cli_refuses_bad_input_and_reports_a_venue_refusal(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["data", "download", "--venue", "binance", "--pair", "BTC/USD"])
    assert bad.exit_code == 2 and "kraken or coinbase" in bad.output
    bad = runner.invoke(app, ["data", "download", "--venue", "kraken", "--pair", "BTC/USD", "--timeframe", "2h"])
    assert bad.exit_code == 2 and "timeframe '2h'" in bad.output
    config = tmp_path / "c.toml"
    async with FakeKraken() as fake:
        config.write_text(f'[service]\ndata_dir = "{tmp_path}"\n[kraken]\nrest_url = "{fake.rest_url}"\n')
        down = await asyncio.to_thread(runner.invoke, app, ["data", "download", "--venue", "kraken", "--pair",
                                                            "FOO/BAR", "--config", str(config)])
    assert down.exit_code == 1 and down.output.startswith("kraken: "), down.output
    assert "FOO/BAR" in down.output and "Traceback" not in down.output and not (tmp_path / "candles").exists()
