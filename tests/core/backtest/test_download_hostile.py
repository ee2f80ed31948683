"""``tradectl data download`` against a misbehaving venue and hostile options: what is stored must always
read back with the strict reader, and a refused run says why in one line and changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from core.app.cli import app
from core.backtest.candlefile import read_candles
from core.backtest.download import CoinbaseSource, KrakenSource, download
from exchanges.errors import ExchangeError
from tests.core.backtest.test_download import T0, coinbase_rows, kraken_rows
from tests.exchanges.fakes.coinbase import FakeCoinbase
from tests.exchanges.fakes.kraken import FakeKraken

HOUR = timedelta(hours=1)
NOW = T0 + HOUR * 2000
CANDLES = "GET /market/products/{product_id}/candles"


async def test_a_venue_candle_that_cannot_be_stored_is_left_out_and_reported(tmp_path: Path) -> None:
    rows = coinbase_rows(range(100))
    rows[40] = {**rows[40], "high": "1.00"}  # high below its low, open and close
    rows[60] = {**rows[60], "open": "0"}  # a price of zero
    off_grid = {**rows[70], "start": str(int((T0 + HOUR * 70).timestamp()) + 1800)}  # half past, on a 1h series
    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, [*rows, off_grid])
        source = CoinbaseSource(fake.rest_url)
        try:
            got = await download(source, tmp_path, "BTC/USD", "1h", since=T0, until=T0 + HOUR * 100, now=NOW)
            fake.add_candles("BTC/USD", 3600, coinbase_rows(range(100, 120)))
            more = await download(source, tmp_path, "BTC/USD", "1h", until=T0 + HOUR * 120, now=NOW)
        finally:
            await source.close()
    # the file stays one the strict reader (and so the backtest and the next download) takes as it is
    candles, _ = read_candles(got.stored.path, "BTC/USD", 3600)
    times = {c.ts for c in candles}
    assert len(candles) == 118 and T0 + HOUR * 40 not in times and T0 + HOUR * 60 not in times
    assert all(int(c.ts.timestamp()) % 3600 == 0 for c in candles)
    assert (got.added, got.stored.gaps.count, got.stored.gaps.missing) == (98, 2, 2)
    assert any("3 candle(s) that cannot be stored" in n and "2024-01-02 16:00:00" in n for n in got.notes), got.notes
    assert more.added == 20 and more.stored.last == T0 + HOUR * 119


async def test_an_illiquid_pairs_file_reads_back(tmp_path: Path) -> None:
    # a pair that trades a few times a day: no two distances between its hourly candles are alike
    hours = [k * (k + 1) // 2 for k in range(2, 40)]
    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, [r for r in coinbase_rows(range(800)) if
                                           int(r["start"]) in {int((T0 + HOUR * h).timestamp()) for h in hours}])
        source = CoinbaseSource(fake.rest_url)
        try:
            got = await download(source, tmp_path, "BTC/USD", "1h", since=T0, until=T0 + HOUR * 800, now=NOW)
            again = await download(source, tmp_path, "BTC/USD", "1h", until=T0 + HOUR * 800, now=NOW)
        finally:
            await source.close()
    candles, report = read_candles(got.stored.path, "BTC/USD", 3600)
    assert len(candles) == len(hours) and report.gaps == len(hours) - 1
    assert again.added == 0 and again.stored.rows == len(hours)


async def test_refused_options_say_why_in_one_line_and_touch_nothing(tmp_path: Path) -> None:
    runner = CliRunner()
    config = tmp_path / "c.toml"
    data = tmp_path / "data"
    stored = data / "candles" / "coinbase" / "BTC-USD_1h.csv"

    async def run(*args: str) -> tuple[int, str]:
        got = await asyncio.to_thread(runner.invoke, app, ["data", "download", "--venue", "coinbase", "--pair",
                                                           "BTC/USD", "--config", str(config), "--quiet", *args])
        return got.exit_code, got.output

    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(48)))
        config.write_text(f'[service]\ndata_dir = "{data}"\n[coinbase]\nrest_url = "{fake.rest_url}"\n')
        code, out = await run("--since", "2024-01-01", "--until", "2024-01-02")
        assert code == 0 and "24 new candles" in out, out
        before, listed = stored.read_bytes(), sorted(stored.parent.iterdir())
        future = (datetime.now(UTC) + timedelta(days=400)).strftime("%Y-%m-%d")
        refused = [
            (("--since", future), "no closed candle starts there yet"),
            (("--since", "0001-01-01T00:00+05:00"), "out of range"),
            (("--until", "9999-12-31T23:00-05:00"), "out of range"),
            (("--since", "1969-12-31"), "before 1970"),
            (("--timeframe", "4h"), "coinbase has no such candles; it serves 1m, 5m, 15m, 30m, 1h, 1d"),
        ]
        fake.calls.clear()
        for args, said in refused:
            code, out = await run(*args)
            assert code == 2 and said in out and len(out.strip().splitlines()) == 1, (args, out)
            assert "Traceback" not in out
        assert not any(name == CANDLES for name, _ in fake.calls)  # refused before asking the venue
        assert stored.read_bytes() == before and sorted(stored.parent.iterdir()) == listed


async def test_a_data_directory_that_cannot_be_written_is_refused_before_the_download(tmp_path: Path) -> None:
    runner = CliRunner()
    config = tmp_path / "c.toml"
    (tmp_path / "candles").write_text("not a directory\n")  # where the candle files would go
    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(48)))
        config.write_text(f'[service]\ndata_dir = "{tmp_path}"\n[coinbase]\nrest_url = "{fake.rest_url}"\n')
        got = await asyncio.to_thread(runner.invoke, app, [
            "data", "download", "--venue", "coinbase", "--pair", "BTC/USD", "--since", "2024-01-01", "--until",
            "2024-01-02", "--config", str(config), "--quiet"])
    assert got.exit_code == 2, got.output
    assert got.output.strip() == f"cannot store candles under {tmp_path / 'candles' / 'coinbase'}: " \
                                 f"{tmp_path / 'candles'} is not a directory"
    assert fake.count(CANDLES) == 0 and (tmp_path / "candles").read_text() == "not a directory\n"


def test_a_stored_file_of_another_timeframe_is_still_refused(tmp_path: Path) -> None:
    # what lets an illiquid pair's file through must not let a daily file pass as an hourly one
    path = tmp_path / "BTC-USD_1h.csv"
    days = [T0 + timedelta(days=d) for d in (0, 1, 2, 4, 5, 9)]
    path.write_text("timestamp,open,high,low,close,volume\n"
                    + "".join(f"{t:%Y-%m-%dT%H:%M:%SZ},100,106,99,101,1.5\n" for t in days))
    try:
        read_candles(path, "BTC/USD", 3600)
    except ValueError as exc:
        assert "mostly 86400s apart but the timeframe is 3600s" in str(exc)
    else:
        raise AssertionError("a daily file was read as hourly")


class GatedCoinbase(FakeCoinbase):
    """Holds the candle call for one exact range until the test lets it through."""

    def __init__(self, hold: tuple[int, int]) -> None:
        super().__init__()
        self.hold = hold
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def _candles(self, request: Any, body: Any) -> Any:
        if (int(request.query["start"]), int(request.query["end"])) == self.hold:
            self.held.set()
            await self.release.wait()
        return await super()._candles(request, body)


async def test_two_downloads_of_one_file_keep_each_others_candles(tmp_path: Path) -> None:
    # a download by hand finishes while a longer one (say a scheduled one) is between pages; the longer one's
    # next write must keep what the first stored, and nothing may be stored twice
    def epoch(hours: int) -> int:
        return int((T0 + HOUR * hours).timestamp())

    async with GatedCoinbase(hold=(epoch(700), epoch(799))) as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(1000)))
        slow, quick = CoinbaseSource(fake.rest_url), CoinbaseSource(fake.rest_url)
        try:
            longer = asyncio.create_task(download(slow, tmp_path, "BTC/USD", "1h", since=T0, until=T0 + HOUR * 800,
                                                  now=NOW, checkpoint_pages=1))
            await asyncio.wait_for(fake.held.wait(), 10)  # 700 candles stored, the third page asked for
            by_hand = await download(quick, tmp_path, "BTC/USD", "1h", until=T0 + HOUR * 1000, now=NOW)
            fake.release.set()
            done = await asyncio.wait_for(longer, 10)
        finally:
            await slow.close()
            await quick.close()
    assert (by_hand.added, by_hand.stored.rows) == (300, 1000)
    candles, _ = read_candles(done.stored.path, "BTC/USD", 3600)
    assert [c.ts for c in candles] == [T0 + HOUR * i for i in range(1000)]
    assert (done.added, done.stored.rows, done.stored.last) == (700, 1000, T0 + HOUR * 999)


async def test_a_venue_failing_mid_download_keeps_the_pages_fetched_before(tmp_path: Path) -> None:
    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(1200)))

        def fail_after_two_pages(count: int, _newest: datetime) -> None:
            if count == 700:
                fake.inject(CANDLES, "error", times=5, error="INTERNAL")

        source = CoinbaseSource(fake.rest_url)
        try:
            try:
                await download(source, tmp_path, "BTC/USD", "1h", since=T0, until=T0 + HOUR * 1200, now=NOW,
                               progress=fail_after_two_pages)
            except ExchangeError as exc:
                assert "INTERNAL" in str(exc)
            else:
                raise AssertionError("the venue's refusal did not reach the caller")
            kept, _ = read_candles(tmp_path / "candles" / "coinbase" / "BTC-USD_1h.csv", "BTC/USD", 3600)
            assert [c.ts for c in kept] == [T0 + HOUR * i for i in range(700)]
            fake.faults.clear()
            done = await download(source, tmp_path, "BTC/USD", "1h", until=T0 + HOUR * 1200, now=NOW)
        finally:
            await source.close()
    assert (done.added, done.stored.rows, done.stored.gaps.count) == (500, 1200, 0)


async def test_an_interrupted_download_of_what_lies_before_the_file_leaves_no_hole(tmp_path: Path) -> None:
    class Interrupted(Exception):
        pass

    def stop_at_700(count: int, _newest: datetime) -> None:
        if count >= 700:
            raise Interrupted

    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(1200)))
        source = CoinbaseSource(fake.rest_url)
        try:
            await download(source, tmp_path, "BTC/USD", "1h", since=T0 + HOUR * 1000, until=T0 + HOUR * 1200, now=NOW)
            try:  # the part before the file, up to its first candle, interrupted on its second of three pages
                await download(source, tmp_path, "BTC/USD", "1h", since=T0, until=T0 + HOUR * 1000, now=NOW,
                               progress=stop_at_700, checkpoint_pages=1)
            except Interrupted:
                pass
            again = await download(source, tmp_path, "BTC/USD", "1h", since=T0, until=T0 + HOUR * 1200, now=NOW)
        finally:
            await source.close()
    candles, _ = read_candles(again.stored.path, "BTC/USD", 3600)
    assert [c.ts for c in candles] == [T0 + HOUR * i for i in range(1200)]
    assert again.stored.gaps.count == 0


async def test_a_since_after_the_stored_file_continues_from_its_end_without_a_hole(tmp_path: Path) -> None:
    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(1200)))
        source = CoinbaseSource(fake.rest_url)
        try:
            await download(source, tmp_path, "BTC/USD", "1h", since=T0, until=T0 + HOUR * 300, now=NOW)
            later = await download(source, tmp_path, "BTC/USD", "1h", since=T0 + HOUR * 900, until=T0 + HOUR * 1200,
                                   now=NOW)
        finally:
            await source.close()
    candles, _ = read_candles(later.stored.path, "BTC/USD", 3600)
    assert [c.ts for c in candles] == [T0 + HOUR * i for i in range(1200)]  # the 600 between are there too
    assert later.added == 900 and later.stored.gaps.count == 0
    assert any("continued from there rather than from 2024-02-07 12:00" in n for n in later.notes), later.notes


async def test_a_download_killed_while_writing_leaves_no_copy_behind_after_the_next_run(tmp_path: Path) -> None:
    folder = tmp_path / "candles" / "coinbase"
    folder.mkdir(parents=True)
    stale = folder / ".BTC-USD_1h.csv.0123456789ab.tmp"  # what atomic_write leaves when killed mid-write
    stale.write_text("timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,1,1,1,1\n2024-01-")
    other = folder / ".ETH-USD_1h.csv.0123456789ab.tmp"  # another file's: not this run's business
    other.write_text("x")
    async with FakeCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(100)))
        source = CoinbaseSource(fake.rest_url)
        try:
            got = await download(source, tmp_path, "BTC/USD", "1h", since=T0, until=T0 + HOUR * 100, now=NOW)
        finally:
            await source.close()
    assert got.added == 100 and not stale.exists() and other.exists()


async def test_pair_names_that_are_not_plain_ascii_are_refused_before_the_venue(tmp_path: Path) -> None:
    runner = CliRunner()
    config = tmp_path / "c.toml"
    async with FakeCoinbase() as fake:
        fake.add_candles("SS/USD", 3600, coinbase_rows(range(48)))  # what 'ß/USD'.upper() would ask for
        config.write_text(f'[service]\ndata_dir = "{tmp_path}"\n[coinbase]\nrest_url = "{fake.rest_url}"\n')
        for pair in ("ß/USD", "\uff22\uff34\uff23/USD", "BTC/\u00dcSD", "../../etc/passwd", "BTC/USD/EUR"):
            got = await asyncio.to_thread(runner.invoke, app, [
                "data", "download", "--venue", "coinbase", "--pair", pair, "--since", "2024-01-01", "--until",
                "2024-01-03", "--config", str(config), "--quiet"])
            assert got.exit_code == 2 and got.output.startswith(f"pair {pair!r}: write BASE/QUOTE"), (pair, got.output)
            assert len(got.output.strip().splitlines()) == 1
    assert fake.count(CANDLES) == 0 and not (tmp_path / "candles").exists()


async def test_an_until_between_two_candles_takes_the_candle_that_opens_before_it_from_either_venue(
        tmp_path: Path) -> None:
    until = T0 + HOUR * 300 + timedelta(minutes=30)  # --until 2024-01-13T12:30: the 12:00 candle opens before it
    async with FakeCoinbase() as coinbase, FakeKraken() as kraken:
        coinbase.add_candles("BTC/USD", 3600, coinbase_rows(range(400)))
        kraken.add_candles("BTC/USD", 60, kraken_rows(range(400)))
        sources = (CoinbaseSource(coinbase.rest_url), KrakenSource(kraken.rest_url))
        try:
            got = [await download(s, tmp_path, "BTC/USD", "1h", since=T0, until=until, now=T0 + HOUR * 400)
                   for s in sources]
        finally:
            for s in sources:
                await s.close()
    assert [(d.stored.rows, d.stored.last) for d in got] == [(301, T0 + HOUR * 300)] * 2


async def test_a_host_clock_running_ahead_of_the_venue_stores_no_running_candle(tmp_path: Path) -> None:
    # this host's clock is two hours ahead of the venue's: by the venue, the candle that opened an hour
    # before the host's "now" is still running, and the venue serves it as it is so far
    host = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    since = host - HOUR * 10
    rows = [{"start": str(int((since + HOUR * i).timestamp())), "low": "99.00", "high": "106.00", "open": "100.00",
             "close": "101.00", "volume": "1.5"} for i in range(10)]
    async with FakeCoinbase() as coinbase, FakeKraken() as kraken:
        coinbase.server_time_offset_s = kraken.server_time_offset_s = -2 * 3600
        coinbase.add_candles("BTC/USD", 3600, rows)
        kraken.add_candles("BTC/USD", 60, [[int(r["start"]), "100.00", "106.00", "99.00", "101.00", "100.0", "1.5", 3]
                                           for r in rows])
        sources = (CoinbaseSource(coinbase.rest_url), KrakenSource(kraken.rest_url))
        try:
            got = [await download(s, tmp_path, "BTC/USD", "1h", since=since) for s in sources]
        finally:
            for s in sources:
                await s.close()
    venue_now = datetime.now(UTC) - HOUR * 2
    for d in got:
        assert d.stored.last is not None and d.stored.last + HOUR <= venue_now, (d.stored.path, d.stored.last)
    assert got[0].stored.last == got[1].stored.last


class TimelessCoinbase(FakeCoinbase):
    async def _time(self, request: Any, body: Any) -> Any:
        return {"now": "soon"}


async def test_a_venue_time_without_a_time_in_it_is_a_clear_venue_error(tmp_path: Path) -> None:
    runner = CliRunner()
    config = tmp_path / "c.toml"
    async with TimelessCoinbase() as fake:
        fake.add_candles("BTC/USD", 3600, coinbase_rows(range(48)))
        config.write_text(f'[service]\ndata_dir = "{tmp_path}"\n[coinbase]\nrest_url = "{fake.rest_url}"\n')
        got = await asyncio.to_thread(runner.invoke, app, [
            "data", "download", "--venue", "coinbase", "--pair", "BTC/USD", "--since", "2024-01-01", "--config",
            str(config), "--quiet"])
    assert got.exit_code == 1, got.output
    assert got.output.startswith("coinbase: coinbase time: the reply has no time in it"), got.output
    assert fake.count(CANDLES) == 0 and not (tmp_path / "candles").exists()
