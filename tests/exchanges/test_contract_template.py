"""The shared venue contract, run against the template venue (exchanges/template): what a new venue's
contract test looks like, and the proof that the template a developer copies starts green."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from exchanges.base import Exchange, LiveExchange
from exchanges.template import TemplateExchange, TemplateMarket
from tests.exchanges.contract import ExchangeContract, venue_fixture


@asynccontextmanager
async def template_venue() -> AsyncIterator[tuple[TemplateExchange, TemplateMarket]]:
    """A started template venue and its controller (the in-memory market itself)."""
    venue = TemplateExchange()
    await venue.start()
    try:
        yield venue, venue.market
    finally:
        await venue.stop()


class TestTemplateContract(ExchangeContract):
    venue = venue_fixture(template_venue)


def test_the_template_is_an_exchange_not_a_live_one() -> None:
    venue: Exchange = TemplateExchange()  # mypy checks the Protocol statically, isinstance at run time
    assert isinstance(venue, Exchange)
    assert not isinstance(venue, LiveExchange)
