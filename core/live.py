"""Live venues: building the adapter from the settings, and the preflight gate.

Live trading starts only when every preflight check passes. A key that can withdraw funds fails
the gate unless ``<venue>.allow_withdraw_keys`` is set — and even then the check is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import Settings
from exchanges.base import Exchange
from exchanges.preflight import PreflightCheck

WITHDRAW_CHECKS = ("no withdrawal permission", "no transfer permission")


class LiveConfigError(Exception):
    """The live venue cannot be built from the settings; the message names the key."""


def build_live_exchange(settings: Settings) -> Exchange:
    venue = settings.trading.venue
    cfg = settings.kraken if venue == "kraken" else settings.coinbase
    if cfg.api_key is None or cfg.api_secret is None:
        raise LiveConfigError(f"live trading on {venue} needs {venue}.api_key and {venue}.api_secret "
                              f"(TRADECTL_{venue.upper()}__API_KEY / __API_SECRET, a secrets file, or the vault)")
    urls = {k: v for k, v in (("rest_url", cfg.rest_url), ("ws_url", cfg.ws_url)) if v}
    if venue == "kraken":
        from exchanges.kraken import KrakenExchange

        return KrakenExchange(cfg.api_key, cfg.api_secret, **urls)  # type: ignore[return-value]
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
    exchange = exchange or build_live_exchange(settings)
    await exchange.start()
    try:
        checks = await exchange.preflight(list(settings.trading.pairs))  # type: ignore[attr-defined]
    finally:
        await exchange.stop()
    cfg = settings.kraken if settings.trading.venue == "kraken" else settings.coinbase
    return judge(checks, allow_withdraw=cfg.allow_withdraw_keys)
