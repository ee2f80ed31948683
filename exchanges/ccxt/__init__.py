"""Any exchange ccxt reaches (the optional ``ccxt`` extra: ``pip install tradectl[ccxt]``).

``CcxtExchange`` implements :class:`exchanges.base.LiveExchange` over ccxt's async classes;
``catalog()`` lists ccxt's exchange ids with what each offers here (client order ids, WebSocket);
``unknown_venue`` words the error for an id ccxt does not have. Importing this package imports ccxt
(slow, memory-hungry): only the composition root does, and only when a ccxt venue is configured.
"""

from exchanges.ccxt._lib import VERSION
from exchanges.ccxt.adapter import CcxtExchange
from exchanges.ccxt.catalog import CLIENT_ID_EXCHANGES, VenueInfo, catalog, unknown_venue

__all__ = ["CLIENT_ID_EXCHANGES", "VERSION", "CcxtExchange", "VenueInfo", "catalog", "unknown_venue"]
