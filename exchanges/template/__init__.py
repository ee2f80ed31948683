"""A venue to copy: the smallest complete :class:`exchanges.base.Exchange`, green on the contract suite.

Start a new venue with ``cp -r exchanges/template exchanges/<venue>`` and
``cp tests/exchanges/test_contract_template.py tests/exchanges/<venue>/test_<venue>_contract.py``; the copy
passes the shared contract suite (``tests/exchanges/contract.py``) before you change a line. Then replace
the in-memory :class:`TemplateMarket` with the venue's API one ``# venue call`` at a time, and the test's
controller with a fake server on loopback (``tests/exchanges/fakes/``), keeping the suite green. A venue
for real money also implements :class:`exchanges.base.LiveExchange` (``preflight`` through
:func:`exchanges.preflight.run_preflight`, ``private_events``).

Nothing in the service builds this venue; it lives here, under the same mypy ``--strict``, ruff and
import-linter rules as Kraken and Coinbase, so a copy starts clean on every checker too.
"""

from exchanges.template.adapter import DEFAULT_MARKETS, TemplateExchange
from exchanges.template.market import MarketRefusal, TemplateMarket

__all__ = ["DEFAULT_MARKETS", "MarketRefusal", "TemplateExchange", "TemplateMarket"]
