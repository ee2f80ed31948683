"""Kraken spot over REST and WebSocket v2.

``KrakenExchange`` implements :class:`exchanges.base.Exchange`; ``sign`` and the nonce sources
(``StoredNonces`` in the database for the service, ``NonceSource`` in memory) are the request-signing
pieces; ``KrakenSymbols`` maps pair names every way Kraken spells them.
"""

from exchanges.kraken.adapter import DEFAULT_REST_URL, DEFAULT_WS_AUTH_URL, DEFAULT_WS_URL, KrakenExchange
from exchanges.kraken.auth import Nonces, NonceSource, sign, venue_client_id
from exchanges.kraken.nonces import StoredNonces
from exchanges.kraken.ratelimit import TIERS, DecayCounter, Tier
from exchanges.kraken.symbols import KrakenPair, KrakenSymbols
from exchanges.kraken.ws import KrakenWsParser

__all__ = [
    "DEFAULT_REST_URL",
    "DEFAULT_WS_AUTH_URL",
    "DEFAULT_WS_URL",
    "TIERS",
    "DecayCounter",
    "KrakenExchange",
    "KrakenPair",
    "KrakenSymbols",
    "KrakenWsParser",
    "NonceSource",
    "Nonces",
    "StoredNonces",
    "Tier",
    "sign",
    "venue_client_id",
]
