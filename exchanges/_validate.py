"""Checks every live adapter makes before an order leaves the process.

The venue would refuse these too, but a local refusal costs no request, no rate-limit budget and
no ambiguity about whether something was created.
"""

from __future__ import annotations

from exchanges.base import Market, OrderRequest, OrderType
from exchanges.errors import InvalidOrder


def check_order(request: OrderRequest, market: Market, venue: str) -> None:
    if request.qty <= 0:
        raise InvalidOrder(f"quantity must be positive, got {request.qty}")
    if request.type is OrderType.LIMIT and (request.limit_price is None or request.limit_price <= 0):
        raise InvalidOrder("a limit order needs a positive limit price")
    if request.qty < market.min_qty:
        raise InvalidOrder(f"{request.pair}: {request.qty} is below {venue}'s minimum {market.min_qty}")
    if request.limit_price is not None and request.qty * request.limit_price < market.min_notional:
        raise InvalidOrder(f"{request.pair}: order value {request.qty * request.limit_price} is below {venue}'s "
                           f"minimum {market.min_notional} {market.quote}")
