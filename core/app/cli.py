"""The ``tradectl`` command line. Exit codes: 0 ok, 1 failure, 2 usage or configuration error."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.settings.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from core.settings.secrets import Redactor

app = typer.Typer(
    name="tradectl",
    help="Headless crypto trading service controlled from chat (Telegram, Discord, Slack, console).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema migrations, backup and restore.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")


def _mount_vault() -> None:
    from core.app.vault_cli import vault_app

    app.add_typer(vault_app, name="vault", help="Encrypted secrets vault (AES-256-GCM, scrypt).")


def _mount_backtest() -> None:
    from core.app.backtest_cli import register
    from core.app.tune_cli import register as register_tune

    register(app)
    register_tune(app)


def _mount_research() -> None:
    from core.app.data_cli import data_app
    from core.app.strategy_cli import strategy_app

    app.add_typer(data_app, name="data")
    app.add_typer(strategy_app, name="strategy")


def _mount_venues() -> None:
    from core.app.venues_cli import register

    register(app)


_mount_vault()
_mount_backtest()
_mount_research()
_mount_venues()


def _print_version(value: bool) -> None:
    if value:
        from core.app.app import version

        typer.echo(f"tradectl {version()}")
        raise typer.Exit(0)


@app.callback()
def _main(
    show_version: Annotated[
        bool, typer.Option("--version", help="Print the installed version and exit.", callback=_print_version,
                           is_eager=True)
    ] = False,
) -> None:
    """Headless crypto trading service controlled from chat (Telegram, Discord, Slack, console)."""

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (default: ./tradectl.toml if present).", dir_okay=False),
]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _config_error(exc: Exception) -> typer.Exit:
    typer.echo(f"configuration error: {exc}", err=True)
    return typer.Exit(EXIT_USAGE)


def _settings(config: Path | None, commands: Mapping[str, str] | None = None) -> Settings:
    try:
        return load_settings(config, commands=commands)
    except ConfigError as exc:
        raise _config_error(exc) from None


def _command_names() -> dict[str, str]:
    """Every chat command name and alias -> the command's name, from the registry the service uses
    (settings that name commands are checked against it)."""
    from bot.commands import build_registry

    return {name: spec.name for spec in build_registry() for name in (spec.name, *spec.aliases)}


def _check_strategies(settings: Settings) -> None:
    """Load the strategy set once: bad weights, unknown names and modules whose SHA-256 does not
    match refuse to start, naming the key."""
    from strategies import StrategyConfigError, load_strategies

    try:
        load_strategies(settings.strategies)
    except StrategyConfigError as exc:
        typer.echo(f"configuration error: strategies: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def _quiet_logging(settings: Settings) -> None:
    from core.runtime.logs import setup_logging

    setup_logging(level="WARNING", fmt="text")


@app.command()
def run(
    config: ConfigOpt = None,
    exit_after_input: Annotated[
        bool, typer.Option("--exit-after-input", help=(
            "Stop once the console input ends "
            "(for scripts: printf '/status\\n' | tradectl run --exit-after-input)."))
    ] = False,
) -> None:
    """Run the service: trading engine, chat adapters, scheduler, until SIGINT or SIGTERM."""
    from core.runtime.memory import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread starts
    # TA-Lib wraps its functions for pandas and polars when they can be imported (~60 MB of RSS);
    # the service only ever passes numpy arrays, so keep them out of this process.
    for optional in ("pandas", "polars"):
        sys.modules.setdefault(optional, None)  # type: ignore[arg-type]  # typeshed: modules only; None means "missing"
    from core.settings.secrets import Redactor

    redactor = Redactor()
    settings = _resolved_settings(config, redactor, commands=_command_names(), live_secrets=True)
    _check_strategies(settings)
    from core.app.app import run_service

    code = asyncio.run(run_service(settings, exit_after_input=exit_after_input, redactor=redactor))
    raise typer.Exit(code)


@app.command()
def health(config: ConfigOpt = None) -> None:
    """Exit 0 if an instance of this deployment on this host wrote a fresh heartbeat, else 1.

    Needs no credentials: suitable as a Docker HEALTHCHECK.
    """
    settings = _settings(config)
    _quiet_logging(settings)
    from core.ops.probe import check_health  # settings, the database and two Core queries: run every 15 s
    from persistence.db import Database

    async def _check() -> int:
        db = Database(settings.database.url)
        try:
            await db.start()
            report = await check_health(db, group=settings.service.group, stale_s=settings.service.heartbeat_stale_s)
        except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
            typer.echo(f"unhealthy: {exc}")
            return EXIT_FAIL
        finally:
            await db.stop()
        typer.echo(("healthy: " if report.healthy else "unhealthy: ") + report.detail)
        return EXIT_OK if report.healthy else EXIT_FAIL

    raise typer.Exit(asyncio.run(_check()))


@app.command()
def check(
    config: ConfigOpt = None,
    live: Annotated[bool, typer.Option("--live", help=(
        "Check the configured live venue "
        "(keys, withdrawal permission, clock skew, balances, minimum orders)."))] = False,
) -> None:
    """Preflight checks before trading. Exit 0 when every check passes, 1 otherwise."""
    if not live:
        typer.echo("nothing to check: pass --live to check the configured live venue", err=True)
        raise typer.Exit(EXIT_USAGE)
    settings = _resolved_settings(config)
    _quiet_logging(settings)
    if settings.trading.mode != "live":
        typer.echo("trading.mode is 'paper': set trading.mode = 'live' and trading.venue first", err=True)
        raise typer.Exit(EXIT_USAGE)
    from core.app.errors import StartupCause, StartupError
    from core.app.live import preflight

    try:
        gate = asyncio.run(preflight(settings))
    except StartupError as exc:
        if exc.cause is not StartupCause.SETTINGS:
            raise
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    for line in gate.lines:
        typer.echo(line)
    typer.echo("preflight passed" if gate.passed else "preflight FAILED: fix the lines marked FAIL before trading")
    raise typer.Exit(EXIT_OK if gate.passed else EXIT_FAIL)


def _secret_origins(settings: Settings) -> dict[str, str]:
    """Where each secret comes from, never its value: ``SecretStr`` settings by their secret source,
    and settings whose URL holds a secret (database password, webhook URL) by where they were set."""
    from core.app.errors import StartupError
    from core.app.startup_checks import open_secret_sources
    from core.settings.config import setting_origin
    from core.settings.secrets import Redactor, secret_paths
    from core.settings.url_secrets import find_url_secrets

    out: dict[str, str] = {}
    try:
        sources = open_secret_sources(settings, os.environ, Redactor())
    except (ConfigError, StartupError) as exc:  # already reported by _resolved_settings if it mattered
        out["error"] = type(exc).__name__
    else:
        for name in secret_paths(Settings):
            out[name] = sources.locate(name).origin or "not set"
    for secret in find_url_secrets(settings):
        out[secret.name] = setting_origin(settings, secret.path)
    return out


def _resolved_settings(config: Path | None, redactor: Redactor | None = None, *,
                       commands: Mapping[str, str] | None = None, live_secrets: bool = False) -> Settings:
    """Settings with secrets from files and the vault merged in (environment wins, see docs/security.md),
    then every start-up check (core/app/startup_checks.py): all before anything is opened.

    Configuration errors exit 2 with one line naming the key; a damaged vault exits 1.
    """
    settings = _settings(config, commands)
    from core.app.errors import StartupError
    from core.app.startup_checks import open_secret_sources, resolve_secrets, startup_problems
    from core.settings.secrets import Redactor, secret_paths, settings_overrides

    redactor = redactor if redactor is not None else Redactor()
    try:
        sources = open_secret_sources(settings, os.environ, redactor)
        required: list[str] = []
        if live_secrets and settings.trading.mode == "live":
            area = "ccxt" if settings.trading.venue.startswith("ccxt:") else settings.trading.venue
            required = [f"{area}.api_key", f"{area}.api_secret"]
        values = resolve_secrets(sources, secret_paths(Settings), required=required)
        settings = load_settings(config, overrides=settings_overrides(values), commands=commands)
    except StartupError as exc:
        typer.echo(f"secrets: {exc}", err=True)
        raise typer.Exit(EXIT_FAIL) from None
    except ConfigError as exc:
        raise _config_error(exc) from None
    problems = startup_problems(settings)
    if problems:
        raise _config_error(ConfigError("; ".join(problems)))
    return settings


def _db_failure(exc: BaseException) -> str:
    """One line saying why the database refused or failed; a bare ``TimeoutError`` (the database
    accepted no connection, or accepted it and never answered) carries no text of its own."""
    from persistence.migrate import one_line

    if isinstance(exc, TimeoutError) or isinstance(exc.__cause__, TimeoutError):
        return "the database did not answer within the connect timeout (TimeoutError)"
    return one_line(exc)


@db_app.command("upgrade")
def db_upgrade(
    config: ConfigOpt = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply schema migrations up to the latest revision (idempotent)."""
    settings = _settings(config)
    _quiet_logging(settings)
    from persistence.db import Database, redacted_url
    from persistence.migrate import current_revision, upgrade

    async def _up() -> int:
        db = Database(settings.database.url)
        try:
            await db.start()
            before = await upgrade(db, revision)  # serialised with concurrent upgrades (persistence/migrate.py)
            after = await current_revision(db)
        except Exception as exc:  # noqa: BLE001 - one line for the operator, no traceback
            typer.echo(f"upgrade failed on {redacted_url(db.url)}: {_db_failure(exc)}", err=True)
            return EXIT_FAIL
        finally:
            await db.stop()
        typer.echo(f"database {redacted_url(db.url)}: {before or 'empty'} -> {after}")
        return EXIT_OK

    raise typer.Exit(asyncio.run(_up()))


