"""Stored candle files at size: ``tradectl data list`` and a resumed ``data download`` of one year of
1-minute candles (525,600 rows), for timing with ``/usr/bin/time -v`` (wall time and peak RSS).

    .venv/bin/python benchmarks/bench_candle_files.py make /tmp/big        # the file and a config
    /usr/bin/time -v .venv/bin/tradectl data list -c /tmp/big/tradectl.toml
    /usr/bin/time -v .venv/bin/python benchmarks/bench_candle_files.py resume /tmp/big

``resume`` serves the next 60 minutes from the fake Coinbase venue on loopback and runs the download
that continues the file (what a scheduled download does every hour), then prints what it stored.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.backtest.download import CoinbaseSource, candle_path, download  # noqa: E402
from tests.exchanges.fakes.coinbase import FakeCoinbase  # noqa: E402

T0 = datetime(2023, 1, 1, tzinfo=UTC)
ROWS = 525_600
MINUTE = timedelta(minutes=1)


def _row(i: int) -> tuple[str, str, str, str, str]:
    base = 20000 + (i % 1000) * 0.5
    return f"{base:.2f}", f"{base + 3:.2f}", f"{base - 2:.2f}", f"{base + 1:.2f}", f"{(i % 97) / 10 + 0.1:.4f}"


def make(folder: Path) -> None:
    data = folder / "data"
    path = candle_path(data, "coinbase", "BTC/USD", "1m")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.write("timestamp,open,high,low,close,volume\n")
        for i in range(ROWS):
            o, h, lo, c, v = _row(i)
            out.write(f"{T0 + MINUTE * i:%Y-%m-%dT%H:%M:%SZ},{o},{h},{lo},{c},{v}\n")
    (folder / "tradectl.toml").write_text(f'[service]\ndata_dir = "{data}"\n')
    print(f"{ROWS} rows -> {path} ({path.stat().st_size / 1e6:.1f} MB)")


async def resume(folder: Path) -> None:
    data = folder / "data"
    path = candle_path(data, "coinbase", "BTC/USD", "1m")
    with path.open("rb") as f:
        f.seek(-200, 2)
        last = datetime.fromisoformat(f.read().decode().strip().splitlines()[-1].split(",")[0].replace("Z", "+00:00"))
    start = last + MINUTE
    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 60, [
            dict(zip(("open", "high", "low", "close", "volume"), _row(i), strict=True),
                 start=str(int((start + MINUTE * i).timestamp()))) for i in range(60)])
        source = CoinbaseSource(fake.rest_url)
        began = time.perf_counter()
        try:
            got = await download(source, data, "BTC/USD", "1m", now=start + MINUTE * 61)
        finally:
            await source.close()
    print(f"{got.added} new candles, {got.stored.rows} stored, in {time.perf_counter() - began:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("make", "resume"))
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    if args.what == "make":
        make(args.folder)
    else:
        asyncio.run(resume(args.folder))


if __name__ == "__main__":
    main()
