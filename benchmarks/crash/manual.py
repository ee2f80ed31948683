"""Manual-order rounds: a /buy, /sell or /cancel all typed on the console, confirmed, and the service
SIGKILLed a few milliseconds later; and the invariants such an order must keep, from the database.

What the product promises (docs/commands.md, bot/presses.py, core/trading/recovery.py):

- the press closes the confirmation once (one conditional UPDATE) and the command runs in the
  process that closed it; a confirmed /buy or /sell is never run again after a restart: an order row
  written before the crash is sent (again) with its own client order id, which the venue treats as
  idempotent, and one not written is not placed on the next start;
- a confirmation is marked executed once the command has run, with ``/<command> done`` or
  ``/<command> failed`` (a refusal); a confirmed command a crash interrupted is completed on start
  or recorded as not executed.

An order keeps no link to its confirmation, so the harness types one command at a time and reads the
highest order id before each: the manual orders (requested from the console, entry or close) written
after that mark and up to the next command's mark are that command's.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from sqlmodel import col, func, select

from benchmarks.crash.invariants import PAIR
from benchmarks.crash.process import Service, poll
from persistence.db import Database
from persistence.models import ConfirmationRow, OrderRow, PositionRow, RuntimeValue

KINDS = ("buy", "buy-quote", "limit", "sell", "cancel")
_ANSWER = re.compile(r"yes (?P<nonce>[A-Za-z0-9_-]{16})|^error: (?P<error>.*)$", re.M)
_REPLY = re.compile(r"^(ok|error): .*$|^No open orders", re.M)
OPEN = ("new", "submitted", "partially_filled")
_UNCANCELLABLE = ("stop", "trailing", "take_profit", "exit", "kill")  # /cancel all leaves these working
_STEP = Decimal("0.00000001")
_MIN_QTY = Decimal("0.0001")


@dataclass
class Asked:
    """One manual command typed on the console, and what the database showed around it."""

    round: int
    kind: str
    line: str
    mark: int  # the highest order id just before it was typed
    nonce: str | None = None  # None: refused before a confirmation was asked
    crashed: bool = False  # the service was SIGKILLed just after the confirmation
    at_crash: frozenset[str] = frozenset()  # its orders' client ids right after the crash
    cancellable: frozenset[str] = frozenset()  # /cancel all: the orders it would cancel
    open_at_crash: frozenset[str] = frozenset()  # ... and of those, the ones still open after the crash


@dataclass
class ManualRounds:
    """Types the commands and keeps what is needed to check them in later rounds."""

    db: Database
    asked: list[Asked] = field(default_factory=list)
    prices: dict[str, Decimal] = field(default_factory=dict)

    # -- reading the database -----------------------------------------------------------

    async def mark(self) -> int:
        async with self.db.read() as s:
            return int((await s.exec(select(func.max(OrderRow.id)))).one() or 0)

    async def manual_orders(self) -> list[OrderRow]:
        async with self.db.read() as s:
            rows = (await s.exec(select(OrderRow).where(col(OrderRow.requested_by).startswith("console:"),
                                                        col(OrderRow.purpose).in_(("entry", "close")))
                                 .order_by(col(OrderRow.id)))).all()
        return list(rows)

    async def _position_qty(self) -> Decimal | None:
        async with self.db.read() as s:
            row = (await s.exec(select(PositionRow).where(PositionRow.pair == PAIR,
                                                          PositionRow.status == "open"))).first()
        return row.qty if row is not None else None

    async def _cancellable(self) -> frozenset[str]:
        async with self.db.read() as s:
            rows = (await s.exec(select(OrderRow.client_order_id).where(
                col(OrderRow.status).in_(OPEN), col(OrderRow.purpose).not_in(_UNCANCELLABLE)))).all()
        return frozenset(rows)

    async def still_open(self, ids: frozenset[str]) -> list[str]:
        async with self.db.read() as s:
            return list((await s.exec(select(OrderRow.client_order_id).where(
                col(OrderRow.client_order_id).in_(ids), col(OrderRow.status).in_(OPEN)))).all())

    async def _price(self) -> Decimal | None:
        """The close of the candle the replay is at (the cursor names its open time or its close time)."""
        if not self.prices:
            from exchanges.replay import load_bundled

            for c in load_bundled(PAIR).candles:
                self.prices[c.ts.isoformat()] = c.close
        async with self.db.read() as s:
            row = await s.get(RuntimeValue, f"last_candle:{PAIR}")
        return self.prices.get(row.value) if row is not None else None

    # -- typing the commands ------------------------------------------------------------

    async def line(self, kind: str, rng: random.Random) -> str | None:
        """The command for ``kind`` at the current market, or None (no position to sell, no price)."""
        if kind == "buy":
            return f"/buy {PAIR} {rng.choice(('0.01', '0.02', '0.005'))}"
        if kind == "buy-quote":
            return f"/buy {PAIR} {rng.choice(('250USD', '100 USD', '400USD'))}"
        if kind == "cancel":
            return "/cancel all"
        price = await self._price()
        if kind == "limit" and price is not None:
            limit = (price * (1 - Decimal(rng.uniform(0.002, 0.03)))).quantize(Decimal("0.01"))
            amount = rng.choice(("0.01", "250USD"))
            return f"/buy {PAIR} {amount} @ {limit}"
        held = await self._position_qty()
        if kind == "sell" and held is not None and held > 0:
            part = (held * Decimal(rng.uniform(0.2, 0.8))).quantize(_STEP, ROUND_DOWN)
            qty = held if part < _MIN_QTY or held - part < _MIN_QTY else part
            return f"/sell {PAIR} {qty.normalize():f}"
        return None

    async def ask(self, svc: Service, n: int, kind: str, line: str, *, setup: bool = False) -> Asked:
        """Type ``line`` and, if a confirmation is asked, confirm it (``setup``: and wait for the reply)."""
        asked = Asked(n, kind, line, await self.mark(), cancellable=await self._cancellable())
        self.asked.append(asked)
        start = len(svc.output())
        await svc.send(line)
        m = await svc.wait_output(_ANSWER, start, 15)
        if m is None or m.group("nonce") is None:
            return asked
        asked.nonce = m.group("nonce")
        after = len(svc.output())
        await svc.send(f"yes {asked.nonce}")
        if setup:
            await svc.wait_output(_REPLY, after, 15)
        return asked

    async def setup(self, svc: Service, n: int, kind: str, rng: random.Random) -> None:
        """What a round needs first: a position to sell, an order to cancel (a limit 5-8% from the market,
        so that it still rests when the restart has to finish the cancel)."""
        if kind == "sell" and await self._position_qty() is None:
            await self.ask(svc, n, "buy-quote", f"/buy {PAIR} 250USD", setup=True)
        if kind == "cancel":
            price = await self._price()
            held = await self._position_qty()
            if price is None:
                return
            if held is not None and held > 0:  # a resting limit sell above the market
                part = max((held / 2).quantize(_STEP, ROUND_DOWN), _MIN_QTY)
                limit = (price * Decimal(rng.uniform(1.05, 1.08))).quantize(Decimal("0.01"))
                await self.ask(svc, n, "sell", f"/sell {PAIR} {part.normalize():f} @ {limit}", setup=True)
            else:  # a resting limit buy below it
                limit = (price * Decimal(rng.uniform(0.92, 0.95))).quantize(Decimal("0.01"))
                await self.ask(svc, n, "limit", f"/buy {PAIR} 250USD @ {limit}", setup=True)

    async def then_crash(self, svc: Service, rng: random.Random, n: int, kind: str,
                         at_close: bool) -> tuple[Asked | None, float]:
        """Type a ``kind`` command, confirm it and SIGKILL the service: 0-200 ms after the confirmation
        was typed, or 0-80 ms after the database shows it used (``at_close``: at that moment). A command
        refused before its confirmation (no position, one already open) is typed again, up to five times; a
        /sell whose position the strategy closed meanwhile buys one again first."""
        await self.setup(svc, n, kind, rng)
        asked: Asked | None = None
        for _ in range(5):
            line = await self.line(kind, rng)
            if line is None and kind == "sell":  # the strategy closed the position meanwhile: buy one again
                await self.setup(svc, n, kind, rng)
                line = await self.line(kind, rng)
            if line is not None:
                asked = await self.ask(svc, n, kind, line)
                if asked.nonce is not None:
                    break
            await asyncio.sleep(0.2)
        if asked is not None and asked.nonce is not None:
            nonce = asked.nonce
            if at_close or rng.random() < 0.5:  # the press recorded, then 0-80 ms into running the command
                await poll(lambda: self._closed(nonce), 10, 0.001)
                await asyncio.sleep(0 if at_close else rng.uniform(0, 0.08))
            else:  # before, while or after the press is recorded
                await asyncio.sleep(rng.uniform(0, 0.2))
        at = svc.signal(signal.SIGKILL)
        await svc.wait(30)
        if asked is not None:
            asked.crashed = True
            asked.at_crash = frozenset(o.client_order_id for o in await self._window(asked))
            asked.open_at_crash = frozenset(await self.still_open(asked.cancellable))
        return asked, at

    async def _closed(self, nonce: str) -> bool:
        async with self.db.read() as s:
            row = await s.get(ConfirmationRow, nonce)
        return row is not None and row.used_at is not None

    async def _window(self, asked: Asked) -> list[OrderRow]:
        return window(self.asked, asked, await self.manual_orders())


def window(asks: list[Asked], asked: Asked, orders: list[OrderRow]) -> list[OrderRow]:
    """The manual orders written after ``asked`` was typed and before the next command was."""
    i = next(k for k, a in enumerate(asks) if a is asked)
    upper = asks[i + 1].mark if i + 1 < len(asks) else None
    return [o for o in orders if o.id is not None and o.id > asked.mark and (upper is None or o.id <= upper)]
