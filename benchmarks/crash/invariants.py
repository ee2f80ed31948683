"""The invariants a crash must never break, read from the database alone (see crash_harness.py)."""

from __future__ import annotations

import html
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import select

from benchmarks.crash.process import AlertSink
from persistence.db import Database
from persistence.models import (
    ConfirmationRow,
    EquitySnapshot,
    FillRow,
    LedgerEntry,
    OrderRow,
    OutboxRow,
    PaperBalanceRow,
    PaperFillRow,
    PaperOrderRow,
    PositionRow,
    RuntimeValue,
    TradingStateRow,
)

PAIR = "BTC/USD"
START_BALANCES = {"USD": Decimal("10000")}


def _norm(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z.]+", "", html.unescape(text))


@dataclass
class Checker:
    """Invariants read from the database; remembers what must be settled by the next round."""

    db: Database
    group: str = "default"
    unapplied: set[str] = field(default_factory=set)  # venue fills not applied at the last check
    stale_new: set[str] = field(default_factory=set)  # orders `new` for a closed position at the last check
    candles: list[datetime] = field(default_factory=list)

    async def state(self) -> str:
        async with self.db.read() as s:
            row = await s.get(TradingStateRow, self.group)
        return row.state if row is not None else "running"

    async def cursor(self) -> str | None:
        async with self.db.read() as s:
            row = await s.get(RuntimeValue, f"last_candle:{PAIR}")
        return row.value if row is not None else None

    async def confirmed(self, nonce: str) -> bool:
        async with self.db.read() as s:
            row = await s.get(ConfirmationRow, nonce)
        return row is not None and row.outcome == "confirmed"

    async def outbox_pending(self) -> int:
        async with self.db.read() as s:
            rows = (await s.exec(select(OutboxRow.status))).all()
        return sum(1 for st in rows if st == "pending")

    async def check(self, *, settled: bool = False) -> list[str]:
        """Violations now (``settled``: the service stopped cleanly, everything must be applied)."""
        async with self.db.read() as s:
            orders = list((await s.exec(select(OrderRow))).all())
            fills = list((await s.exec(select(FillRow))).all())
            positions = list((await s.exec(select(PositionRow))).all())
            ledger = list((await s.exec(select(LedgerEntry))).all())
            snaps = list((await s.exec(select(EquitySnapshot.ts))).all())
            venue_orders = list((await s.exec(select(PaperOrderRow))).all())
            venue_fills = list((await s.exec(select(PaperFillRow))).all())
            balances = list((await s.exec(select(PaperBalanceRow))).all())
        out: list[str] = []
        by_coid = Counter(o.client_order_id for o in orders)
        out += [f"client order id {c} used by {n} orders" for c, n in by_coid.items() if n > 1]
        ours = {o.client_order_id: o for o in orders}
        venue_by_coid = {v.client_order_id: v for v in venue_orders}
        out += [f"venue order {v.client_order_id} has no order of ours" for v in venue_orders
                if v.client_order_id not in ours]
        for o in orders:
            v = venue_by_coid.get(o.client_order_id)
            if o.venue_order_id and (v is None or v.venue_order_id != o.venue_order_id):
                out.append(f"order {o.client_order_id} names venue order {o.venue_order_id}, "
                           "which the venue does not have")

        applied = Counter(f.fill_id for f in fills)
        out += [f"fill {f} applied {n} times" for f, n in applied.items() if n > 1]
        unapplied = {vf.fill_id for vf in venue_fills if vf.fill_id not in applied}
        out += [f"venue fill {f} still not applied after a restart" for f in sorted(self.unapplied & unapplied)]
        if settled:
            out += [f"venue fill {f} not applied at a clean stop" for f in sorted(unapplied - self.unapplied)]
        self.unapplied = unapplied

        fills_by_coid: dict[str, list[FillRow]] = defaultdict(list)
        for f in fills:
            fills_by_coid[f.client_order_id].append(f)
        for p in positions:
            mine = [f for o in orders if o.position_id == p.id for f in fills_by_coid[o.client_order_id]]
            bought = sum((f.qty for f in mine if f.side == "buy"), Decimal(0))
            sold = sum((f.qty for f in mine if f.side == "sell"), Decimal(0))
            if bought != p.entry_qty or sold != p.exit_qty or p.qty != p.entry_qty - p.exit_qty:
                out.append(f"position {p.id} ({p.status}): entry {p.entry_qty} exit {p.exit_qty} qty {p.qty}, "
                           f"but its fills bought {bought} and sold {sold}")

        expect: dict[str, Decimal] = defaultdict(Decimal, START_BALANCES)
        for e in ledger:
            expect[e.currency] += e.amount
        for vf in venue_fills:
            if vf.fill_id in unapplied:
                base, quote = vf.pair.split("/")
                sign = 1 if vf.side == "buy" else -1
                expect[base] += sign * vf.qty
                expect[quote] -= sign * vf.qty * vf.price
                expect[vf.fee_currency or quote] -= vf.fee
        for b in balances:
            if b.total != expect[b.currency]:
                out.append(f"balance {b.currency}: venue {b.total}, "
                           f"start + ledger + unapplied fills {expect[b.currency]}")

        count = Counter(snaps)
        out += [f"candle at {ts.isoformat()} processed {n} times" for ts, n in count.items() if n > 1]
        per_candle = Counter((vf.client_order_id, vf.ts) for vf in venue_fills)
        out += [f"order {c} filled {n} times on the candle at {ts.isoformat()}"
                for (c, ts), n in per_candle.items() if n > 1]
        out += self._gaps(sorted(count))

        closed = {p.id for p in positions if p.status == "closed"}
        stale = {o.client_order_id for o in orders if o.status == "new" and o.position_id in closed}
        out += [f"order {c} still `new` for a closed position after a restart" for c in sorted(self.stale_new & stale)]
        if settled:
            out += [f"order {c} left `new` for a closed position at a clean stop"
                    for c in sorted(stale - self.stale_new)]
        self.stale_new = stale
        return out

    def _gaps(self, processed: list[datetime]) -> list[str]:
        """Replayed candles between the first and last processed one that left no snapshot."""
        if len(processed) < 2:
            return []
        if not self.candles:
            from exchanges.replay import load_bundled

            self.candles = [c.ts for c in load_bundled(PAIR).candles]
        seen = set(processed)
        # a snapshot is stamped with the market clock at the candle: its open or its close time
        offset = max((timedelta(0), timedelta(hours=1)),
                     key=lambda d: sum(1 for t in self.candles[:200] if t + d in seen))
        expected = [t + offset for t in self.candles if processed[0] <= t + offset <= processed[-1]]
        missing = [t for t in expected if t not in seen]
        if not missing:
            return []
        return [f"{len(missing)} candles skipped (first {missing[0].isoformat()})"]

    async def outbox_last_id(self) -> int:
        async with self.db.read() as s:
            ids = (await s.exec(select(OutboxRow.id))).all()
        return max((i for i in ids if i is not None), default=0)

    async def outbox_violations(self, sink: AlertSink, up_to: int, kills: list[float]) -> tuple[list[str], list[str]]:
        """Every alert up to id ``up_to`` delivered (later ones were raised by the final stop itself),
        and none received more often than it was stored. Returns (violations, repeats explained by a
        SIGKILL (at monotonic times ``kills``) within a second after the first copy arrived: the one
        repeat docs/alerts.md admits, a crash between the platform accepting a message and its mark)."""
        async with self.db.read() as s:
            rows = list((await s.exec(select(OutboxRow))).all())
        out = [f"alert {r.id} ({r.event_type}) not delivered: {r.status} {r.last_error[:80]}"
               for r in rows if r.status != "delivered" and (r.id or 0) <= up_to]
        repeats: list[str] = []
        received = [_norm(m) for _, m in sink.messages]
        texts = Counter(_norm(json.loads(r.payload).get("text", "")) for r in rows)
        for text in sorted(texts, key=len, reverse=True):  # longest first: a short text may be inside a long one
            arrivals: list[float] = []
            for i, m in enumerate(received):
                while text and text in m:
                    arrivals.append(sink.messages[i][0])
                    m = m.replace(text, "", 1)
                received[i] = m
            if len(arrivals) <= texts[text]:
                continue
            first, later = arrivals[0], arrivals[1:]
            crash = any(first <= k <= first + 1.0 and any(a > k for a in later) for k in kills)
            line = f"alert delivered {len(arrivals)} times for {texts[text]} row(s): {text[:100]}"
            (repeats if crash and len(arrivals) == texts[text] + 1 else out).append(line)
        return out, repeats

