"""Operational tables: leases, heartbeats, scheduled job runs, the notification outbox, API nonces."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from persistence.models._common import ts
from persistence.types import UTCDateTime


class LeaseRow(SQLModel, table=True):
    """One lease per deployment group; ``epoch`` grows on every takeover (a fencing token)."""

    __tablename__ = "leases"
    name: str = Field(primary_key=True, max_length=128)
    holder: str = Field(max_length=200)
    epoch: int = Field(default=0, sa_type=BigInteger)
    expires_at: datetime = ts()
    acquired_at: datetime = ts()


class HeartbeatRow(SQLModel, table=True):
    __tablename__ = "heartbeats"
    instance_id: str = Field(primary_key=True, max_length=200)
    group_name: str = Field(max_length=64, index=True)
    host: str = Field(max_length=200)
    pid: int
    role: str = Field(default="follower", max_length=16)
    state: str = Field(default="starting", max_length=16)
    version: str = Field(default="", max_length=32)
    started_at: datetime = ts()
    last_seen: datetime = ts(index=True)


class JobRunRow(SQLModel, table=True):
    """A scheduled run, unique on (job, scheduled time): a failover never runs it twice."""

    __tablename__ = "job_runs"
    job: str = Field(primary_key=True, max_length=64)
    scheduled_for: datetime = Field(primary_key=True, sa_type=UTCDateTime)
    started_at: datetime = ts()
    finished_at: datetime | None = ts(nullable=True, default_now=False)
    status: str = Field(default="running", max_length=16)
    instance_id: str = Field(default="", max_length=200)
    detail: str = Field(default="", max_length=2000)


class OutboxRow(SQLModel, table=True):
    """An announcement waiting for one destination; written with the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "destination", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = ts()
    destination: str = Field(max_length=200)
    event_type: str = Field(max_length=48)
    severity: str = Field(max_length=16)
    silent: bool = False
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = ts()
    claimed_by: str = Field(default="", max_length=200)
    claimed_until: datetime | None = ts(nullable=True, default_now=False)
    delivered_at: datetime | None = ts(nullable=True, default_now=False)
    last_error: str = Field(default="", max_length=500)


class ApiNonceRow(SQLModel, table=True):
    """The highest nonce reserved for one venue API key, shared by every process using the key.

    Kraken refuses a nonce not larger than the last one it saw for a key, so a restarted process
    (or a replica whose clock is behind) must continue above what any process reserved before.
    ``key_hash`` is a SHA-256 of the venue and the key: the key itself is never stored.
    """

    __tablename__ = "api_nonces"
    key_hash: str = Field(primary_key=True, max_length=64)
    venue: str = Field(max_length=32)
    high_water: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = ts()
