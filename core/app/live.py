"""Live venues: building the adapter from the settings, and the preflight gate.

Live trading starts only when every preflight check passes. A key that can withdraw funds fails
the gate unless ``<venue>.allow_withdraw_keys`` is set — and even then the check is reported.

Kraken's nonces are kept in the database (``api_nonces``, a high-water mark per hashed key), so a
restart, a replica whose clock is behind, or ``tradectl check --live`` next to a running service
never sends a nonce below one already used.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from core.app.errors import StartupError
from core.settings.config import Settings
from exchanges.base import LiveExchange
from exchanges.preflight import PreflightCheck
from persistence.db import Database

if TYPE_CHECKING:
    import httpx

    from core.ops.instruments import Instruments
    from exchanges.retry import RetryPolicy

log = logging.getLogger("tradectl.live")

WITHDRAW_CHECKS = ("no withdrawal permission", "no transfer permission")


class _Urls(TypedDict, total=False):
    rest_url: str
    ws_url: str


def build_live_exchange(settings: Settings, *, db: Database | None,
                        instruments: Instruments | None = None) -> LiveExchange:
    """The configured live venue. ``db`` keeps Kraken's nonces across restarts and replicas; pass
    None only where nothing else can use the key (nonces are then in memory, and a warning says so).
    ``instruments`` (the metrics, when enabled) time every REST request and count the retries."""
    return _build(settings, db=db, instruments=instruments)


class _Observed(TypedDict, total=False):
    transport: httpx.AsyncBaseTransport
    retry: RetryPolicy


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _observed(instruments: Instruments | None) -> _Observed:
    """The adapter arguments that measure it: a timing transport and a retry policy that reports.

    httpx reads proxies from the environment only for the transports it builds itself, so with a proxy
    configured there the requests are not timed (the retries still are) rather than sent around the proxy."""
    if instruments is None:
        return {}
    from exchanges._http import ObservedTransport
    from exchanges.retry import DEFAULT_RETRY, RetryPolicy

    observed: _Observed = {"retry": RetryPolicy(DEFAULT_RETRY.attempts, DEFAULT_RETRY.backoff, observer=instruments)}
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        log.warning("venue request latency is not measured: an HTTP proxy is set in the environment")
    else:
        observed["transport"] = ObservedTransport(instruments)
    return observed


def _build(settings: Settings, *, db: Database | None, instruments: Instruments | None) -> LiveExchange:
    venue = settings.trading.venue
    if venue.startswith("ccxt:"):  # any exchange ccxt reaches (optional extra, imported only here)
        from core.app.venues import build_ccxt_exchange

        return build_ccxt_exchange(settings)
    cfg = settings.kraken if venue == "kraken" else settings.coinbase
    if cfg.api_key is None or cfg.api_secret is None:
        raise StartupError.settings(f"live trading on {venue} needs {venue}.api_key and {venue}.api_secret "
                              f"(TRADECTL_{venue.upper()}__API_KEY / __API_SECRET, a secrets file, or the vault)")
    urls = _Urls()  # only those configured: the adapters' defaults are the venues' public endpoints
    if cfg.rest_url:
        urls["rest_url"] = cfg.rest_url
    if cfg.ws_url:
        urls["ws_url"] = cfg.ws_url
    if venue == "kraken":
        from exchanges.kraken import KrakenExchange, StoredNonces

        if db is None:
            log.warning("Kraken nonces are kept in memory only: a restart with the clock behind will be refused")
            return KrakenExchange(cfg.api_key, cfg.api_secret, **urls, **_observed(instruments))
        nonces = StoredNonces(db, cfg.api_key.get_secret_value().strip())
        return KrakenExchange(cfg.api_key, cfg.api_secret, nonces=nonces, **urls,
                              **_observed(instruments))
    if venue == "coinbase":
        from exchanges.coinbase import CoinbaseExchange

        return CoinbaseExchange(cfg.api_key, cfg.api_secret, **urls, **_observed(instruments))
    raise StartupError.settings(f"trading.venue {venue!r} is not a live venue")


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


async def preflight(settings: Settings, exchange: LiveExchange | None = None) -> Gate:
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
            checks = await exchange.preflight(list(settings.trading.pairs))
        finally:
            await exchange.stop()
    finally:
        if db is not None:
            await db.stop()
    from core.app.venues import allow_withdraw_keys

    return judge(checks, allow_withdraw=allow_withdraw_keys(settings))