@db_app.command("current")
def db_current(config: ConfigOpt = None) -> None:
    """Print the schema revision of the database and the revision this code needs."""
    settings = _settings(config)
    _quiet_logging(settings)
    from persistence.db import Database, redacted_url
    from persistence.migrate import schema_status

    async def _cur() -> int:
        db = Database(settings.database.url)
        try:
            await db.start()
            current, head = await schema_status(db)
        except Exception as exc:  # noqa: BLE001
            typer.echo(f"cannot read the schema revision: {_db_failure(exc)}", err=True)
            return EXIT_FAIL
        finally:
            await db.stop()
        state = "up to date" if current == head else "out of date: run `tradectl db upgrade`"
        typer.echo(f"database {redacted_url(db.url)}: current {current or 'empty'}, head {head} ({state})")
        return EXIT_OK

    raise typer.Exit(asyncio.run(_cur()))


def _sqlite_file(settings: Settings, action: str, path: Path) -> Path:
    """The embedded database's file, or exit 1 with the PostgreSQL tool to use instead."""
    from core.ops.backup import pg_dump_command, pg_restore_command, sqlite_path
    from persistence.db import Database, DatabaseError

    try:
        backend = Database(settings.database.url).dialect
    except DatabaseError as exc:
        raise _config_error(exc) from None
    if backend == "postgresql":
        tool = pg_dump_command if action == "backup" else pg_restore_command
        typer.echo(f"tradectl db {action} works on the embedded SQLite database only; on PostgreSQL run "
                   f"(the password from PGPASSWORD or ~/.pgpass, see docs/operations.md):", err=True)
        typer.echo(f"  {tool(settings.database.url, path)}", err=True)
        raise typer.Exit(EXIT_FAIL)
    from core.ops.backup import BackupError

    try:
        return sqlite_path(settings.database.url)
    except BackupError as exc:
        typer.echo(f"{action} failed: {exc}", err=True)
        raise typer.Exit(EXIT_FAIL) from None


