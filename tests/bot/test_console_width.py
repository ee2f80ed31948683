"""The console lays replies out for its terminal: wide tables on a wide one, records on a narrow one,
whole lines for a pipe or a file (scripts grep them)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import TextIO

import pytest

from bot.platforms.console import ConsoleChat, FileReader, terminal_width
from persistence.db import Database
from tests.bot.phone_replies import phone_harness

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def terminal() -> Iterator[TextIO]:
    """The writing end of a real pseudo-terminal (``isatty()`` is true), its other end kept open."""
    leader, follower = os.openpty()
    out = os.fdopen(follower, "w")
    try:
        yield out
    finally:
        out.close()
        os.close(leader)


async def _positions(sqlite_db: Database, out: TextIO) -> str:
    h, _ = phone_harness(sqlite_db)
    console = ConsoleChat(h.dispatcher, reader=FileReader(io.BytesIO(b"")), out=out)
    rendered = await console.handle_line("/positions")
    assert rendered is not None
    return rendered


async def test_a_narrow_terminal_gets_records_that_fit(sqlite_db: Database, terminal: TextIO,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "32")  # shutil.get_terminal_size reads it first, as for any terminal program
    assert terminal_width(terminal) == 32
    text = await _positions(sqlite_db, terminal)
    lines = text.split("\n")
    assert max(len(line) for line in lines) <= 32
    assert "PEPE/USD" in lines and "BTC/USD" in lines  # each record starts with its key on a line of its own
    assert not any(set(line) <= {"-", " "} and line for line in lines)  # no dashed separator


async def test_a_wide_terminal_keeps_the_table(sqlite_db: Database, terminal: TextIO,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    lines = (await _positions(sqlite_db, terminal)).split("\n")
    assert lines[1].startswith("pair ") and set(lines[2]) <= {"-", " "}
    assert lines[3].startswith("PEPE/USD ") and 32 < max(len(line) for line in lines) <= 160


async def test_a_pipe_or_a_file_gets_whole_lines(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "32")
    out = io.StringIO()
    assert terminal_width(out) is None
    lines = (await _positions(sqlite_db, out)).split("\n")
    assert lines[1].startswith("pair ")
