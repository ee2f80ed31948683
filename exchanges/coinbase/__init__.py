"""Coinbase Advanced Trade spot over REST and WebSocket.

``CoinbaseExchange`` implements :class:`exchanges.base.Exchange`; ``CoinbaseSigner`` and
``build_jwt`` produce the ES256 (or EdDSA) JWTs every request carries; ``CoinbaseSymbols`` maps
product ids (``BTC-USD``) to pairs (``BTC/USD``).
"""

from exchanges.coinbase.adapter import DEFAULT_REST_URL, DEFAULT_WS_URL, DEFAULT_WS_USER_URL, CoinbaseExchange
from exchanges.coinbase.auth import CoinbaseSigner, build_jwt, load_private_key, request_uri
from exchanges.coinbase.symbols import CoinbaseProduct, CoinbaseSymbols, to_pair, to_product_id

__all__ = [
    "DEFAULT_REST_URL",
    "DEFAULT_WS_URL",
    "DEFAULT_WS_USER_URL",
    "CoinbaseExchange",
    "CoinbaseProduct",
    "CoinbaseSigner",
    "CoinbaseSymbols",
    "build_jwt",
    "load_private_key",
    "request_uri",
    "to_pair",
    "to_product_id",
]
