"""Retention: delete old operational rows so the database does not grow without bound.

Only bookkeeping that has served its purpose goes: heartbeats of instances not seen for a while,
alerts already delivered, processed chat-update ids (duplicates arrive within minutes, not weeks),
confirmations that expired long ago, and records of finished job runs. A confirmation that was
confirmed but never marked executed stays whatever its age: it is an intent a crash interrupted,
which the engine completes on its next start (:mod:`core.trading.confirmed`). Trades, orders, fills,
the ledger, positions, equity snapshots and
the audit log are never touched here: they are the books, and deleting them would change history.
Pending or failing alerts are kept whatever their age, so nothing undelivered is lost silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, not_

from core.ops.scheduler import JobFn, JobResult, JobRun
from persistence.db import Database
from persistence.models import ConfirmationRow, HeartbeatRow, JobRunRow, OutboxRow, ProcessedUpdateRow
from persistence.upsert import table_of

_HEARTBEATS = table_of(HeartbeatRow)
_OUTBOX = table_of(OutboxRow)
_UPDATES = table_of(ProcessedUpdateRow)
_RUNS = table_of(JobRunRow)
_CONFIRMATIONS = table_of(ConfirmationRow)


@dataclass(frozen=True, slots=True)
class RetentionResult:
    heartbeats: int
    outbox: int
    processed_updates: int
    job_runs: int
    confirmations: int = 0

    def describe(self) -> str:
        return (f"deleted {self.heartbeats} heartbeats, {self.outbox} delivered alerts, "
                f"{self.processed_updates} processed updates, {self.confirmations} expired confirmations, "
                f"{self.job_runs} job runs")


async def purge_old_rows(db: Database, *, now: datetime, days: int, keep_instance: str) -> RetentionResult:
    """Delete rows older than ``days`` (see the module docstring for what, and what never).

    ``keep_instance``'s own heartbeat stays even if its clock says it is old: deleting the row of a
    running instance would make ``tradectl health`` fail until its next beat.
    """
    if days < 1:
        raise ValueError("retention needs at least one day")
    cutoff = now - timedelta(days=days)
    async with db.begin() as conn:
        heartbeats = await conn.execute(
            delete(_HEARTBEATS).where(_HEARTBEATS.c.last_seen < cutoff, _HEARTBEATS.c.instance_id != keep_instance))
        outbox = await conn.execute(
            delete(_OUTBOX).where(_OUTBOX.c.status == "delivered",
                                  func.coalesce(_OUTBOX.c.delivered_at, _OUTBOX.c.created_at) < cutoff))
        updates = await conn.execute(delete(_UPDATES).where(_UPDATES.c.processed_at < cutoff))
        runs = await conn.execute(delete(_RUNS).where(_RUNS.c.scheduled_for < cutoff, _RUNS.c.status != "running"))
        interrupted = and_(_CONFIRMATIONS.c.outcome == "confirmed", _CONFIRMATIONS.c.executed_at.is_(None))
        confirmations = await conn.execute(
            delete(_CONFIRMATIONS).where(_CONFIRMATIONS.c.expires_at < cutoff, not_(interrupted)))
    return RetentionResult(heartbeats.rowcount, outbox.rowcount, updates.rowcount, runs.rowcount,
                           confirmations.rowcount)


def retention_job(db: Database, *, days: int, keep_instance: str) -> JobFn:
    """The scheduled clean-up. It announces nothing; the counts go into the job-run record."""

    async def run(job: JobRun) -> JobResult:
        result = await purge_old_rows(db, now=job.started_at, days=days, keep_instance=keep_instance)
        return JobResult(detail=result.describe())

    return run
