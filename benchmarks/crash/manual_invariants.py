"""The invariants of manual orders, read from the database after every round (see manual.py for what
the product promises and how an order is tied to the command that asked for it):

- a confirmed command places at most one order (never a second one for one confirmation, across any
  number of restarts), on the side it asked for; /cancel places none;
- an order exists only if its command's confirmation is recorded as confirmed;
- a confirmation recorded as executed ``done`` has its order; one recorded ``failed`` (a refusal)
  has no order working or filled;
- a command the crash interrupted gets no order row after the crash (what was written before it is
  sent with its own client order id; what was not is not placed on the next start);
- a ``/cancel all`` confirmed before the crash leaves none of the orders it would cancel open after
  the restart, unless its confirmation is recorded as not executed (or as a refusal).

Positions opened and reduced by hand are checked with every other one by :class:`~benchmarks.crash.
invariants.Checker` (quantities from fills, fills once, balances from the ledger).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import col, select

from benchmarks.crash.manual import Asked, ManualRounds, window
from benchmarks.crash.process import poll
from persistence.models import ConfirmationRow, OrderRow

_RECOVERED = "recovery finished"  # the engine's log line once its recovery phase is over
_WORKING = ("submitted", "partially_filled", "filled")


def _side(kind: str) -> str:
    return "sell" if kind == "sell" else "buy"


async def _confirmations(rounds: ManualRounds) -> dict[str, ConfirmationRow]:
    nonces = [a.nonce for a in rounds.asked if a.nonce is not None]
    async with rounds.db.read() as s:
        rows = (await s.exec(select(ConfirmationRow).where(col(ConfirmationRow.nonce).in_(nonces)))).all()
    return {r.nonce: r for r in rows}


def _not_executed(c: ConfirmationRow) -> bool:
    """Recorded as not carried out: a refusal, or the restart saying it did not run it."""
    return c.executed_at is not None and ("failed" in c.result or "not executed" in c.result.lower()
                                          or c.result.lower().startswith("refused"))


def _order_checks(a: Asked, mine: list[OrderRow], c: ConfirmationRow | None) -> list[str]:
    where = f"{a.line!r} (round {a.round}, confirmation {a.nonce or 'never asked'})"
    ids = ", ".join(o.client_order_id for o in mine)
    if a.kind == "cancel":
        return [f"{where}: /cancel wrote orders {ids}"] if mine else []
    out: list[str] = []
    if len(mine) > 1:
        out.append(f"{where}: {len(mine)} orders for one confirmation: {ids}")
    if mine and (c is None or c.outcome != "confirmed"):
        out.append(f"{where}: order {ids} placed, but the confirmation is "
                   f"{'missing' if c is None else (c.outcome or 'still open')}")
    out += [f"{where}: order {o.client_order_id} is a {o.side}" for o in mine if o.side != _side(a.kind)]
    if c is not None and c.executed_at is not None:
        if c.result.endswith("done") and not mine:
            out.append(f"{where}: recorded as executed ({c.result}), but no order was placed")
        if _not_executed(c):
            out += [f"{where}: recorded as {c.result!r}, but order {o.client_order_id} is {o.status} "
                    f"({o.filled_qty} filled)" for o in mine if o.status in _WORKING or o.filled_qty > 0]
    if a.crashed:
        late = sorted({o.client_order_id for o in mine} - a.at_crash)
        if late:
            out.append(f"{where}: order {', '.join(late)} written after the crash that interrupted it "
                       "(placed by a restart)")
    return out


async def check(rounds: ManualRounds) -> list[str]:
    """Violations now (the service is stopped: the harness checks after each signal)."""
    orders = await rounds.manual_orders()
    confs = await _confirmations(rounds)
    out: list[str] = []
    placed: set[int] = set()
    for a in rounds.asked:
        mine = window(rounds.asked, a, orders)
        placed |= {o.id for o in mine if o.id is not None}
        c = confs.get(a.nonce) if a.nonce is not None else None
        out += _order_checks(a, mine, c)
        if a.kind == "cancel" and c is not None and c.executed_at is not None and c.result.endswith("done"):
            left = await rounds.still_open(a.cancellable)
            out += [f"{a.line!r} (round {a.round}) recorded as done, but order {o} is still open" for o in left]
    out += [f"manual order {o.client_order_id} ({o.side}) placed before any command was typed"
            for o in orders if o.id not in placed]
    return out


async def settle_cancel(rounds: ManualRounds, a: Asked, log: Callable[[], str], timeout: float = 30.0) -> list[str]:
    """After the restart that followed a crash just after a confirmed ``/cancel all``: once the restart's
    recovery has finished (``log`` says so), none of the orders it would cancel is open, or the
    confirmation says it was not run."""
    async def recovered() -> bool:
        return _RECOVERED in log()

    await poll(recovered, timeout, 0.05)
    c = (await _confirmations(rounds)).get(a.nonce or "")
    if c is None or c.outcome != "confirmed" or _not_executed(c):
        return []
    left = await rounds.still_open(a.cancellable)
    if not left:
        return []
    state = f"recorded as {c.result!r}" if c.executed_at is not None else "not recorded as executed"
    return [f"{a.line!r} (round {a.round}, confirmation {a.nonce}) confirmed before the crash, but "
            f"{', '.join(sorted(left))} still open once the restart's recovery finished ({state})"]
