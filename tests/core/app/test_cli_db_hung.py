"""`tradectl db upgrade|current` against a database that accepts connections and never answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.app.cli import app

runner = CliRunner()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP listener on loopback that accepts and then says nothing (a hung or half-dead server)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not done.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, name="silent-db", daemon=True)
    thread.start()
    yield f"postgresql://tradectl:pw@127.0.0.1:{listener.getsockname()[1]}/tradectl"
    done.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("command", [("db", "upgrade"), ("db", "current")])
def test_a_hung_database_is_named_not_an_empty_message(silent_server: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       command: tuple[str, ...]) -> None:
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, list(command), env={"DATABASE_URL": silent_server})
    assert res.exit_code == 1
    line = res.output.strip()
    assert len(line.splitlines()) == 1, res.output
    assert line.endswith("the database did not answer within the connect timeout (TimeoutError)"), line
    assert ":pw@" not in line  # the password stays hidden
