"""The databases a run uses: a fresh one of each kind, and a private PostgreSQL cluster that can be
stopped and started under the running service (a database outage)."""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

PG_URL = os.environ.get("TRADECTL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


class PrivateCluster:
    """A PostgreSQL cluster of our own on a free port, so it can be stopped and started mid-run (a
    database outage). Needs ``initdb`` and ``pg_ctl`` on PATH; as root it runs them as ``postgres``."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="crash-pg-"))  # its own: the postgres user must reach it
        self.data = self.base / "pgdata"
        self.port = 0

    def _cmd(self, *args: str) -> list[str]:
        return (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) + list(args)

    async def _run(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(*self._cmd(*args), stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {out.decode(errors='replace')[-1500:]}")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    async def __aenter__(self) -> PrivateCluster:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        if os.geteuid() == 0:
            import shutil

            shutil.chown(self.base, "postgres", "postgres")
        await self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        await self.start()
        return self

    async def start(self) -> None:
        await self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "pg.log"), "-w", "-o",
                        f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1", "start")

    async def stop(self) -> None:
        await self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    async def __aexit__(self, *exc: object) -> None:
        import shutil

        try:
            await self.stop()
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.base, ignore_errors=True)


@asynccontextmanager
async def backend_database(kind: str, work: Path, pg_url: str,
                           cluster: PrivateCluster | None = None) -> AsyncIterator[str]:
    """A fresh database URL of the given kind, dropped afterwards (on ``cluster`` if given)."""
    if kind == "sqlite":
        yield f"sqlite:///{work}/data/tradectl.db"
        return
    import asyncpg

    admin = (cluster.url if cluster is not None else pg_url).replace("postgresql+asyncpg://", "postgresql://")
    name = "tradectl_crash_" + secrets.token_hex(4)
    conn = await asyncpg.connect(admin)
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.close()

