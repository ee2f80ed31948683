"""Settings of running the service: identity and shutdown, the database, logging, the vault, scheduled jobs,
leader election and the operations listener (metrics and health)."""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from core.settings.models_base import Section


def _check_tz(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class ServiceSettings(Section):
    group: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description=(
        "Deployment group: replicas sharing a database and bot token use the same group (one leader per group)."))
    data_dir: Path = Field(Path("data"), description=(
        "Directory for the embedded database, the vault and other local files."))
    timezone: str = Field("UTC", description=(
        "IANA time zone for day/week/month boundaries (PnL periods, daily loss limit, reports)."))
    heartbeat_interval_s: float = Field(5.0, gt=0, le=60, description="Seconds between heartbeat writes.")
    heartbeat_stale_s: float = Field(30.0, gt=0, le=600, description=(
        "A heartbeat older than this makes `tradectl health` fail."))
    shutdown_timeout_s: float = Field(10.0, gt=0, le=120, description=(
        "Seconds each component gets to stop on SIGINT/SIGTERM."))
    loop_lag_alert_ms: float = Field(500.0, ge=0, description=(
        "Alert in chat when the event loop's average lag stays at or above this many milliseconds for "
        "loop_lag_alert_for_s (0 = never); one recovered notice follows once it stays below half of it as long."))
    loop_lag_alert_for_s: float = Field(30.0, gt=0, le=3600, description=(
        "How long the event-loop lag must stay high before the alert (and low before the recovered notice)."))

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _check_tz(v)))


class DatabaseSettings(Section):
    url: str = Field("sqlite:///data/tradectl.db", description=(
        "Database URL: sqlite:///path (embedded) or postgresql://user:pass@host/db. DATABASE_URL is accepted too."))
    auto_upgrade: Literal["embedded", "always", "never"] = Field("embedded", description=(
        "`embedded`: `tradectl run` upgrades the schema itself on SQLite only; `always`; `never` (run `tradectl db "
        "upgrade`)."))
    echo: bool = Field(False, description="Log every SQL statement (debugging only).")


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["auto", "text", "json"] = Field("auto", description=(
        "`text`, `json`, or `auto` (text on a terminal, JSON otherwise)."))
    file: Path | None = Field(None, description="Also write logs to this file, rotated by size.")
    max_bytes: int = Field(10_000_000, ge=10_000, description="Rotate the log file at this size.")
    backups: int = Field(5, ge=0, le=100, description="Rotated log files to keep.")


class VaultSettings(Section):
    path: Path = Field(Path("data/vault.bin"), description=(
        "Encrypted secrets vault; unlocked at start-up by TRADECTL_VAULT_PASSPHRASE or TRADECTL_VAULT_KEY (or their "
        "_FILE forms)."))
    secrets_dir: Path = Field(Path("/run/secrets"), description=(
        "Directory of secret files (Docker/Kubernetes secrets), one file per secret name."))


_HHMM_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_hhmm(value: str) -> tuple[int, int]:
    match = _HHMM_RE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a time of day written HH:MM (00:00-23:59)")
    return int(match.group(1)), int(match.group(2))


def _split_day_time(value: str) -> tuple[str, tuple[int, int]]:
    parts = value.split()
    if len(parts) != 2:
        raise ValueError(f"{value!r} must be a day and a time, e.g. 'mon 08:00' or '1 08:00'")
    return parts[0].lower(), _parse_hhmm(parts[1])


