"""Proof that an instance is dead: an OS lock each running instance holds on a file of its own.

A restarted single instance would otherwise wait out its dead predecessor's lease (``leader.ttl_s``)
before trading again. Each instance holds an exclusive ``flock`` on ``<data_dir>/instances/<id>.lock``
for as long as its process lives; the kernel drops the lock the moment the process dies, SIGKILL
included. So another instance on the same host that can take the lock on the leaseholder's file has
proven the holder dead and may take the lease at once (:class:`~core.ops.leader.LeaderElector`).

Why not "its pid is not running": replicas in separate containers can share a hostname (host
networking) and a pid (1), and a pid is reused; a lock is released only by the death of its holder.
An instance that cannot see the file (another data directory, another host) proves nothing and
waits for the lease to expire as before. The host in the instance id must match too, so a data
directory shared over a network file system (where locks may not be shared) proves nothing either.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path

try:
    import fcntl
except ImportError:  # not a POSIX system: no proof, leases expire as before
    fcntl = None  # type: ignore[assignment]  # mypy types the name as the module

log = logging.getLogger("tradectl.instance")

_SAFE = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
_SUFFIX = ".lock"


def _host_of(instance_id: str) -> str | None:
    parts = instance_id.rsplit(":", 2)
    return parts[0] if len(parts) == 3 else None


class InstanceLock:
    """Holds this instance's lock file while running, and tests other instances' files.

    A component: ``start()`` takes the lock (failing to do so only disables the proof, with a log
    line), ``stop()`` removes the file and lets the lock go.
    """

    name = "instance-lock"

    def __init__(self, directory: Path, instance_id: str, host: str | None = None) -> None:
        self.directory = directory
        self.instance_id = instance_id
        self._host = host or socket.gethostname()
        self._fd: int | None = None

    @property
    def active(self) -> bool:
        return self._fd is not None

    def _path(self, instance_id: str) -> Path | None:
        return self.directory / (instance_id + _SUFFIX) if _SAFE.match(instance_id) else None

    async def start(self) -> None:
        if self._fd is not None or fcntl is None:
            return
        path = self._path(self.instance_id)
        if path is None:
            log.warning("instance id %r cannot name a lock file; a restart waits for the lease to expire",
                        self.instance_id)
            return
        # Locked under a temporary name, then renamed into place: a sweep never finds it unlocked.
        temp = path.with_name(f".{path.name}.new")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(fd, f"{os.getpid()}\n".encode())
                os.replace(temp, path)
            except BaseException:
                os.close(fd)
                raise
        except OSError as exc:
            log.warning("cannot hold an instance lock in %s (%s); a restart waits for the lease to expire",
                        self.directory, exc)
            return
        self._fd = fd

    async def stop(self) -> None:
        if self._fd is None:
            return
        path = self._path(self.instance_id)
        try:
            if path is not None:
                path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def proves_dead(self, holder: str) -> bool:
        """True only if ``holder`` ran on this host with this lock directory and its lock is free now."""
        if self._fd is None or fcntl is None or holder == self.instance_id or _host_of(holder) != self._host:
            return False
        path = self._path(holder)
        if path is None:
            return False
        try:
            fd = os.open(path, os.O_RDWR)  # never create: no file, no proof
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held: the holder lives (or the file system cannot tell)
        finally:
            os.close(fd)
        return True

    def sweep(self) -> int:
        """Delete the files of dead instances (called by the leader, when no proof is needed any more)."""
        if self._fd is None or fcntl is None:
            return 0
        removed = 0
        try:
            names = [p for p in self.directory.iterdir() if p.name.endswith(_SUFFIX) and not p.name.startswith(".")]
        except OSError:
            return 0
        for path in names:
            if path.name == self.instance_id + _SUFFIX:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink(missing_ok=True)
                removed += 1
            except OSError:
                pass
            finally:
                os.close(fd)
        return removed


def running_instances(directory: Path) -> list[str]:
    """The ids of the instances whose lock file in ``directory`` is held right now: on this host, with
    this data directory, they are alive (``tradectl db restore`` refuses to replace their database).

    Unlike :meth:`InstanceLock.proves_dead` this needs no lock of its own and looks at every file; a
    file whose lock can be taken is a dead instance's leftover and does not count.
    """
    if fcntl is None:
        return []
    try:
        paths = sorted(p for p in directory.iterdir() if p.name.endswith(_SUFFIX) and not p.name.startswith("."))
    except OSError:
        return []
    alive = []
    for path in paths:
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            alive.append(path.name.removesuffix(_SUFFIX))
        finally:
            os.close(fd)
    return alive
