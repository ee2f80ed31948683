"""glibc's malloc arenas are bounded before the service starts its threads (core.runtime.memory)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# Eight threads alive at once, each allocating outside pymalloc (> 512 bytes), then glibc's own count of arenas.
PROBE = """
import ctypes, sys, threading
from core.runtime.memory import limit_malloc_arenas
stop = threading.Event()
if sys.argv[1] == "late":
    threading.Thread(target=stop.wait).start()
print(limit_malloc_arenas(), flush=True)
barrier = threading.Barrier(8)
def work():
    held = [bytearray(4096) for _ in range(64)]
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()
stop.set()
"""


def _arenas(mode: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**clean, **env})
    return out.stdout.strip(), out.stderr.count("Arena ")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_stats")
def test_arenas_are_bounded_unless_the_operator_chose_or_threads_already_run() -> None:
    assert _arenas("early") == ("True", 2)
    said, arenas = _arenas("late")  # too late: a thread has run
    assert said == "False" and arenas > 2
    said, arenas = _arenas("early", MALLOC_ARENA_MAX="4")  # the operator's setting stands
    assert said == "False" and 2 < arenas <= 4