class ScheduleSettings(Section):
    """Leader-only scheduled jobs. Every time of day is local to ``timezone``, never the host's."""

    enabled: bool = Field(True, description=(
        "Run the scheduled jobs (check-ins, reports, reconciliation, retention) on the leader."))
    timezone: str = Field("UTC", description=(
        "IANA time zone of the report times below and of the report periods (e.g. Europe/Berlin)."))
    checkin_minutes: int = Field(30, ge=0, le=1440, description=(
        "Minutes between check-ins proving the bot is alive (0 = off)."))
    daily_report_at: str = Field("08:00", description=(
        "Local time HH:MM of the daily PnL report for the previous day (empty = off)."))
    weekly_report: str = Field("mon 08:00", description=(
        "Weekday and local time of the weekly PnL report for the previous week, e.g. `mon 08:00` (empty = off)."))
    monthly_report: str = Field("1 08:00", description=(
        "Day of month (1-28 or `last`) and local time of the monthly PnL report for the previous month, e.g. `1 "
        "08:00` (empty = off)."))
    reconcile_minutes: int = Field(15, ge=0, le=1440, description=(
        "Minutes between reconciliations of venue balances and open orders with the database (0 = off)."))
    retention_days: int = Field(30, ge=1, le=3650, description=(
        "Heartbeats, delivered alerts, processed chat updates, expired confirmations and job runs older than "
        "this many days are deleted (never trades, orders, fills, ledger or audit, nor a confirmed command a "
        "crash interrupted)."))
    retention_at: str = Field("03:30", description="Local time HH:MM of the daily retention clean-up (empty = off).")
    misfire_grace_s: int = Field(300, ge=1, le=86400, description=(
        "A run missed by at most this many seconds (e.g. during a leader failover) still runs, once."))
    chart_days: int = Field(30, ge=1, le=3650, description=(
        "Days of equity curve in report charts, and the default of /chart."))
    backup_at: str = Field("", description=(
        "Local time HH:MM of the daily backup of the embedded SQLite database (empty = off; on PostgreSQL use "
        "pg_dump, see docs/operations.md)."))
    backup_dir: Path = Field(Path("data/backups"), description=(
        "Directory the scheduled backups are written to (relative to the working directory)."))
    backup_keep: int = Field(7, ge=1, le=1000, description=(
        "Scheduled backups kept in `schedule.backup_dir`; older ones are deleted after each backup."))

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _check_tz(v)))

    @field_validator("daily_report_at", "retention_at", "backup_at")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        if value:
            _parse_hhmm(value)
        return value

    @field_validator("weekly_report")
    @classmethod
    def _weekly(cls, value: str) -> str:
        if value:
            day, _ = _split_day_time(value)
            if day not in WEEKDAYS:
                raise ValueError(f"weekday {day!r} must be one of {', '.join(WEEKDAYS)}")
        return value

    @field_validator("monthly_report")
    @classmethod
    def _monthly(cls, value: str) -> str:
        if value:
            day, _ = _split_day_time(value)
            if day != "last" and not (day.isdigit() and 1 <= int(day) <= 28):
                raise ValueError(f"day of month {day!r} must be 1-28 or 'last' (29-31 would skip short months)")
        return value

    @property
    def daily_time(self) -> tuple[int, int] | None:
        return _parse_hhmm(self.daily_report_at) if self.daily_report_at else None

    @property
    def retention_time(self) -> tuple[int, int] | None:
        return _parse_hhmm(self.retention_at) if self.retention_at else None

    @property
    def backup_time(self) -> tuple[int, int] | None:
        return _parse_hhmm(self.backup_at) if self.backup_at else None

    @property
    def weekly_time(self) -> tuple[str, tuple[int, int]] | None:
        return _split_day_time(self.weekly_report) if self.weekly_report else None

    @property
    def monthly_time(self) -> tuple[str, tuple[int, int]] | None:
        return _split_day_time(self.monthly_report) if self.monthly_report else None


class LeaderSettings(Section):
    """The lease that picks the one replica running leader work (trading core, Telegram polling)."""

    ttl_s: float = Field(15.0, gt=0, le=600, description=(
        "Lease time: a crashed leader is replaced at most this long (plus renew_s) after its last renewal."))
    renew_s: float = Field(5.0, gt=0, le=300, description=(
        "Seconds between lease renewals by the leader (about ttl_s / 3)."))
    step_down_s: float = Field(10.0, gt=0, le=600, description=(
        "A leader that has not renewed for this long stops its leader work, before the lease can expire; must be "
        "between renew_s and ttl_s."))
    follower_poll_s: float = Field(1.0, gt=0, le=60, description=(
        "Seconds between a follower's attempts to take the lease (bounds the handover time after a graceful stop)."))

    @model_validator(mode="after")
    def _ordered(self) -> LeaderSettings:
        if not self.renew_s < self.step_down_s < self.ttl_s:
            raise ValueError("leader timings must satisfy renew_s < step_down_s < ttl_s")
        return self


class MetricsSettings(Section):
    """The operations listener every replica may serve: Prometheus metrics and the HTTP health endpoints
    (docs/metrics.md). Off by default; ``tradectl health`` works without it."""

    enabled: bool = Field(False, description=(
        "Serve /metrics (Prometheus), /livez and /readyz over HTTP on metrics.host:metrics.port."))
    host: str = Field("127.0.0.1", min_length=1, description=(
        "Address the listener binds to; 0.0.0.0 to be scraped from other hosts or containers (it has no "
        "authentication: keep it on a private network)."))
    port: int = Field(9464, ge=0, le=65535, description="TCP port of the listener (0: any free port, for tests).")
    readiness_timeout_s: float = Field(2.0, gt=0, le=30, description=(
        "/readyz answers 503 when the database does not answer its query within this many seconds."))
