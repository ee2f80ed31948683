"""A download SIGKILLed at random moments while it writes the candle file (every page a write, candles
only extending the file, and holes refilled in its middle): what is left always reads with the strict
reader, holds each candle once, in order, exactly as the venue sent it, and its summary is never stale."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.backtest import candlestore
from core.backtest.candlefile import read_candles
from tests.core.backtest.test_download import T0, _price, coinbase_rows
from tests.exchanges.fakes.coinbase import FakeCoinbase

HOUR = timedelta(hours=1)
TOTAL = 6000
HOLES = set(range(1000, 1400)) | set(range(3000, 3010))
ROOT = Path(__file__).resolve().parents[3]

RUN = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from core.backtest.download import CoinbaseSource, download

async def main() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    source = CoinbaseSource(sys.argv[1], rate_per_s=10000)
    try:
        await download(source, Path(sys.argv[2]), "BTC/USD", "1h", since=t0, until=t0 + timedelta(hours=6000),
                       now=t0 + timedelta(hours=7000), checkpoint_pages=1)
    finally:
        await source.close()

asyncio.run(main())
"""


class SlowCoinbase(FakeCoinbase):
    """50 ms a candle call: a download of 18 calls is under way for about a second, to be killed in."""

    async def _candles(self, request: Any, body: Any) -> Any:
        await asyncio.sleep(0.05)
        return await super()._candles(request, body)


def _check(path: Path) -> int:
    if not path.exists():
        return 0
    candles, _ = read_candles(path, "BTC/USD", 3600)  # strict: a torn or repeated row is an error
    hours = [int((c.ts - T0) / HOUR) for c in candles]
    assert hours == sorted(set(hours)), "a candle twice or out of order"
    for h, c in zip(hours, candles, strict=True):
        assert (str(c.open), str(c.close), str(c.volume)) == (_price(h), _price(h + 1), "1.5"), h
    kept = candlestore.summary_path(path)
    if kept.exists():
        raw = json.loads(kept.read_text())
        if raw["sha256"] == candlestore.load(path, "BTC/USD", 3600).digest:  # type: ignore[union-attr]
            assert raw["rows"] == len(candles)
    return len(candles)


@pytest.mark.slow
async def test_a_download_killed_at_any_moment_leaves_a_file_that_reads(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "candles" / "coinbase" / "BTC-USD_1h.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    async with SlowCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(TOTAL), skip=HOLES))
        kills = 0
        for round_ in range(10):
            if round_ == 1:
                fake.add_candles("BTC/USD", 3600, coinbase_rows(sorted(HOLES)))  # the venue has them now
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", RUN, fake.rest_url, str(tmp_path),
                                                        env=env)
            try:
                await asyncio.wait_for(proc.wait(), rng.uniform(0.5, 2.5))
            except TimeoutError:
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                kills += 1
            _check(path)
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", RUN, fake.rest_url, str(tmp_path), env=env)
        assert await proc.wait() == 0
    assert kills >= 1
    assert _check(path) == TOTAL  # the holes were refilled too
