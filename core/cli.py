"""The ``tradectl`` command line. Exit codes: 0 ok, 1 failure, 2 usage or configuration error."""

from __future__ import annotations

import asyncio
import json
import os
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from core.config import ConfigError, Settings, load_settings

app = typer.Typer(
    name="tradectl",
    help="Headless crypto trading service controlled from chat (Telegram, Discord, Slack, console).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")


def _mount_vault() -> None:
    from core.vault_cli import vault_app

    app.add_typer(vault_app, name="vault", help="Encrypted secrets vault (AES-256-GCM, scrypt).")


def _mount_backtest() -> None:
    from core.backtest_cli import register

    register(app)


_mount_vault()
_mount_backtest()

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (default: ./tradectl.toml if present).", dir_okay=False),
]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


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
    from core.logs import setup_logging

    setup_logging(level="WARNING", fmt="text")


@app.command()
def run(
    config: ConfigOpt = None,
    exit_after_input: Annotated[
        bool, typer.Option("--exit-after-input", help="Stop once the console input ends (for scripts: printf '/status\\n' | tradectl run --exit-after-input).")
    ] = False,
) -> None:
    """Run the service: trading engine, chat adapters, scheduler, until SIGINT or SIGTERM."""
    # TA-Lib wraps its functions for pandas and polars when they can be imported (~60 MB of RSS);
    # the service only ever passes numpy arrays, so keep them out of this process.
    for optional in ("pandas", "polars"):
        sys.modules.setdefault(optional, None)  # type: ignore[arg-type]
    settings = _settings(config)
    _check_strategies(settings)
    from core.app import run_service
    from core.secrets import MissingSecrets, Redactor, SecretSourceError, SecretSources, secret_paths, settings_overrides
    from core.vault import VaultError

    redactor = Redactor()
    try:
        sources = SecretSources.from_env(os.environ, vault_path=settings.vault.path,
                                         secrets_dir=settings.vault.secrets_dir, redactor=redactor)
        values = sources.resolve_all(secret_paths(Settings))
        settings = load_settings(config, overrides=settings_overrides(values))
        if settings.trading.mode == "live":
            venue = settings.trading.venue
            sources.require([f"{venue}.api_key", f"{venue}.api_secret"])
    except MissingSecrets as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except (SecretSourceError, VaultError) as exc:
        typer.echo(f"secrets: {exc}", err=True)
        raise typer.Exit(EXIT_FAIL) from None
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    code = asyncio.run(run_service(settings, exit_after_input=exit_after_input, redactor=redactor))
    raise typer.Exit(code)


@app.command()
def health(config: ConfigOpt = None) -> None:
    """Exit 0 if an instance of this deployment on this host wrote a fresh heartbeat, else 1.

    Needs no credentials: suitable as a Docker HEALTHCHECK.
    """
    settings = _settings(config)
    _quiet_logging(settings)
    from core.heartbeat import check_health
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
    live: Annotated[bool, typer.Option("--live", help="Check the configured live venue (keys, withdrawal permission, clock skew, balances, minimum orders).")] = False,
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
    from core.live import LiveConfigError, preflight

    try:
        gate = asyncio.run(preflight(settings))
    except LiveConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    for line in gate.lines:
        typer.echo(line)
    typer.echo("preflight passed" if gate.passed else "preflight FAILED: fix the lines marked FAIL before trading")
    raise typer.Exit(EXIT_OK if gate.passed else EXIT_FAIL)


def _secret_origins(settings: Settings) -> dict[str, str]:
    from core.secrets import Redactor, SecretSources, secret_paths

    try:
        sources = SecretSources.from_env(os.environ, vault_path=settings.vault.path,
                                         secrets_dir=settings.vault.secrets_dir, redactor=Redactor())
    except Exception as exc:  # noqa: BLE001 - already reported by _resolved_settings if it mattered
        return {"error": type(exc).__name__}
    out = {}
    for name in secret_paths(Settings):
        found = sources.locate(name)
        out[name] = found.origin or "not set"
    return out


def _resolved_settings(config: Path | None, redactor: object = None) -> Settings:
    """Settings with secrets from files and the vault merged in (environment wins, see docs/security.md)."""
    settings = _settings(config)
    from core.secrets import Redactor, SecretSourceError, SecretSources, secret_paths, settings_overrides
    from core.vault import VaultError

    try:
        sources = SecretSources.from_env(os.environ, vault_path=settings.vault.path,
                                         secrets_dir=settings.vault.secrets_dir,
                                         redactor=redactor if redactor is not None else Redactor())  # type: ignore[arg-type]
        values = sources.resolve_all(secret_paths(Settings))
        return load_settings(config, overrides=settings_overrides(values))
    except (SecretSourceError, VaultError) as exc:
        typer.echo(f"secrets: {exc}", err=True)
        raise typer.Exit(EXIT_FAIL) from None
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


@db_app.command("upgrade")
def db_upgrade(
    config: ConfigOpt = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply schema migrations up to the latest revision (idempotent)."""
    settings = _settings(config)
    _quiet_logging(settings)
    from persistence.db import Database, redacted_url
    from persistence.migrate import current_revision, one_line, upgrade

    async def _up() -> int:
        db = Database(settings.database.url)
        try:
            await db.start()
            before = await upgrade(db, revision)  # serialised with concurrent upgrades (persistence/migrate.py)
            after = await current_revision(db)
        except Exception as exc:  # noqa: BLE001 - one line for the operator, no traceback
            typer.echo(f"upgrade failed on {redacted_url(db.url)}: {one_line(exc)}", err=True)
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
            typer.echo(f"cannot read the schema revision: {exc}", err=True)
            return EXIT_FAIL
        finally:
            await db.stop()
        state = "up to date" if current == head else "out of date: run `tradectl db upgrade`"
        typer.echo(f"database {redacted_url(db.url)}: current {current or 'empty'}, head {head} ({state})")
        return EXIT_OK

    raise typer.Exit(asyncio.run(_cur()))


@config_app.command("check")
def config_check(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of TOML-like lines.")] = False,
) -> None:
    """Validate the configuration and print the effective settings, secrets redacted, and where
    each secret comes from (environment, file, vault) without its value."""
    settings = _resolved_settings(config)
    _check_strategies(settings)
    data = settings.model_dump(mode="json")
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
    fmt: Annotated[str, typer.Option("--format", help="`env` (.env.example) or `md` (settings reference table).")] = "env",
) -> None:
    """Print every setting with its default and meaning, generated from the settings models."""
    from core.config_docs import env_example, markdown

    if fmt not in ("env", "md"):
        typer.echo("--format must be env or md", err=True)
        raise typer.Exit(EXIT_USAGE)
    typer.echo(env_example() if fmt == "env" else markdown(), nl=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last resort: one clear line, details in the log
        logging.getLogger("tradectl").exception("unexpected error")
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAIL)




if __name__ == "__main__":
    main()
