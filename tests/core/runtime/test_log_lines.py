"""Text a chat user typed reaches the log; terminal control characters in it must not reach an
operator's terminal raw (``journalctl -f``, ``tail -f`` of the log file)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.runtime.logs import setup_logging
from tests.core.app.test_service import TRADECTL, env_for

# OSC title + BEL, clear screen, CSI via C1, OSC 52 clipboard write, carriage return overwrite,
# a right-to-left override, NUL
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x9b31m\x1b]52;c;cm0gLXJmIH4K\x07\rfake\u202eevil\x00"
RAW = ("\x1b", "\x07", "\x9b", "\r", "\u202e", "\x00")


def test_a_hostile_pause_reason_is_escaped_in_the_service_log(tmp_path: Path) -> None:
    env = env_for(tmp_path, TRADECTL_CHAT__CONSOLE="on", TRADECTL_LOGGING__FILE=str(tmp_path / "tradectl.log"))
    res = subprocess.run([*TRADECTL, "run", "--exit-after-input"], env=env, cwd=tmp_path,
                         input=f"/pause {HOSTILE}\n", capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "paused by console:local" in res.stderr  # the reason was logged
    for char in RAW:
        assert char not in res.stderr, f"{char!r} reached the terminal raw"
    log_file = (tmp_path / "tradectl.log").read_text(encoding="utf-8")  # read with tail -f, a terminal too
    assert "paused by console:local" in log_file
    for char in RAW:
        assert char not in log_file, f"{char!r} reached the log file raw"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """The root logger reconfigured for one test, then given back its handlers (pytest's included)."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        yield io.StringIO()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


def test_text_lines_escape_controls_but_keep_newlines_and_tabs(stream: io.StringIO) -> None:
    setup_logging(level="INFO", fmt="text", stream=stream, redact=lambda s: s.replace("hunter22", "***"))
    log = logging.getLogger("tradectl.test")
    log.info("reason %s hunter22 %s", HOSTILE, "lone \ud800 surrogate")
    try:
        raise ValueError("boom\x1b[2J")
    except ValueError:
        log.exception("failed\twith\ttabs")
    text = stream.getvalue()
    for char in (*RAW, "\ud800"):
        assert char not in text
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m" in text and "\\u202e" in text and "\\ud800" in text
    assert "***" in text and "hunter22" not in text
    assert "failed\twith\ttabs" in text and "Traceback (most recent call last):\n" in text
    text.encode("utf-8")  # writable as it is


def test_json_lines_carry_controls_only_as_json_escapes(stream: io.StringIO) -> None:
    setup_logging(level="INFO", fmt="json", stream=stream)
    logging.getLogger("tradectl.test").info("reason %s", HOSTILE)
    line = stream.getvalue().strip()
    for char in RAW:
        assert char not in line
    assert json.loads(line)["msg"] == f"reason {HOSTILE}"  # nothing lost for log processors


def test_escape_controls_leaves_ordinary_text_alone() -> None:
    from core.runtime.logs import escape_controls

    text = "BTC/USD paused: news at 14:30 — café, 日本, emoji 🚀\n\tindented"
    assert escape_controls(text) == text