@db_app.command("backup")
def db_backup(
    path: Annotated[Path, typer.Argument(help="File to write the backup to (replaced whole if it exists).",
                                         dir_okay=False)],
    config: ConfigOpt = None,
) -> None:
    """Copy the embedded database to PATH while the service may be running (SQLite's backup API).

    On PostgreSQL it prints the pg_dump command to use instead and exits 1."""
    settings = _settings(config)
    _quiet_logging(settings)
    database = _sqlite_file(settings, "backup", path)
    from core.ops.backup import BackupError, backup_sqlite

    try:
        info = backup_sqlite(database, path)
    except (BackupError, OSError) as exc:
        typer.echo(f"backup failed: {exc}", err=True)
        raise typer.Exit(EXIT_FAIL) from None
    typer.echo(f"backup of {database} written to {info.describe()}")
    for table, rows in sorted(info.tables.items()):
        if rows:
            typer.echo(f"  {table}: {rows}")


@db_app.command("restore")
def db_restore(
    path: Annotated[Path, typer.Argument(help="A backup written by `tradectl db backup` (or a schedule).",
                                         dir_okay=False)],
    config: ConfigOpt = None,
) -> None:
    """Replace the embedded database with the backup at PATH; the current one is kept beside it.

    Refused while an instance runs with this data directory, and for a file that is not a tradectl
    database of a schema revision this version knows. On PostgreSQL it prints the pg_restore command."""
    settings = _settings(config)
    _quiet_logging(settings)
    database = _sqlite_file(settings, "restore", path)
    from core.app.instance_lock import running_instances
    from core.ops.backup import BackupError, restore_sqlite

    locks = settings.service.data_dir / "instances"
    alive = running_instances(locks)
    if alive:
        typer.echo(f"restore refused: tradectl is running on this database ({', '.join(alive)}); "
                   "stop it first, then restore", err=True)
        raise typer.Exit(EXIT_FAIL)
    try:
        result = restore_sqlite(path, database)
    except (BackupError, OSError) as exc:
        typer.echo(f"restore failed, nothing changed: {exc}", err=True)
        raise typer.Exit(EXIT_FAIL) from None
    typer.echo(f"restored {result.backup.describe()} to {database}")
    if result.kept is not None:
        typer.echo(f"the previous database is kept as {result.kept}")
    if result.needs_upgrade:
        typer.echo(f"its schema revision {result.backup.revision} is older than this version's {result.head}: "
                   "run `tradectl db upgrade` before `tradectl run`")


