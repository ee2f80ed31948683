"""Live venues are typed as :class:`LiveExchange`: the preflight gate and the private stream are part of
a Protocol, so the composition root calls them without a cast; paper and the template are not live."""

from __future__ import annotations

from decimal import Decimal

from exchanges.base import Exchange, LiveExchange
from exchanges.coinbase import CoinbaseExchange
from exchanges.kraken import KrakenExchange
from exchanges.paper import MarketRules, PaperExchange
from persistence.db import Database


def test_kraken_and_coinbase_are_live_exchanges() -> None:
    venues: list[LiveExchange] = [KrakenExchange(), CoinbaseExchange()]  # checked statically by mypy too
    for venue in venues:
        assert isinstance(venue, LiveExchange) and isinstance(venue, Exchange)


def test_the_paper_venue_is_an_exchange_but_not_live() -> None:
    paper = PaperExchange(Database("sqlite+aiosqlite:///:memory:"), {"BTC/USD": MarketRules()},
                          starting_balances={"USD": Decimal(1)})
    assert isinstance(paper, Exchange)
    assert not isinstance(paper, LiveExchange)
