"""Which ccxt exchanges exist here, and what each offers this adapter (``tradectl venues``).

Client order ids: ccxt has no capability flag for them, so :data:`CLIENT_ID_EXCHANGES` lists the
exchange classes whose ``create_order`` (or the request builder it calls) reads ccxt's unified
``clientOrderId`` parameter and sends it to the venue (Kraken's ``cl_ord_id``, Binance's
``newClientOrderId``...), plus Coinbase, whose class needs the venue's own ``client_order_id`` key
(:data:`CLIENT_ID_PARAM`). It was read from ccxt 4.5.90's source; a class that extends one of them
(``binanceus`` extends ``binance``) inherits it. For any other exchange the
adapter falls back to remembering the venue's order id (see :mod:`exchanges.ccxt.adapter`).

WebSocket: market data streams when ``ccxt.pro`` (bundled with ccxt 4) has a class for the exchange that
can ``watchOHLCV``; otherwise the adapter polls REST.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exchanges.ccxt._lib import VERSION, async_support, pro

__all__ = ["CLIENT_ID_EXCHANGES", "CLIENT_ID_PARAM", "VenueInfo", "catalog", "client_id_param", "exchange_class",
           "has_client_ids", "unknown_venue"]

CLIENT_ID_EXCHANGES = frozenset("""
alpaca apex aster backpack bigone binance bingx bitfinex bitget bithumb bitrue bitstamp bittrade bitvavo
blockchaincom btcmarkets btse bybit bydfi coinbase coinbaseexchange coinbaseinternational cryptocom cryptomus
deepcoin delta derive dydx extended foxbit gate gemini grvt hashkey htx hyperliquid kraken krakenfutures kucoin
lbank lighter mexc modetrade ndax okx onetrading pacifica paradex phemex poloniex polymarket revolutx tokocrypto
upbit weex whitebit woo woofipro zebpay
""".split())
# Where ccxt drops the unified parameter and the venue's own name must be passed instead: ccxt's coinbase
# class omits ``clientOrderId`` and sends ``client_order_id`` = "ccxt-<uuid>" unless that key is given.
CLIENT_ID_PARAM: dict[str, str] = {"coinbase": "client_order_id"}


@dataclass(frozen=True, slots=True)
class VenueInfo:
    exchange_id: str
    client_order_ids: bool
    websocket: bool


def exchange_class(exchange_id: str, *, websocket: bool = False) -> Any:
    """ccxt's async class for ``exchange_id`` (its ``ccxt.pro`` class when ``websocket`` and one exists:
    that class is the REST class plus the ``watch_*`` streams). Raises KeyError for an unknown id."""
    if exchange_id not in async_support.exchanges:
        raise KeyError(exchange_id)
    streams = pro() if websocket else None
    if streams is not None and exchange_id in streams.exchanges:
        return getattr(streams, exchange_id)
    return getattr(async_support, exchange_id)


def client_id_param(cls: type) -> str:
    """The ``create_order`` parameter that carries our client order id for this class."""
    return next((CLIENT_ID_PARAM[k.__name__] for k in cls.__mro__ if k.__name__ in CLIENT_ID_PARAM), "clientOrderId")


def has_client_ids(cls: type) -> bool:
    """Whether ccxt sends our client order id to this exchange (the class or one it extends is listed)."""
    return any(getattr(k, "__name__", "") in CLIENT_ID_EXCHANGES for k in cls.__mro__)


def unknown_venue(exchange_id: str) -> str:
    """The message for a ccxt id that does not exist, with how to see the valid ones."""
    close = [e for e in async_support.exchanges if exchange_id and (exchange_id in e or e in exchange_id)][:5]
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return (f"ccxt {VERSION} has no exchange {exchange_id!r}{hint}; `tradectl venues` lists every id, "
            "and trading.venue is written ccxt:<id>, e.g. ccxt:kraken")


def streams_candles(exchange_id: str) -> bool:
    """Whether ccxt.pro has a class for the exchange *and* it streams candles (``watchOHLCV``): what the
    adapter needs for WebSocket market data (it builds one instance to read ``has``; no request)."""
    streams = pro()
    if streams is None or exchange_id not in streams.exchanges:
        return False
    return bool(getattr(streams, exchange_id)().has.get("watchOHLCV"))


def catalog() -> list[VenueInfo]:
    return [VenueInfo(i, has_client_ids(getattr(async_support, i)), streams_candles(i))
            for i in async_support.exchanges]
