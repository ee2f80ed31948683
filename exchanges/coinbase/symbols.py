"""Coinbase product ids (``BTC-USD``) <-> our pairs (``BTC/USD``), with each product's trading rules.

Only ``SPOT`` products become markets; futures and perpetuals (``BTC-PERP-INTX``) are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from exchanges._http import dec
from exchanges.base import Market
from exchanges.errors import MalformedResponse, UnknownPair

# Coinbase Advanced's entry fee tier; the account's real tier comes from /transaction_summary.
DEFAULT_MAKER_FEE = Decimal("0.006")
DEFAULT_TAKER_FEE = Decimal("0.012")


def to_product_id(pair: str) -> str:
    return pair.replace("/", "-")


def to_pair(product_id: str) -> str:
    return product_id.replace("-", "/", 1)


@dataclass(frozen=True, slots=True)
class CoinbaseProduct:
    pair: str
    product_id: str
    tradable: bool
    market: Market


def parse_product(raw: Mapping[str, Any], maker_fee: Decimal = DEFAULT_MAKER_FEE,
                  taker_fee: Decimal = DEFAULT_TAKER_FEE) -> CoinbaseProduct:
    try:
        product_id = raw["product_id"]
        base = raw.get("base_currency_id") or product_id.split("-")[0]
        quote = raw.get("quote_currency_id") or product_id.split("-")[1]
        pair = f"{base}/{quote}"
        if to_product_id(pair) != product_id:
            raise MalformedResponse(f"Coinbase product {product_id!r} does not match {base}/{quote}")
        market = Market(
            pair=pair, base=base, quote=quote, venue_symbol=product_id,
            min_qty=dec(raw["base_min_size"], what="base_min_size"),
            qty_step=dec(raw["base_increment"], what="base_increment"),
            price_tick=dec(raw.get("price_increment") or raw["quote_increment"], what="price_increment"),
            min_notional=dec(raw.get("quote_min_size") or "0", what="quote_min_size"),
            maker_fee=maker_fee, taker_fee=taker_fee,
        )
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedResponse(f"Coinbase product: missing field ({exc!r})") from exc
    tradable = not (raw.get("trading_disabled") or raw.get("is_disabled") or raw.get("cancel_only")
                    or raw.get("view_only"))
    return CoinbaseProduct(pair=pair, product_id=product_id, tradable=bool(tradable), market=market)


class CoinbaseSymbols:
    def __init__(self, products: Iterable[CoinbaseProduct]) -> None:
        self._by_pair = {p.pair: p for p in products}
        self._by_id = {p.product_id: p for p in self._by_pair.values()}

    @classmethod
    def from_products(cls, payload: Mapping[str, Any], maker_fee: Decimal = DEFAULT_MAKER_FEE,
                      taker_fee: Decimal = DEFAULT_TAKER_FEE) -> CoinbaseSymbols:
        products = payload.get("products") if isinstance(payload, Mapping) else None
        if not isinstance(products, list):
            raise MalformedResponse("Coinbase products: no 'products' list")
        return cls(parse_product(p, maker_fee, taker_fee) for p in products
                   if isinstance(p, Mapping) and p.get("product_type", "SPOT") == "SPOT")

    def __len__(self) -> int:
        return len(self._by_pair)

    @property
    def products(self) -> list[CoinbaseProduct]:
        return list(self._by_pair.values())

    def markets(self) -> dict[str, Market]:
        return {p.pair: p.market for p in self._by_pair.values()}

    def by_pair(self, pair: str) -> CoinbaseProduct:
        try:
            return self._by_pair[pair]
        except KeyError:
            raise UnknownPair(f"coinbase does not list {pair}") from None

    def by_product_id(self, product_id: str) -> CoinbaseProduct:
        try:
            return self._by_id[product_id]
        except KeyError:
            raise UnknownPair(f"coinbase product {product_id!r} is not a listed spot product") from None
