"""Venues and what every layer shares about them: the ``Exchange`` and ``LiveExchange`` protocols
(:mod:`exchanges.base`), the root of the project's exceptions and the venue errors
(:mod:`exchanges.errors`), clocks, retries and backoff; the paper venue, the replay feed, Kraken,
Coinbase, ccxt and a template venue in subpackages.

The package itself exports nothing: import the module or subpackage you need, so that loading the
exception root does not load every venue's client library.
"""

__all__: list[str] = []
