"""Process memory settings for a long-running service on small hardware.

glibc's allocator gives each thread that allocates while another holds the main arena an arena of its own,
up to eight per core, and memory freed into one arena serves only that arena's later requests. The service's
threads (SQLite connections, the default executor, DNS lookups) each touch a few, so the process keeps more
resident memory than it uses. Two arenas is the usual bound for such services (``MALLOC_ARENA_MAX=2``).
"""

from __future__ import annotations

import ctypes
import os
import threading

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Bound glibc's malloc arenas; True when set. Must run before the process starts threads.

    Leaves the process alone when ``MALLOC_ARENA_MAX`` is set (glibc read it at start: the operator's choice
    stands), when threads already run, and when the C library is not glibc (musl, macOS: no ``mallopt``)."""
    if "MALLOC_ARENA_MAX" in os.environ or threading.active_count() > 1:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
