"""The paper venue: simulated fills on real prices, persisted so a restart continues.

``PaperExchange`` implements :class:`exchanges.base.Exchange`; ``MarketRules`` configures each pair;
``FillOn`` chooses when market orders fill. See :mod:`exchanges.paper.exchange` for the execution
model and :mod:`exchanges.paper.model` for the price, fee and reservation arithmetic.
"""

from exchanges.paper.exchange import PaperExchange
from exchanges.paper.model import FillOn, MarketRules

__all__ = ["FillOn", "MarketRules", "PaperExchange"]
