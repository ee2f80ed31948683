"""Writing a file whole or not at all: a reader (or a restart after a crash) never sees half a vault,
half an overlay, half a report or half a candle download.

One way for every file the project writes in place: a temporary file beside the target (created
exclusively, never through a symlink, with ``mode``), written, flushed to disk, renamed over the target,
and the directory flushed so the rename itself survives a power cut. When root rewrites a file owned by
another user (``sudo tradectl vault set``), the new file keeps the old owner so the service can still
read it.

:func:`locked` serialises the read-modify-write of such a file between processes (two downloads of one
candle file, two tuning runs writing the overlay): each merges into what the other wrote instead of the
later rename dropping it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` in one rename; on any failure ``path`` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        previous: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        previous = None
    tmp = path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)
            if previous is not None and os.geteuid() == 0:
                os.fchown(fd, previous.st_uid, previous.st_gid)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``path`` (a ``.<name>.lock`` file beside it; released when the process
    dies) while reading and rewriting it. Holding it, any temporary file of an :func:`atomic_write` to
    ``path`` is one a killed process left: it goes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every file system can flush a directory; the rename itself is done
    finally:
        os.close(fd)
