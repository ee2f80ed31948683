"""Live venues: building the adapter from the settings, and the preflight gate.

Live trading starts only when every preflight check passes. A key that can withdraw funds fails
the gate unless ``<venue>.allow_withdraw_keys`` is set — and even then the check is reported.

Kraken's nonces are kept in the database (``api_nonces``, a high-water mark per hashed key), so a
restart, a replica whose clock is behind, or ``tradectl check --live`` next to a running service
never sends a nonce below one already used.
"""

from __future__ import annotations

from dataclasses import dataclass

import logging

from core.config import Settings
from exchanges.base import Exchange
from exchanges.preflight import PreflightCheck
from persistence.db import Database

log = logging.getLogger("tradectl.live")

WITHDRAW_CHECKS = ("no withdrawal permission", "no transfer permission")


class LiveConfigError(Exception):
    """The live venue cannot be built from the settings; the message names the key."""


def build_live_exchange(settings: Settings, *, db: Database | None) -> Exchange:
    """The configured live venue. ``db`` keeps Kraken's nonces across restarts and replicas; pass
    None only where nothing else can use the key (nonces are then in memory, and a warning says so)."""
    venue = settings.trading.venue
    cfg = settings.kraken if venue == "kraken" else settings.coinbase
    if cfg.api_key is None or cfg.api_secret is None:
        raise LiveConfigError(f"live trading on {venue} needs {venue}.api_key and {venue}.api_secret "
                              f"(TRADECTL_{venue.upper()}__API_KEY / __API_SECRET, a secrets file, or the vault)")
    urls = {k: v for k, v in (("rest_url", cfg.rest_url), ("ws_url", cfg.ws_url)) if v}
    if venue == "kraken":
        from exchanges.kraken import KrakenExchange, StoredNonces

        if db is None:
            log.warning("Kraken nonces are kept in memory only: a restart with the clock behind will be refused")
            return KrakenExchange(cfg.api_key, cfg.api_secret, **urls)  # type: ignore[return-value]
        nonces = StoredNonces(db, cfg.api_key.get_secret_value().strip())
        return KrakenExchange(cfg.api_key, cfg.api_secret, nonces=nonces, **urls)  # type: ignore[return-value]
    if venue == "coinbase":
        from exchanges.coinbase import CoinbaseExchange

        return CoinbaseExchange(cfg.api_key, cfg.api_secret, **urls)  # type: ignore[return-value]
    raise LiveConfigError(f"trading.venue {venue!r} is not a live venue")


@dataclass(frozen=True, slots=True)
class Gate:
    checks: list[PreflightCheck]
    passed: bool
    lines: list[str]


def judge(checks: list[PreflightCheck], *, allow_withdraw: bool) -> Gate:
    lines = []
    passed = True
    for c in checks:
        ok = c.ok
        note = ""
        if not ok and c.name in WITHDRAW_CHECKS and allow_withdraw and "unknown" not in c.detail:
            ok, note = True, " (allowed by allow_withdraw_keys)"
        passed = passed and ok
        lines.append(f"{'PASS' if ok else 'FAIL'}  {c.name}: {c.detail}{note}")
    return Gate(checks, passed, lines)


async def preflight(settings: Settings, exchange: Exchange | None = None) -> Gate:
    """``tradectl check --live``. It may run next to the service, so Kraken's nonces come from the
    service's database too (if it cannot be reached, the check continues with nonces in memory)."""
    db: Database | None = None
    if exchange is None:
        db = Database(settings.database.url)
        await db.start()
        exchange = build_live_exchange(settings, db=db)
    try:
        await exchange.start()
        try:
            checks = await exchange.preflight(list(settings.trading.pairs))  # type: ignore[attr-defined]
        finally:
            await exchange.stop()
    finally:
        if db is not None:
            await db.stop()
    cfg = settings.kraken if settings.trading.venue == "kraken" else settings.coinbase
    return judge(checks, allow_withdraw=cfg.allow_withdraw_keys)
