"""Kraken pair and asset names, both ways, from ``AssetPairs``.

One pair has up to five names: ours ``BTC/USD``; the REST key ``XXBTZUSD`` (what AssetPairs,
Ticker, OHLC and TradesHistory use); the ``altname`` ``XBTUSD`` (in order descriptions); the v1
``wsname`` ``XBT/USD``; and the WebSocket v2 symbol ``BTC/USD``. Assets likewise: ``XXBT``,
``XBT`` and ``BTC``. The table is built from the venue's own data, never guessed from prefixes,
except for assets no listed pair mentions (e.g. a staking balance).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from exchanges._http import dec
from exchanges.base import Market
from exchanges.errors import MalformedResponse, UnknownPair

# Kraken's own codes that differ from the usual ones.
_COMMON_CODE = {"XBT": "BTC", "XDG": "DOGE"}
_LEGACY_4 = {"XXBT", "XETH", "XLTC", "XXRP", "XXDG", "XXLM", "XXMR", "XZEC", "XETC", "XMLN", "XREP",
             "XXTZ", "ZUSD", "ZEUR", "ZGBP", "ZCAD", "ZJPY", "ZAUD", "ZCHF"}


def common_code(kraken_alt: str) -> str:
    """``XBT`` -> ``BTC``; other altnames are already the usual code."""
    return _COMMON_CODE.get(kraken_alt, kraken_alt)


@dataclass(frozen=True, slots=True)
class KrakenPair:
    pair: str          # BTC/USD
    rest_id: str       # XXBTZUSD
    altname: str       # XBTUSD
    wsname: str        # XBT/USD (WebSocket v1)
    ws_symbol: str     # BTC/USD (WebSocket v2)
    base_asset: str    # XXBT
    quote_asset: str   # ZUSD
    status: str
    market: Market


def _step(decimals: Any) -> Decimal:
    return Decimal(1).scaleb(-int(decimals))


def _first_tier_rate(tiers: Any, default: Decimal) -> Decimal:
    """Kraken lists fee tiers as ``[[volume, percent], ...]``; the first is the entry rate."""
    if isinstance(tiers, list) and tiers and isinstance(tiers[0], list) and len(tiers[0]) == 2:
        return dec(tiers[0][1], what="fee tier") / 100
    return default


def parse_asset_pair(rest_id: str, info: Mapping[str, Any]) -> KrakenPair:
    try:
        wsname = info["wsname"]
        base_alt, quote_alt = wsname.split("/")
        base, quote = common_code(base_alt), common_code(quote_alt)
        pair = f"{base}/{quote}"
        tick = info.get("tick_size")
        market = Market(
            pair=pair,
            base=base,
            quote=quote,
            venue_symbol=rest_id,
            min_qty=dec(info.get("ordermin", "0"), what="ordermin"),
            qty_step=_step(info["lot_decimals"]),
            price_tick=dec(tick, what="tick_size") if tick else _step(info["pair_decimals"]),
            min_notional=dec(info.get("costmin") or "0", what="costmin"),
            maker_fee=_first_tier_rate(info.get("fees_maker"), Decimal("0.0016")),
            taker_fee=_first_tier_rate(info.get("fees"), Decimal("0.0026")),
        )
        return KrakenPair(pair=pair, rest_id=rest_id, altname=info["altname"], wsname=wsname,
                          ws_symbol=pair, base_asset=info["base"], quote_asset=info["quote"],
                          status=str(info.get("status", "online")), market=market)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise MalformedResponse(f"AssetPairs: cannot read pair {rest_id!r}") from exc


class KrakenSymbols:
    """Lookup in every direction; unknown names raise :class:`UnknownPair`."""

    def __init__(self, pairs: Iterable[KrakenPair]) -> None:
        self._by_pair: dict[str, KrakenPair] = {}
        self._by_name: dict[str, KrakenPair] = {}
        self._assets: dict[str, str] = {}
        for p in pairs:
            self._by_pair.setdefault(p.pair, p)
            for name in (p.rest_id, p.altname, p.wsname, p.ws_symbol):
                self._by_name.setdefault(name, p)
            self._assets[p.base_asset] = p.market.base
            self._assets[p.quote_asset] = p.market.quote
        self._by_asset_code = {code: asset for asset, code in self._assets.items()}

    @classmethod
    def from_asset_pairs(cls, result: Mapping[str, Any]) -> KrakenSymbols:
        """From the ``result`` of ``/0/public/AssetPairs``; dark-pool (``.d``) pairs are left out."""
        if not isinstance(result, Mapping):
            raise MalformedResponse("AssetPairs: result is not an object")
        return cls(parse_asset_pair(key, info) for key, info in result.items()
                   if not key.endswith(".d") and isinstance(info, Mapping) and "wsname" in info)

    def __len__(self) -> int:
        return len(self._by_pair)

    @property
    def pairs(self) -> list[KrakenPair]:
        return list(self._by_pair.values())

    def markets(self) -> dict[str, Market]:
        return {p.pair: p.market for p in self._by_pair.values()}

    def by_pair(self, pair: str) -> KrakenPair:
        try:
            return self._by_pair[pair]
        except KeyError:
            raise UnknownPair(f"kraken does not list {pair}") from None

    def by_venue_name(self, name: str) -> KrakenPair:
        """From any Kraken spelling: ``XXBTZUSD``, ``XBTUSD``, ``XBT/USD`` or ``BTC/USD``."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownPair(f"kraken pair {name!r} is not in AssetPairs") from None

    def asset(self, kraken_code: str) -> str:
        """``XXBT`` -> ``BTC``, ``ZUSD`` -> ``USD``, ``USDT`` -> ``USDT``."""
        if kraken_code in self._assets:
            return self._assets[kraken_code]
        if kraken_code in _LEGACY_4:
            return common_code(kraken_code[1:])
        return common_code(kraken_code)

    def asset_code(self, asset: str) -> str:
        """``BTC`` -> ``XXBT`` (for calls that name an asset)."""
        return self._by_asset_code.get(asset, asset)
