"""Starts service processes by forking one that has already imported the service.

``python -m core.app.cli run`` spends seconds of CPU importing (numpy, TA-Lib, SQLAlchemy, PTB, ...)
before it does anything; the replica tests start over twenty replicas, and on a small machine the
imports of new replicas would compete with the handovers being measured. This launcher imports the
service once; each replica is then a ``fork()`` that runs the very same entry point
(``core.app.cli.main`` with ``run``) in its own process, with its own environment, working directory,
log file, event loop, database connections and sockets.

Protocol (JSON lines): the parent writes ``{"name", "cwd", "log", "env"}`` to start a replica and
reads ``{"started": name, "pid": n}``; ``{"exited": pid, "code": n}`` lines report exits (negative:
killed by that signal). Closing stdin kills what is left and ends the launcher.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from typing import Any


def _preload() -> None:
    import bot.app
    import bot.platforms.telegram  # noqa: F401
    import core.app.app
    import core.app.cli
    import core.app.trading_core
    import core.app.wiring
    import core.ops.reports
    import core.ops.scheduler  # noqa: F401
    import exchanges.paper
    import exchanges.replay  # noqa: F401
    import persistence.migrate  # noqa: F401
    import strategies  # noqa: F401


def _child(spec: dict[str, Any]) -> None:
    """In the forked process: become the replica (never returns)."""
    code = 1
    try:
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        fd = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.environ.clear()
        os.environ.update(spec["env"])
        os.chdir(spec["cwd"])
        sys.argv = ["tradectl", "run"]
        from core.app.cli import main

        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - report and exit; the log has the traceback
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reap(out: Any) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        out.write(json.dumps({"exited": pid, "code": code}) + "\n")
        out.flush()


def main() -> None:
    _preload()
    out = sys.stdout
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    out.flush()
    children: set[int] = set()
    buffer = b""
    stdin = sys.stdin.fileno()
    while True:
        readable, _, _ = select.select([stdin], [], [], 0.02)
        _reap(out)
        if not readable:
            continue
        chunk = os.read(stdin, 65536)
        if not chunk:
            break
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            spec = json.loads(line)
            pid = os.fork()
            if pid == 0:
                _child(spec)
            children.add(pid)
            out.write(json.dumps({"started": spec["name"], "pid": pid}) + "\n")
            out.flush()
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _reap(out)


if __name__ == "__main__":
    main()
