"""WebSocket market-data ingestion: Kraken v2 ``ohlc`` and ``ticker`` messages per second, one core.

1. Parse + apply, no asyncio: the adapter's parser (``KrakenWsParser``: JSON with exact decimals
   -> ``Candle`` / ``Ticker``) over pre-serialised messages, each result applied to a per-pair store
   of latest values. Goal: >= 50,000 messages/s.
2. End to end (unless ``--no-e2e``): a local WebSocket server in another process streams the same
   messages; this process reads them with the ``websockets`` client and feeds them through the
   market session the adapter uses (parsing, candle closing, store), all on one event loop.

Messages mimic Kraken's (numbers as JSON floats, RFC 3339 times with nanoseconds): 20 pairs,
70 % candle updates (four updates per candle before the next opens), 30 % tickers.

Run from the project root: ``.venv/bin/python benchmarks/bench_ws_ingest.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exchanges._http import SystemClock  # noqa: E402
from exchanges.base import Candle, Ticker  # noqa: E402
from exchanges.kraken.ws import KrakenWsParser, MarketSession  # noqa: E402

GOAL_PER_S = 50_000
PAIRS = [f"{base}/USD" for base in ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "DOT", "LTC", "LINK", "AVAX",
                                    "ATOM", "XLM", "ETC", "BCH", "UNI", "AAVE", "FIL", "ALGO", "NEAR", "TRX")]


def make_messages(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    start = datetime(2024, 5, 1, tzinfo=UTC)
    price = {p: 10 + rng.random() * 50_000 for p in PAIRS}
    out: list[str] = []
    for i in range(count):
        pair = PAIRS[i % len(PAIRS)]
        price[pair] = round(price[pair] * (1 + rng.uniform(-0.001, 0.001)), 2)
        p = price[pair]
        if rng.random() < 0.7:
            minute = start + timedelta(minutes=i // (len(PAIRS) * 4))
            begin = minute.strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
            msg = {"channel": "ohlc", "type": "update", "timestamp": begin, "data": [{
                "symbol": pair, "open": p, "high": round(p * 1.001, 2), "low": round(p * 0.999, 2), "close": p,
                "trades": rng.randint(1, 50), "volume": round(rng.random() * 10, 8), "vwap": p,
                "interval_begin": begin, "interval": 1, "timestamp": begin}]}
        else:
            msg = {"channel": "ticker", "type": "update", "data": [{
                "symbol": pair, "bid": round(p - 0.05, 2), "bid_qty": round(rng.random(), 8),
                "ask": round(p + 0.05, 2), "ask_qty": round(rng.random(), 8), "last": p,
                "volume": round(rng.random() * 1000, 8), "vwap": p, "low": round(p * 0.98, 2),
                "high": round(p * 1.02, 2), "change": 1.5, "change_pct": 0.01,
                "timestamp": "2024-05-01T00:00:00.123456Z"}]}
        out.append(json.dumps(msg))
    return out


class LatestStore:
    """The simplest consumer: latest candle and ticker per pair."""

    def __init__(self) -> None:
        self.candles: dict[str, Candle] = {}
        self.tickers: dict[str, Ticker] = {}
        self.applied = 0

    def apply(self, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, Candle):
                self.candles[event.pair] = event
            elif isinstance(event, Ticker):
                self.tickers[event.pair] = event
            self.applied += 1


def bench_parse(messages: list[str], rounds: int) -> float:
    parser = KrakenWsParser({p: p for p in PAIRS}, 60, SystemClock())
    best = 0.0
    for _ in range(rounds):
        store = LatestStore()
        parse, apply = parser.parse, store.apply
        t0 = time.perf_counter()
        for raw in messages:
            apply(parse(raw))
        elapsed = time.perf_counter() - t0
        assert store.applied == len(messages)
        best = max(best, len(messages) / elapsed)
    return best


def _serve(port_queue: Any, messages: list[str]) -> None:
    from websockets.asyncio.server import serve

    async def handler(ws: Any) -> None:
        await ws.recv()  # the client's first subscribe
        for raw in messages:
            await ws.send(raw)
        await ws.close()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None, max_queue=None) as server:
            port_queue.put(server.sockets[0].getsockname()[1])
            await asyncio.Future()

    asyncio.run(main())


def bench_end_to_end(messages: list[str]) -> float:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from exchanges.base import Market
    from exchanges.kraken.symbols import KrakenPair

    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(target=_serve, args=(ports, messages), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    pairs = [KrakenPair(pair=p, rest_id=p, altname=p, wsname=p, ws_symbol=p, base_asset="", quote_asset="",
                        status="online", market=Market(p, p[:-4], "USD", p, Decimal(0), Decimal(1), Decimal(1)))
             for p in PAIRS]

    async def rest_candles(pair: str, since: datetime) -> list[Candle]:
        return []

    async def run() -> float:
        session = MarketSession(f"ws://127.0.0.1:{port}", pairs, 60, SystemClock(), rest_candles)
        store = LatestStore()
        received = 0
        async with connect(await session.url(), compression=None, max_queue=None, max_size=2**23) as ws:
            await session.on_open(ws)
            t0 = time.perf_counter()
            try:
                while True:
                    raw = await ws.recv()
                    store.apply(list(await session.on_message(raw)))
                    received += 1
            except ConnectionClosed:
                pass
            elapsed = time.perf_counter() - t0
        assert received == len(messages)
        return received / elapsed

    try:
        return asyncio.run(run())
    finally:
        server.terminate()
        server.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end WebSocket figure")
    args = parser.parse_args()
    messages = make_messages(args.messages)
    ohlc = [m for m in messages if '"ohlc"' in m]
    ticker = [m for m in messages if '"ticker"' in m]
    rate = bench_parse(messages, args.rounds)
    verdict = "OK" if rate >= GOAL_PER_S else "BELOW GOAL"
    print(f"parse+apply, no asyncio : {rate:>10,.0f} msg/s  ({len(messages):,} messages, best of {args.rounds}; "
          f"goal >= {GOAL_PER_S:,}/s: {verdict})")
    print(f"  ohlc updates only     : {bench_parse(ohlc, args.rounds):>10,.0f} msg/s")
    print(f"  ticker updates only   : {bench_parse(ticker, args.rounds):>10,.0f} msg/s")
    if not args.no_e2e:
        print(f"end to end via local WS : {bench_end_to_end(messages):>10,.0f} msg/s  "
              "(websockets client + MarketSession with candle closing; server in another process)")
    if rate < GOAL_PER_S:
        sys.exit(1)


if __name__ == "__main__":
    main()
