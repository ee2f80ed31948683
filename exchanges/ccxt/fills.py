"""``fills_since`` over ccxt's ``fetch_my_trades``, with a cursor that never repeats a fill.

The cursor is ``"<ms>|<id>,<id>..."``: the newest trade time seen and the ids of the trades at exactly
that millisecond. The next page asks for trades since that time (ccxt's ``since`` is inclusive) and
drops the ids already returned, so two fills in the same millisecond are neither lost nor repeated.

Our client order id for a trade comes from the order it belongs to: remembered when we placed it,
else read once from the venue (``fetch_order``) and cached; a trade of an order that is not ours keeps
the venue's order id in its place.

ccxt returns one page per call, and Kraken and Coinbase answer newest first (Kraken 50 trades a page,
Coinbase 100): a call follows the venue's own paging (Kraken ``ofs``, Coinbase's ``cursor``) to older
pages until a page comes back short, empty, without a next cursor or with nothing new, and returns
every new fill at once, so more than a page of fills between two calls loses none. Bounded by
:data:`MAX_PAGES`; past it the older fills are not read and a warning says so (the first call, with
no cursor, reads at most that much history). Other venues get one page per call: for those that answer
oldest first from ``since`` (Binance) the cursor itself moves to the next page on the next call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from exchanges.base import Fill, FillsPage
from exchanges.ccxt import convert
from exchanges.ccxt._lib import ccxt
from exchanges.ccxt._venue import CcxtVenue
from exchanges.errors import ExchangeError

log = logging.getLogger(__name__)

MAX_PAGES = 20
KRAKEN_PAGE = 50  # TradesHistory's fixed page size


def parse_cursor(cursor: str | None) -> tuple[int | None, set[str]]:
    if not cursor:
        return None, set()
    ms, _, ids = cursor.partition("|")
    try:
        return int(ms), set(filter(None, ids.split(",")))
    except ValueError:
        raise ExchangeError(f"not a ccxt fills cursor: {cursor!r}") from None


class FillCursor:
    def __init__(self, venue: CcxtVenue) -> None:
        self.venue = venue
        # set once the exchange refuses fetch_my_trades without a symbol (Binance): then the pairs this
        # process placed orders in are asked one by one
        self.symbol_required = False

    async def _trades(self, since_ms: int | None) -> list[dict[str, Any]]:
        if not self.symbol_required:
            try:
                return await self._paged(since_ms)
            except ExchangeError as exc:
                if not isinstance(exc.__cause__, ccxt.ArgumentsRequired):
                    raise
                self.symbol_required = True
        out: list[dict[str, Any]] = []
        markets = await self.venue.markets()
        for symbol in sorted({markets[p].venue_symbol for p in self.venue.traded_pairs if p in markets}):
            # the default binds the loop's symbol; mypy cannot infer a lambda with a default argument
            out += await self.venue.q(lambda s=symbol: self._raw(s, since_ms, {}), "fetch_my_trades")  # type: ignore[misc]
        return out

    async def _paged(self, since_ms: int | None) -> list[dict[str, Any]]:
        """Every trade since ``since_ms``, following the venue's pages to older trades (see the module doc)."""
        out: list[dict[str, Any]] = []
        ids: set[str] = set()
        params: dict[str, Any] = {}
        fetched = 0
        for _ in range(MAX_PAGES):
            def fetch(p: dict[str, Any] = params) -> Any:
                return self._raw(None, since_ms, p)
            page: list[dict[str, Any]] = await self.venue.q(fetch, "fetch_my_trades")
            fetched += len(page)
            fresh = [r for r in page if str(r.get("id")) not in ids]
            ids.update(str(r.get("id")) for r in fresh)
            out += fresh
            following = self._older(page, fetched)
            if not fresh or following is None:
                return out
            params = following
        log.warning("%s: more than %d pages of fills since %s; older ones were not read",
                    self.venue.exchange_id, MAX_PAGES, since_ms)
        return out

    def _older(self, page: Sequence[dict[str, Any]], fetched: int) -> dict[str, Any] | None:
        """The parameters that ask for the page after ``page`` (older trades), or None: no more, or unknown."""
        venue = str(getattr(self.venue.ex, "id", ""))
        if venue == "kraken":
            return {"ofs": fetched} if len(page) >= KRAKEN_PAGE else None
        if venue == "coinbase":  # ccxt puts the response's cursor into one trade's info
            cursor = next((str(r["info"]["cursor"]) for r in page
                           if isinstance(r.get("info"), dict) and r["info"].get("cursor")), None)
            return {"cursor": cursor} if cursor else None
        return None

    async def _raw(self, symbol: str | None, since_ms: int | None, params: dict[str, Any]) -> Any:
        return await self.venue.ex.fetch_my_trades(symbol, since_ms, None, dict(params))

    async def _cid(self, venue_order_id: str, symbol: str) -> str:
        known = self.venue.cid_for(venue_order_id)
        if known is not None or not venue_order_id:
            return known or venue_order_id
        try:
            raw = await self.venue.q(lambda: self.venue.ex.fetch_order(venue_order_id, symbol), "fetch_order")
        except ExchangeError:
            return venue_order_id
        cid = str(raw.get("clientOrderId") or venue_order_id)
        self.venue.remember(cid, venue_order_id)
        return cid

    async def page(self, cursor: str | None) -> FillsPage:
        since_ms, seen = parse_cursor(cursor)
        rows = [r for r in await self._trades(since_ms) if r.get("timestamp") is not None and r.get("id") is not None]
        new = [r for r in rows if since_ms is None or int(r["timestamp"]) > since_ms
               or (int(r["timestamp"]) == since_ms and str(r["id"]) not in seen)]
        new.sort(key=lambda r: (int(r["timestamp"]), str(r["id"])))
        fills: list[Fill] = []
        for r in new:
            fills.append(convert.fill(r, await self._cid(str(r.get("order") or ""), str(r["symbol"]))))
        if not new:
            return FillsPage([], cursor)
        top = int(new[-1]["timestamp"])
        ids = {str(r["id"]) for r in new if int(r["timestamp"]) == top} | (seen if top == since_ms else set())
        return FillsPage(fills, f"{top}|{','.join(sorted(ids))}")
