"""Which venue the settings name, and building a ccxt one (``trading.venue = "ccxt:<id>"``).

ccxt is an optional extra and a heavy import (about 1.2 s and 100 MB of memory), so it is imported here only
when a ccxt venue is actually configured: the embedded default and the native venues never load it.
"""

from __future__ import annotations

from core.app.errors import StartupError
from core.settings.config import Settings
from exchanges.base import LiveExchange

CCXT_PREFIX = "ccxt:"
INSTALL_HINT = "pip install 'tradectl[ccxt]'"


def is_ccxt(venue: str) -> bool:
    return venue.startswith(CCXT_PREFIX)


def allow_withdraw_keys(settings: Settings) -> bool:
    venue = settings.trading.venue
    if is_ccxt(venue):
        return settings.ccxt.allow_withdraw_keys
    return (settings.kraken if venue == "kraken" else settings.coinbase).allow_withdraw_keys


def build_ccxt_exchange(settings: Settings) -> LiveExchange:
    """The ccxt venue the settings name. Errors name the key to fix (and how to list valid ids)."""
    venue = settings.trading.venue
    exchange_id = venue.removeprefix(CCXT_PREFIX)
    try:
        from exchanges.ccxt import CcxtExchange, unknown_venue
        from exchanges.ccxt.catalog import exchange_class
    except ImportError:
        raise StartupError.settings(
            f"trading.venue = {venue!r} needs ccxt, an optional extra: {INSTALL_HINT}") from None
    try:
        exchange_class(exchange_id)
    except KeyError:
        raise StartupError.settings(f"trading.venue: {unknown_venue(exchange_id)}") from None
    cfg = settings.ccxt
    if cfg.api_key is None or cfg.api_secret is None:
        raise StartupError.settings(f"live trading on {venue} needs ccxt.api_key and ccxt.api_secret "
                              "(TRADECTL_CCXT__API_KEY / __API_SECRET, a secrets file, or the vault)")
    from exchanges.errors import ExchangeError

    try:
        return CcxtExchange(exchange_id, cfg.api_key, cfg.api_secret, cfg.password, sandbox=cfg.sandbox,
                            rest_url=cfg.rest_url, ws_url=cfg.ws_url, websocket=cfg.websocket,
                            poll_interval_s=cfg.poll_interval_s)
    except ExchangeError as exc:  # e.g. ccxt.sandbox on an exchange without test URLs
        raise StartupError.settings(f"trading.venue {venue!r}: {exc}") from exc
