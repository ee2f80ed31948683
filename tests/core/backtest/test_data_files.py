"""Candle files as users bring them: bad rows refused by default (line and problem named), dropped and
counted with --lenient, epoch timestamps read in the right unit, gaps shown, reversed files said so;
and a run without trades still prints its figures and draws its (flat) chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from core.app.backtest_cli import register

runner = CliRunner()
app = typer.Typer()
app.callback()(lambda: None)  # a group, so the command is named as in tradectl
register(app)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
PLAIN = ["--pair", "ETH/BTC", "--strategy", "sma_cross", "--sizing", "fixed", "--qty", "1", "--cash", "100", "-q"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("TRADECTL_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)


def rows(n: int = 80, *, stamp: str = "iso") -> list[str]:
    """Hourly ETH/BTC-like candles, oldest first, as CSV lines without the header."""
    out = []
    for i in range(n):
        t = T0 + timedelta(hours=i)
        ts = {"iso": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "s": str(int(t.timestamp())),
              "ms": str(int(t.timestamp()) * 1000)}[stamp]
        c = 0.05 + 0.002 * ((i // 6) % 5) + 0.00001 * (i % 7)
        o = c - 0.0001
        out.append(f"{ts},{o:.5f},{max(o, c) + 0.0002:.5f},{min(o, c) - 0.0002:.5f},{c:.5f},{10 + i}")
    return out


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "candles.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(lines) + "\n")
    return path


def backtest(path: Path, *extra: str) -> tuple[int, str]:
    run = runner.invoke(app, ["backtest", "--csv", str(path), *PLAIN, "--out", "out", *extra])
    return run.exit_code, run.output


def bad_file(tmp_path: Path) -> Path:
    lines = rows()
    lines[10] = lines[10].replace(lines[10].split(",")[4], "nan", 1)  # line 12: NaN close
    lines[20] = lines[20].replace(lines[20].split(",")[1], "-0.05", 1)  # line 22: negative open
    lines.insert(30, lines[29])  # line 32: the same candle again
    lines[40:45] = [*lines[43:45], *lines[40:43]]  # two candles moved ahead: lines 44..46 come after them
    return write(tmp_path, lines)


def test_bad_rows_are_refused_naming_the_line_and_the_problem(tmp_path: Path) -> None:
    code, out = backtest(bad_file(tmp_path))
    assert code != 0
    for expected in ("line 12: non-finite value", "line 22: non-positive price", "line 32: duplicate timestamp",
                     "line 44: out of order", "--lenient"):
        assert expected in out, out
    assert not (tmp_path / "out").exists()  # nothing written


def test_lenient_drops_them_and_counts_each_problem(tmp_path: Path) -> None:
    code, out = backtest(bad_file(tmp_path), "--lenient")
    assert code == 0, out
    assert ("dropped (--lenient): duplicate timestamp 1, non-finite value 1, non-positive price 1, "
            "out of order 3") in out, out
    assert "gaps: 3 (5 candles missing; largest 3 after 2024-01-02 14:00 UTC)" in out, out  # the holes left
    assert len(list((tmp_path / "out").iterdir())) == 2


def test_epoch_milliseconds_and_seconds_are_read_as_such(tmp_path: Path) -> None:
    for stamp, name in (("ms", "epoch milliseconds"), ("s", "epoch seconds")):
        code, out = backtest(write(tmp_path, rows(stamp=stamp)))
        assert code == 0, out
        assert f"(timestamps: {name})" in out
        assert "period  2024-01-01 00:00 -> 2024-01-04 08:00 UTC, 80 candles" in out, out


def test_a_byte_order_mark_before_the_header_is_read_as_the_header(tmp_path: Path) -> None:
    """What a spreadsheet saves as "CSV UTF-8"."""
    path = write(tmp_path, rows())
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    code, out = backtest(path)
    assert code == 0, out
    assert "period  2024-01-01 00:00 -> 2024-01-04 08:00 UTC, 80 candles" in out, out


def test_a_number_with_an_underscore_is_not_a_number(tmp_path: Path) -> None:
    lines = rows()
    lines[6] = lines[6].rpartition(",")[0] + ",1_000"  # Python reads 1_000 as 1000; a candle file does not
    code, out = backtest(write(tmp_path, lines))
    assert code != 0 and "line 8: malformed row: a price or volume is not a number" in out, out


def test_unknown_timestamp_format_is_refused(tmp_path: Path) -> None:
    lines = rows()
    lines[4] = "20240101," + lines[4].partition(",")[2]
    code, out = backtest(write(tmp_path, lines))
    assert code != 0 and "line 6: unknown timestamp format: '20240101'" in out, out


def test_a_reversed_file_is_said_to_be_reversed(tmp_path: Path) -> None:
    for extra in ((), ("--lenient",)):
        code, out = backtest(write(tmp_path, rows()[::-1]), *extra)
        assert code != 0
        assert "the rows run newest first (line 2 is 2024-01-04 07:00 UTC" in out, out
        assert "sort the file oldest first" in out, out


def test_gaps_are_reported_even_in_a_clean_file(tmp_path: Path) -> None:
    lines = rows()
    del lines[50:53]
    code, out = backtest(write(tmp_path, lines))
    assert code == 0, out
    assert "gaps: 1 (3 candles missing; largest 3 after 2024-01-03 01:00 UTC)" in out, out


def test_a_run_without_trades_prints_its_figures_and_a_flat_chart(tmp_path: Path) -> None:
    code, out = backtest(write(tmp_path, rows(12)), "--param", "sma_cross.slow=50")
    assert code == 0, out
    assert "trades  0 closed" in out and "equity  100.00000000 BTC -> 100.00000000 BTC" in out, out
    png = next((tmp_path / "out").glob("*_equity.png"))
    assert png.read_bytes().startswith(b"\x89PNG")
