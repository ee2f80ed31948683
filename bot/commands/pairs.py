"""/pairs: the traded pairs and their state; ``/pairs add X`` and ``/pairs remove X`` change them.

Looking is for every role; changing is for admins, with a confirmation that says what will happen. The
engine applies the change on its own loop (:class:`~core.trading.AddPair`, :class:`~core.trading.RemovePair`):
it checks the pair against the venue's markets, back-fills its history, subscribes the feed and writes
the pairs overlay a restart reads. Before asking, the same checks run as a dry run (``preview``), so a
pair the venue does not list, one already traded or a removal that needs a choice is refused at once.

Not done: the registry gives a command one role, so the admin rule for ``add``/``remove`` is checked
here (before the confirmation and again when it runs); a viewer's attempt is in the audit log as a
refused ``/pairs``, not as ``denied``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot import format as fmt
from bot.context import CommandContext
from bot.errors import CommandError
from bot.identity import Role
from bot.prompts import Prompt, expiry
from bot.registry import arg, command
from bot.reply import Reply, Table, Text
from core.trading import AddPair, IntentResult, ListPairs, PairView, RemovePair

Action = Literal["add", "remove"]
Then = Literal["close", "keep"]
HINT = "Admins: /pairs add ETH/USD, /pairs remove ETH/USD (close|keep when it has a position)."


@dataclass(frozen=True)
class PairsArgs:
    # arg() is the registry's dataclasses.field; ruff cannot tell a Literal alias is immutable
    action: Action | None = arg(None, help="add or remove (admin); without it: the list")  # noqa: RUF009
    pair: str | None = arg(None, kind="pair", help="the pair, e.g. ETH/USD")
    then: Then | None = arg(None, help="remove with an open position: close it at market, or keep managing "  # noqa: RUF009
                                        "it until it closes")


def _change(ctx: CommandContext, args: PairsArgs, *, preview: bool) -> AddPair | RemovePair:
    """The intent for ``args``, or a clear refusal (wrong role, missing pair, a pair the settings still name)."""
    if args.action is None:
        raise CommandError(f"Say what to do with {args.pair}: /pairs add {args.pair} or /pairs remove {args.pair}.")
    if ctx.role < Role.ADMIN:
        raise CommandError(f"/pairs {args.action} needs the admin role; you are {ctx.role.label}. "
                           "/pairs alone shows the pairs.")
    if args.pair is None:
        raise CommandError(f"Which pair? e.g. /pairs {args.action} ETH/USD")
    if args.action == "add":
        if args.then is not None:
            raise CommandError(f"/pairs add takes no {args.then}: /pairs add {args.pair}")
        return AddPair(requested_by=ctx.requested_by, pair=args.pair, preview=preview)
    limited = sorted(who for who, pairs in ctx.settings.trader_pairs.items() if args.pair in pairs)
    if limited:
        raise CommandError(f"{args.pair} is in chat.trader_pairs for {', '.join(limited)}; take it out of the "
                           "settings first (a restart would refuse a trader limited to a pair not traded).")
    return RemovePair(requested_by=ctx.requested_by, pair=args.pair, then=args.then, preview=preview)


def _refused(result: IntentResult) -> None:
    if not result.ok:
        raise CommandError("\n".join((result.message, *result.details)))


async def pairs_prompt(ctx: CommandContext, args: Any, expires_at: datetime) -> Prompt:
    """The same checks as the change itself (a dry run), then what confirming will do."""
    change = _change(ctx, args, preview=True)
    _refused(await ctx.services.submit(change))
    pair = change.pair
    if isinstance(change, AddPair):
        what = (f"{pair} is traded from now on: its history is loaded first, then the strategies scan it with "
                "each new candle.")
        action = f"Add {pair}"
    elif change.then == "close":
        what = f"Sells the open {pair} position at market, then stops trading {pair}."
        action = f"Close and remove {pair}"
    elif change.then == "keep":
        what = (f"No new entries in {pair}; its open position keeps its stops and exits, and {pair} is dropped "
                "once it is closed.")
        action = f"Remove {pair}"
    else:
        what = f"Stops trading {pair} (no open position)."
        action = f"Remove {pair}"
    then = f" {change.then}" if isinstance(change, RemovePair) and change.then else ""
    lines = [f"Confirm /pairs {args.action} {pair}{then}.", what, "Kept across restarts.", expiry(ctx, expires_at)]
    return Prompt("\n".join(lines), action)


def _row(v: PairView) -> tuple[str, ...]:
    entries = "yes" if v.entries_stopped_by is None else f"no, {v.entries_stopped_by.value}"
    candle = f"{fmt.age(v.candle_age_s)} ago" if v.candle_age_s is not None else "none yet"
    return (v.pair, "none" if v.position is None else v.position.value, entries, candle, v.venue_symbol or fmt.DASH)


@command("pairs", role=Role.VIEWER, mutates=True, confirm=True, args=PairsArgs, prompt=pairs_prompt,
         group="Orders & pairs", confirm_when=lambda args: args.action is not None,
         help="Traded pairs and their state; admins add or remove one",
         usage="/pairs lists them. /pairs add ETH/USD starts trading a pair the venue lists; /pairs remove ETH/USD "
               "stops it (with an open position add close or keep). Changes are kept across restarts.")
async def pairs(ctx: CommandContext, args: PairsArgs) -> Reply:
    if args.action is None and args.pair is None:
        result = await ctx.services.submit(ListPairs(requested_by=ctx.requested_by))
        _refused(result)
        rows = tuple(_row(v) for v in result.pairs)
        return Reply((Table("Traded pairs", ("pair", "position", "entries", "last candle", "venue"), rows,
                            key=("pair",), optional=("venue", "last candle")),
                      Text(HINT)))
    result = await ctx.services.submit(_change(ctx, args, preview=False))
    _refused(result)
    return Reply((Text(result.message, "success"), *((Text("\n".join(result.details)),) if result.details else ())))
