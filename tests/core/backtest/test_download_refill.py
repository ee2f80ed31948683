"""``tradectl data download`` asks again for the holes inside the requested range, a bounded number of times,
against the fake Coinbase and Kraken venues on loopback."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from core.app.cli import app
from core.backtest.candlefile import read_candles
from core.backtest.download import CoinbaseSource, KrakenSource, download
from core.backtest.refill import REFILL_TRIES
from tests.core.backtest.test_download import T0, coinbase_rows, kraken_rows
from tests.exchanges.fakes.coinbase import FakeCoinbase
from tests.exchanges.fakes.kraken import FakeKraken

HOUR = timedelta(hours=1)
NOW = T0 + HOUR * 2000
CANDLES = "GET /market/products/{product_id}/candles"


def _starts(fake: FakeCoinbase) -> list[int]:
    return [int(q["query"]["start"]) for name, q in fake.calls if name == CANDLES]


def _epoch(hours: int) -> int:
    return int((T0 + HOUR * hours).timestamp())


async def test_a_hole_the_venue_fills_later_is_refilled_by_a_download_over_its_range(tmp_path: Path) -> None:
    async with FakeCoinbase() as fake:
        # the venue sends page two short (an empty stretch mid-range) the first time
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(800), skip=set(range(400, 420)) | {600}))
        source = CoinbaseSource(fake.rest_url)
        try:
            first = await download(source, tmp_path, "BTC/USD", "1h", since=T0, until=T0 + HOUR * 800, now=NOW)
            assert (first.stored.gaps.count, first.stored.gaps.missing) == (2, 21)
            fake.add_candles("BTC/USD", 3600, coinbase_rows(range(400, 420)))  # the venue has them now
            fake.calls.clear()
            again = await download(source, tmp_path, "BTC/USD", "1h", since=T0, until=T0 + HOUR * 800, now=NOW)
        finally:
            await source.close()
    # one call covers both holes (they lie within one page), nothing else of the stored range is asked again
    assert _starts(fake) == [_epoch(400)]
    assert again.added == 20 and again.stored.rows == 799
    assert (again.stored.gaps.count, again.stored.gaps.missing) == (1, 1)
    assert again.refill is not None and again.refill.refilled == 20
    lines = again.refill.lines()
    assert lines[0].startswith("refill: asked coinbase again for 2 gap(s), 21 candle(s), the first from 2024-01-17 "
                               "16:00 UTC: 20 candle(s) refilled"), lines
    assert "still missing 1 gap(s), 1 candle(s), the first from 2024-01-26 00:00 UTC" in lines[1], lines
    candles, _ = read_candles(again.stored.path, "BTC/USD", 3600)  # in order, once each
    assert [c.ts for c in candles] == [T0 + HOUR * i for i in range(800) if i != 600]


async def test_a_hole_the_venue_never_fills_is_asked_again_a_bounded_number_of_times(tmp_path: Path) -> None:
    runner = CliRunner()
    config = tmp_path / "c.toml"
    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(300), skip=set(range(100, 110))))  # an outage
        config.write_text(f'[service]\ndata_dir = "{tmp_path}"\n[coinbase]\nrest_url = "{fake.rest_url}"\n')

        async def run() -> str:
            fake.calls.clear()
            got = await asyncio.to_thread(runner.invoke, app, [
                "data", "download", "--venue", "coinbase", "--pair", "BTC/USD", "--since", "2024-01-01",
                "--until", "2024-01-13T12:00", "--config", str(config), "--quiet"])
            assert got.exit_code == 0, got.output  # a hole the venue has no candles for never fails the run
            return got.output

        first = await run()
        assert "299 new candles" not in first and "290 new candles" in first and "refill" not in first
        outputs = []
        for _ in range(REFILL_TRIES):
            outputs.append(await run())
            assert _starts(fake) == [_epoch(100)]  # the hole alone
        settled = await run()
        assert _starts(fake) == []  # not asked again
        later = await run()
        assert _starts(fake) == []
    assert "refill: asked coinbase again for 1 gap(s), 10 candle(s), the first from 2024-01-05 04:00 UTC: " \
           "0 candle(s) refilled" in outputs[0]
    assert "the next download over them asks again" in outputs[0]
    assert f"the venue had none when asked again {REFILL_TRIES} times, so they are not asked for again" in outputs[-1]
    for out in (settled, later):
        assert "0 new candles" in out and "gaps: 1 (10 candles missing)" in out
        assert "refill: not asked again: 1 gap(s), 10 candle(s), the first from 2024-01-05 04:00 UTC; " \
               f"the venue had none when asked again {REFILL_TRIES} times" in out, out


async def test_a_resume_without_since_only_continues_after_the_file(tmp_path: Path) -> None:
    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(300), skip={50}))
        source = CoinbaseSource(fake.rest_url)
        try:
            await download(source, tmp_path, "BTC/USD", "1h", since=T0, until=T0 + HOUR * 200, now=NOW)
            fake.calls.clear()
            later = await download(source, tmp_path, "BTC/USD", "1h", until=T0 + HOUR * 300, now=NOW)
        finally:
            await source.close()
    assert _starts(fake) == [_epoch(200)] and later.refill is None and later.stored.gaps.count == 1


async def test_kraken_refills_a_hole_within_its_last_720_candles(tmp_path: Path) -> None:
    async with FakeKraken() as fake:
        fake.add_candles("BTC/USD", 60, [r for r in kraken_rows(range(500)) if not 200 <= int(
            (r[0] - T0.timestamp()) // 3600) < 205])
        source = KrakenSource(fake.rest_url)
        try:
            first = await download(source, tmp_path, "BTC/USD", "1h", since=T0, now=T0 + HOUR * 500)
            fake.add_candles("BTC/USD", 60, kraken_rows(range(200, 205)))
            again = await download(source, tmp_path, "BTC/USD", "1h", since=T0, now=T0 + HOUR * 500)
        finally:
            await source.close()
    assert (first.stored.gaps.count, first.stored.gaps.missing) == (1, 5)
    assert again.added == 5 and again.stored.gaps.count == 0 and again.stored.rows == 499
    assert again.refill is not None and again.refill.refilled == 5
    candles, _ = read_candles(again.stored.path, "BTC/USD", 3600)
    assert [c.ts for c in candles] == [T0 + HOUR * i for i in range(499)]