@config_app.command("check")
def config_check(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of TOML-like lines.")] = False,
) -> None:
    """Validate the configuration and print the effective settings, secrets redacted, and where
    each secret comes from (environment, file, vault) without its value.

    Runs the checks `tradectl run` runs before it opens anything: exit 2 names the key."""
    from core.settings.config import redacted_dump

    settings = _resolved_settings(config, commands=_command_names(), live_secrets=True)
    _check_strategies(settings)
    data = redacted_dump(settings)
    data["secrets"] = _secret_origins(settings)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for section, values in data.items():
        typer.echo(f"[{section}]")
        for key, value in values.items():
            typer.echo(f"{key} = {json.dumps(value)}")
        typer.echo("")


@config_app.command("docs")
def config_docs(
    fmt: Annotated[
        str, typer.Option("--format", help="`env` (.env.example) or `md` (settings reference table).")
    ] = "env",
) -> None:
    """Print every setting with its default and meaning, generated from the settings models."""
    from core.app.config_docs import env_example, markdown

    if fmt not in ("env", "md"):
        typer.echo("--format must be env or md", err=True)
        raise typer.Exit(EXIT_USAGE)
    typer.echo(env_example() if fmt == "env" else markdown(), nl=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        logging.getLogger("tradectl").exception("unexpected error")
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAIL)




if __name__ == "__main__":
    main()
