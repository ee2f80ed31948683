"""A stored candle file's summary: ``data list`` and a resume read it instead of the candles, and never a
stale one; a resume that only adds candles after the file keeps its bytes as they are."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from core.app.cli import app
from core.backtest import candlestore
from core.backtest.candlefile import read_candles
from core.backtest.download import CoinbaseSource, download
from tests.core.backtest.test_download import T0, coinbase_rows
from tests.exchanges.fakes.coinbase import FakeCoinbase

HOUR = timedelta(hours=1)
NOW = T0 + HOUR * 2000


def _row(i: int) -> str:
    return f"{T0 + HOUR * i:%Y-%m-%dT%H:%M:%SZ},100.00,106.00,99.00,101.00,1.5\n"


def _listed(config: Path) -> list[str]:
    got = CliRunner().invoke(app, ["data", "list", "--config", str(config)])
    assert got.exit_code == 0, got.output
    return next(line for line in got.output.splitlines() if line.startswith("coinbase")).split()


def test_list_reads_the_summary_and_never_a_stale_one(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[service]\ndata_dir = "{tmp_path}"\n')
    path = tmp_path / "candles" / "coinbase" / "BTC-USD_1h.csv"
    path.parent.mkdir(parents=True)
    path.write_text("timestamp,open,high,low,close,volume\n" + "".join(_row(i) for i in range(100)))
    assert _listed(config)[-3:] == ["100", "0", "0"]  # read in full, and a summary left beside it
    sidecar = candlestore.summary_path(path)
    kept = json.loads(sidecar.read_text())
    assert (kept["rows"], kept["size"]) == (100, path.stat().st_size)

    # a summary that matches the file's digest is all `data list` reads (this one says 4242 rows)
    sidecar.write_text(json.dumps({**kept, "rows": 4242}))
    assert _listed(config)[-3:] == ["4242", "0", "0"]

    # another program rewrites the file in place: same size, mtime put back; the digest tells
    stat = path.stat()
    text = path.read_text().replace(_row(10), "").replace(_row(99), _row(99) + _row(120))
    assert len(text) == stat.st_size
    with path.open("r+") as f:
        f.write(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    row = _listed(config)
    assert row[5:] == ["2024-01-06", "00:00", "100", "2", "21"], row  # last 120 h; holes at 10 and 100..119

    path.write_text(path.read_text() + "2024-01-07T00:00:00Z,100,1,99,101,1\n")  # edited badly
    got = CliRunner().invoke(app, ["data", "list", "--config", str(config)])
    assert "unreadable" in got.output and "inconsistent high/low" in got.output, got.output


async def test_a_resume_keeps_the_stored_bytes_and_writes_only_the_new_rows_after_them(tmp_path: Path) -> None:
    # a file imported by hand, epoch seconds and all: a resume neither re-reads nor re-renders its rows
    path = tmp_path / "candles" / "coinbase" / "BTC-USD_1h.csv"
    path.parent.mkdir(parents=True)
    old = "timestamp,open,high,low,close,volume\n" + "".join(
        f"{int((T0 + HOUR * i).timestamp())},100.0,106,99,101.00,1.50\n" for i in range(200) if i != 50)
    path.write_text(old)
    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(300)))
        source = CoinbaseSource(fake.rest_url)
        try:
            first = await download(source, tmp_path, "BTC/USD", "1h", until=T0 + HOUR * 250, now=NOW)
            second = await download(source, tmp_path, "BTC/USD", "1h", until=T0 + HOUR * 300, now=NOW)
        finally:
            await source.close()
    data = path.read_text()
    assert data.startswith(old) and data.count("\n") == 1 + 299
    assert data[len(old):].startswith(f"{T0 + HOUR * 200:%Y-%m-%dT%H:%M:%SZ},")
    assert (first.added, second.added, second.stored.rows, second.stored.gaps.count) == (50, 50, 299, 1)
    candles, _ = read_candles(path, "BTC/USD", 3600)
    assert [c.ts for c in candles] == [T0 + HOUR * i for i in range(300) if i != 50]
    # the summary the appends kept is the one a full read of the file gives
    kept = json.loads(candlestore.summary_path(path).read_text())
    candlestore.summary_path(path).unlink()
    assert candlestore.load(path, "BTC/USD", 3600) == candlestore.Summary(
        timeframe_s=3600, rows=kept["rows"], first=T0, last=T0 + HOUR * 299, holes=((T0 + HOUR * 49, 1),),
        gridded=True, digest=kept["sha256"], size=kept["size"])


async def test_a_file_saved_without_a_final_newline_is_extended_on_a_line_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "candles" / "coinbase" / "BTC-USD_1h.csv"
    path.parent.mkdir(parents=True)
    old = "timestamp,open,high,low,close,volume\r\n" + "".join(_row(i) for i in range(10)).rstrip("\n")
    path.write_bytes(old.encode())
    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(20)))
        source = CoinbaseSource(fake.rest_url)
        try:
            got = await download(source, tmp_path, "BTC/USD", "1h", until=T0 + HOUR * 20, now=NOW)
        finally:
            await source.close()
    assert path.read_bytes().startswith(old.encode() + b"\n2024-01-01T10:00:00Z,")
    candles, _ = read_candles(path, "BTC/USD", 3600)
    assert [c.ts for c in candles] == [T0 + HOUR * i for i in range(20)] and got.added == 10
