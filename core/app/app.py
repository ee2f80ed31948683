"""The application bootstrap: the one place where components are built and wired.

Start order: database (and schema check) -> heartbeat -> trading engine -> chat adapters.
Stop order is the reverse. SIGINT/SIGTERM stop the service within
``service.shutdown_timeout_s`` and exit 0; a component that fails stops it with exit 1.
Configuration errors never get here: ``tradectl run`` runs the start-up checks
(core/app/startup_checks.py) first and exits 2 before the database is opened.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

from core.app.errors import StartupError
from core.runtime.lifecycle import CallbackComponent, Component, TaskFailed, stop_all
from core.runtime.logs import setup_logging
from core.settings.config import Settings
from persistence.db import Database, redacted_url
from persistence.migrate import schema_status, upgrade

log = logging.getLogger("tradectl.app")


def version() -> str:
    """The installed package's version (``project.version`` in pyproject.toml), as ``tradectl --version``
    prints it and each heartbeat records it; ``unknown`` in a source tree that was never installed."""
    try:
        return package_version("tradectl")
    except PackageNotFoundError:
        return "unknown"


async def prepare_database(settings: Settings) -> Database:
    db = Database(settings.database.url, echo=settings.database.echo)
    await db.start()
    try:
        await db.ping()
        current, head = await schema_status(db)
        if current != head:
            auto = settings.database.auto_upgrade
            if auto == "always" or (auto == "embedded" and db.is_sqlite):
                log.info("upgrading schema %s -> %s on %s", current or "empty", head, redacted_url(db.url))
                await upgrade(db)
            else:
                raise StartupError(
                    f"database schema is at {current or 'empty'} but this version needs {head}: "
                    "run `tradectl db upgrade` first"
                )
    except BaseException:
        await db.stop()
        raise
    return db


def configure_logging(settings: Settings, redact: Any = None) -> None:
    lg = settings.logging
    setup_logging(level=lg.level, fmt=lg.format, file=lg.file, max_bytes=lg.max_bytes, backups=lg.backups,
                  redact=redact)


async def run_service(settings: Settings, *, exit_after_input: bool = False, redactor: Any = None) -> int:
    from core.settings.config import collect_settings_secrets
    from core.settings.secrets import Redactor

    redactor = redactor if redactor is not None else Redactor()
    for value in collect_settings_secrets(settings):  # SecretStr values and secrets inside URLs
        redactor.register(value)
    configure_logging(settings, redact=redactor.redact)

    stop_event = asyncio.Event()
    failures: list[TaskFailed] = []

    def on_failure(failure: TaskFailed) -> None:
        failures.append(failure)
        stop_event.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_event.set)

    components: list[Component] = []
    try:
        db = await prepare_database(settings)
    except StartupError as exc:
        log.error("%s", exc)
        return 1
    except Exception as exc:  # noqa: BLE001
        log.error("cannot open the database at %s: %s", redacted_url(settings.database.url), exc)
        return 1
    components.append(CallbackComponent("database", db.start, db.stop))

    from core.app.wiring import build_components

    try:
        built = await build_components(settings, db, on_failure=on_failure, stop_event=stop_event,
                                       exit_after_input=exit_after_input, version=version(), redact=redactor.redact)
        for comp in built:
            await comp.start()
            components.append(comp)
            log.info("started %s", comp.name)
    except Exception as exc:
        log.error("start-up failed: %s", exc, exc_info=not isinstance(exc, StartupError))
        await stop_all(components, settings.service.shutdown_timeout_s)
        return 1

    log.info("tradectl %s running (group %s, mode %s, venue %s)", version(), settings.service.group,
             settings.trading.mode, settings.trading.venue)
    await stop_event.wait()
    log.info("stopping")
    await stop_all(components, settings.service.shutdown_timeout_s)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    if failures:
        log.error("stopped because %s", failures[0])
        return 1
    log.info("stopped cleanly")
    return 0
