"""Alerts as people read them: one formatter per event kind, producing a platform-free :class:`Alert`.

The engine's events carry values (Decimal amounts, pairs, sides, actor keys); this module turns them
into a title, a few lines and key-value fields, in the one number format (:mod:`bot.format`) and the
service's time zone. The senders render an :class:`Alert` natively (Telegram HTML, a Discord embed
coloured by severity, Slack blocks); its :meth:`Alert.text_lines` are the plain text every platform
also gets, through the text policy (:func:`bot.notify.senders.alert_text`).

Strategy internals (a signal's score, a stop's trigger arithmetic) are shown only with
``notify.verbose``; by default an alert says what happened in plain words. Leadership changes name
the server, not the lease: "This server (vm-1) took over trading".

Formatting works from the event's data as stored in the outbox (JSON: amounts arrive as strings) or
from a live event's ``to_dict()``. Quantities and prices of a pair are shown to the ``qty_step`` and
``price_tick`` the event carries, exactly as the replies show them; a row stored before events
carried them gets :mod:`bot.format`'s defaults. A kind without a formatter, or data it cannot read
(a row written by another version), falls back to the event's own summary line: an alert is never
lost to formatting.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bot import format as fmt
from core.trading import ExitKind, known_purpose

log = logging.getLogger("tradectl.notify.formats")

SEVERITIES = ("info", "warning", "error", "critical")
# One mark per severity, at the start of an alert and of each line of a digest.
MARK = {"info": "•", "warning": "⚠️", "error": "❗", "critical": "🛑"}
STATE_MARK = {"running": "🟢", "paused": "⏸", "killed": "🛑"}
MAX_DIGEST_LINE = 300


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert, ready for any platform: a title, lines of text and key-value fields."""

    kind: str
    severity: str
    title: str
    lines: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    ts: datetime | None = None
    when: str = ""  # the local time of ``ts`` as shown ("14:02 CEST")
    time: str = ""  # the same without the zone ("14:02"), for digest lines under a heading naming it
    zone: str = ""  # the zone's abbreviation ("CEST")

    def text_lines(self) -> tuple[str, ...]:
        """The alert as plain lines: title, lines, then ``name: value`` per field."""
        return (self.title, *self.lines, *(f"{k}: {v}" for k, v in self.fields))

    def headline(self) -> str:
        """Title and first line (the most telling one; the figures are in the single alert's fields)."""
        return self.title + (f": {self.lines[0]}" if self.lines else "")

    def one_line(self, limit: int = MAX_DIGEST_LINE) -> str:
        """The alert on one line of a digest: local time, severity mark, :meth:`headline`."""
        text = self.headline()
        head = f"{self.time} {MARK.get(self.severity, '•')} " if self.time else f"{MARK.get(self.severity, '•')} "
        return fmt.clip(head + text, limit)


@dataclass(frozen=True, slots=True)
class Style:
    """How alerts are written for one deployment."""

    timezone: str = "UTC"
    verbose: bool = False  # strategy internals (signal reasons, trigger arithmetic)
    names: Mapping[str, str] = field(default_factory=dict)  # actor key ("telegram:1") -> display name


# -- values from event data --------------------------------------------------------------------------


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _rules(d: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    """The quantity step and price tick an event (or a kill's item) carries; None when it has none."""
    return _dec(d.get("qty_step")), _dec(d.get("price_tick"))


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def who(key: str, style: Style) -> str:
    """An actor key in words: ``alice (telegram:1)``, ``the console operator``, ``the risk checks``."""
    key = str(key or "")
    if not key or key == "system":
        return "the system"
    if key == "risk":
        return "the risk checks"
    if key in ("strategy", "protection"):
        return f"the {key}"
    if key.startswith("console:"):
        return "the console operator"
    return fmt.person(key, style.names.get(key, ""))


def server(instance_id: str) -> str:
    """The host part of an instance id (``vm-1:4242:ab12cd`` -> ``vm-1``)."""
    return str(instance_id).split(":", 1)[0] or str(instance_id)


_STOP = re.compile(r"^price (?P<price>\S+) <= stop (?P<level>\S+)$")
_TARGET = re.compile(r"^price (?P<price>\S+) >= target (?P<level>\S+)$")
_CLOSED_BY = re.compile(r"^closed by (?P<key>\S+)$")


_EXIT_WORDS = {ExitKind.STOP: "stop", ExitKind.TRAILING: "trailing stop", ExitKind.TAKE_PROFIT: "take-profit"}


def exit_words(kind: ExitKind, style: Style, *, level: Decimal | None = None, by: str = "", reason: str = "",
               tick: Decimal | None = None) -> str:
    """Why a position closed, in plain words, from its typed exit kind (``level`` shown to the
    market's ``tick``); ``reason`` (free text) is shown only when verbose, and never decides the words."""
    detail = f": {reason}" if style.verbose and reason else ""
    if kind in _EXIT_WORDS:
        what = _EXIT_WORDS[kind]
        return (f"{what} {fmt.price(level, tick)} reached" if level is not None else f"{what} reached") + detail
    if kind is ExitKind.MANUAL:  # its reason text only repeats who asked
        return f"closed by {who(by, style)}" if by else "closed by hand"
    if kind is ExitKind.KILL:
        return "kill switch"
    if kind is ExitKind.STRATEGY:
        return "strategy exit" + detail
    return exit_reason(reason, style)


def exit_reason(reason: str, style: Style) -> str:
    """Why a position closed, from text alone: for events stored before exit kinds (and the trade
    list, which has the position's recorded exit). The text is an order purpose (``stop``,
    ``take_profit``: what the books record) or, in older alerts, the trigger's arithmetic."""
    reason = str(reason or "")
    purpose = ExitKind.of_purpose(known_purpose(reason))
    if purpose is not ExitKind.UNKNOWN:
        return exit_words(purpose, style)
    for pattern, what in ((_STOP, "stop"), (_TARGET, "take-profit")):
        m = pattern.match(reason)
        if m:
            level, price = _dec(m.group("level")), _dec(m.group("price"))
            if level is None:
                return f"{what} reached"
            return f"{what} {fmt.price(level)} reached (price {fmt.price(price)})"
    m = _CLOSED_BY.match(reason)
    if m:
        return f"closed by {who(m.group('key'), style)}"
    if reason.startswith("kill"):
        return "kill switch"
    if not reason:
        return ""
    return f"strategy exit: {reason}" if style.verbose else "strategy exit"


def _exit_kind(value: Any) -> ExitKind:
    """The stored exit kind; UNKNOWN when absent (a row from before exit kinds) or not one we know."""
    try:
        return ExitKind(str(value)) if value not in (None, "") else ExitKind.UNKNOWN
    except ValueError:
        return ExitKind.UNKNOWN


# -- one formatter per kind ------------------------------------------------------------------------

Formatter = Callable[[Mapping[str, Any], Style], tuple[str, Sequence[str], Sequence[tuple[str, str]]]]


def _order_filled(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    pair, quote = str(d["pair"]), fmt.quote_of(str(d["pair"]))
    qty, price = _dec(d["qty"]), _dec(d["price"])
    step, tick = _rules(d)
    what = "Partly filled" if d.get("partial") else "Filled"
    fields = [("value", fmt.money(qty * price if qty is not None and price is not None else None, quote)),
              ("fee", fmt.money(_dec(d.get("fee")), str(d.get("fee_currency") or quote)))]
    lines = [f"order {d['client_order_id']}"] if s.verbose and d.get("client_order_id") else []
    return f"{what}: {d['side']} {fmt.qty(qty, step)} {pair} @ {fmt.price(price, tick)}", lines, fields


def _order_placed(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    lines = [f"order {d['client_order_id']}"] if s.verbose and d.get("client_order_id") else []
    return (f"Order placed: {d['side']} {fmt.qty(_dec(d['qty']), _rules(d)[0])} {d['pair']} ({d.get('purpose', '')})",
            lines, [])


def _order_rejected(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    return (f"Order refused by the venue: {d['side']} {fmt.qty(_dec(d['qty']), _rules(d)[0])} {d['pair']}",
            [fmt.clip(str(d.get("reason", "")), 200)], [])


def _order_cancelled(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    lines = [f"order {d['client_order_id']}"] if s.verbose and d.get("client_order_id") else []
    return f"Order cancelled: {d['pair']}", lines, []


def _order_voided(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    return (f"Order dropped before sending: {d['side']} {fmt.qty(_dec(d['qty']), _rules(d)[0])} {d['pair']} "
            f"({d.get('purpose') or 'unknown purpose'})",
            [str(d.get("why", ""))], [])


def _position_opened(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    pair, quote = str(d["pair"]), fmt.quote_of(str(d["pair"]))
    qty, price = _dec(d["qty"]), _dec(d["price"])
    step, tick = _rules(d)
    fields = [("value", fmt.money(qty * price if qty is not None and price is not None else None, quote)),
              ("fee", fmt.money(_dec(d.get("fee")), quote))]
    stop = _dec(d.get("stop"))
    if stop is not None:
        fields.append(("stop", fmt.price(stop, tick)))
    lines = [f"signal: {d['reason']}"] if s.verbose and d.get("reason") else []
    return f"Opened {pair}: bought {fmt.qty(qty, step)} @ {fmt.price(price, tick)}", lines, fields


def _position_closed(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    pair, quote = str(d["pair"]), fmt.quote_of(str(d["pair"]))
    qty, exit_price = _dec(d["qty"]), _dec(d["exit_price"])
    step, tick = _rules(d)
    title = f"Closed {pair}: {fmt.pnl(_dec(d['pnl']), _dec(d.get('pnl_pct')), quote)}"
    why = exit_words(_exit_kind(d.get("exit_kind")), s, level=_dec(d.get("level")), by=str(d.get("by") or ""),
                     reason=str(d.get("reason") or ""), tick=tick)
    lines = [why] if why else []
    lines.append(f"sold {fmt.qty(qty, step)} @ {fmt.price(exit_price, tick)} "
                 f"(entry {fmt.price(_dec(d.get('entry_price')), tick)})")
    return title, lines, [("fees", fmt.money(_dec(d.get("fees")), quote))]


def _state_changed(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    state, by, reason = str(d["state"]), who(d.get("by", ""), s), str(d.get("reason", ""))
    mark = STATE_MARK.get(state, "")
    if state == "running":
        title = f"{mark} Trading resumed by {by}"
    elif state == "paused" and d.get("previous") == "killed":
        title = f"{mark} Re-armed by {by}: entries stay paused until /resume"
    elif state == "paused":
        title = f"{mark} Entries paused by {by}"
    elif state == "killed":
        title = f"{mark} Trading KILLED by {by}"
    else:
        title = f"Trading {d.get('previous', '?')} -> {state} by {by}"
    lines = [f"reason: {reason}"] if reason and reason not in ("resumed",) and not reason.startswith("re-armed") else []
    return title, lines, []


def _auto_paused(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    return "⏸ Entries paused automatically", [str(d.get("reason", "")),
                                               "open positions keep their stops; /resume when satisfied"], []


def _closed_totals(closed: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Count, value, realized PnL and fees of closed positions, per quote currency."""
    by_quote: dict[str, list[Decimal]] = {}
    for p in closed:
        qty, price = _dec(p.get("qty")) or Decimal(0), _dec(p.get("exit_price")) or Decimal(0)
        sums = by_quote.setdefault(fmt.quote_of(str(p.get("pair", ""))), [Decimal(0)] * 3)
        sums[0] += qty * price
        sums[1] += _dec(p.get("pnl")) or Decimal(0)
        sums[2] += _dec(p.get("fees")) or Decimal(0)
    out: list[tuple[str, str]] = []
    for quote, (value, pnl, fees) in by_quote.items():
        out += [("value", fmt.money(value, quote)), ("realized PnL", fmt.signed(pnl, quote)),
                ("fees", fmt.money(fees, quote))]
    return out


def _kill_closed(p: Mapping[str, Any]) -> str:
    """One position a kill closed: ``BTC/USD 0.25 @ 62,990.50: -268.38 USD``, to its market's step and tick."""
    step, tick = _rules(p)
    return (f"{p['pair']} {fmt.qty(_dec(p.get('qty')), step)} @ {fmt.price(_dec(p.get('exit_price')), tick)}: "
            f"{fmt.signed(_dec(p.get('pnl')), fmt.quote_of(str(p['pair'])))}")


def _killed(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    closed = list(d.get("closed") or ())
    cancelled = list(d.get("cancelled") or ())
    left = list(d.get("left") or ())
    by = who(d.get("by", ""), s)
    if not closed and not cancelled and not left and d.get("report"):  # stored by an earlier version: its text lines
        return f"🛑 Kill switch by {by}", [str(x) for x in d["report"]], []
    if not closed and not cancelled and not left:
        return f"🛑 Kill switch by {by}: nothing was open", ["trading stays halted until an admin sends /rearm"], []
    done = [fmt.count(len(closed), "position") + " closed"] if closed else []
    if cancelled:
        done.append(fmt.count(len(cancelled), "order") + " cancelled")
    title = f"🛑 Kill switch by {by}: " + ", ".join(done or ["nothing closed yet"])
    lines = [_kill_closed(p) for p in closed]
    if left:
        still = ", ".join(f"{o.get('what', 'position')} {fmt.qty(_dec(o.get('qty')), _rules(o)[0])} {o.get('pair')}"
                          for o in left)
        lines.append(f"NOT flat yet: {still} (send /kill again to retry)")
    lines.append("trading stays halted until an admin sends /rearm")
    fields = [("closed", str(len(closed))), *_closed_totals(closed)] if closed else []
    flat = d.get("flat_s")
    if s.verbose and isinstance(flat, (int, float, str)) and flat not in ("", None):
        fields.append(("flat after", f"{float(flat) * 1000:.0f} ms"))
    return title, lines, fields


def _rearmed(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    return f"Re-armed by {who(d.get('by', ''), s)}", ["trading stays paused until /resume"], []


def _error(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    where = str(d.get("where", ""))
    place = {"feed": "the market data feed", "protection": "the protection loop", "alerts": "the alerts"}.get(where)
    if place is None:
        place = f"the strategy scan of {where[5:]}" if where.startswith("scan:") else where or "the engine"
    lines = [str(d.get("message", ""))]
    if d.get("ref"):
        lines.append(f"reference {d['ref']} (details in the log)")
    return f"Error in {place}", lines, []


def _amounts(ours: Decimal | None, venue: Decimal | None, step: Decimal | None) -> tuple[str, str]:
    """Two quantities to the market's step, unless that would make two different ones read the same
    (a venue balance short by less than a step): then both in full."""
    a, b = fmt.qty(ours, step), fmt.qty(venue, step)
    if a == b and ours != venue:
        a, b = fmt.qty(ours), fmt.qty(venue)
    return a, b


def _reconcile(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    step = _dec(d.get("qty_step"))
    if d.get("subject") == "balance":
        cur = str(d.get("currency", ""))
        ours, venue = _amounts(_dec(d.get("ours_qty")), _dec(d.get("venue_qty")), step)
        ids = ", ".join(f"#{i}" for i in d.get("positions") or ())
        return (f"Differs from the venue: {cur} balance below open positions",
                [f"open positions{f' {ids}' if ids else ''} hold {ours} {cur}, the venue has {venue} {cur}",
                 "nothing was changed; check and correct by hand"], [])
    if d.get("subject") == "order":
        what = (f"order {d.get('client_order_id', '')} "
                f"({d.get('side', '')} {fmt.qty(_dec(d.get('qty')), step)} {d.get('pair', '')})")
        return (f"Differs from the venue: {what}", [f"ours {d.get('ours', '')}, venue {d.get('venue', '')}",
                                                    "nothing was changed; check and correct by hand"], [])
    # stored before differences carried values: its text as it was written
    ours, venue = d.get("ours", ""), d.get("venue", "")
    ours_text = fmt.qty(_dec(ours)) if _dec(ours) is not None else str(ours)
    venue_text = fmt.qty(_dec(venue)) if _dec(venue) is not None else str(venue)
    return (f"Differs from the venue: {d.get('what', '')}", [f"ours {ours_text}, venue {venue_text}",
                                                             "nothing was changed; check and correct by hand"], [])


def _leadership(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    name = server(str(d.get("instance_id", "")))
    if d.get("leader") in (True, "True", "true"):
        title, lines = f"This server ({name}) took over trading", []
    else:
        title, lines = f"This server ({name}) stopped trading", ["a standby takes over if one is running"]
    if s.verbose:
        lines.append(f"instance {d.get('instance_id', '')}, term {d.get('epoch', '')}")
    return title, lines, []


def _destination_failing(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    return (f"Alerts to {d.get('destination', '?')} are failing",
            [f"{d.get('failures', '?')} attempts, last: {d.get('error', '')}", "they are kept and retried"], [])


def _database_outage(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    since, until = _time(d.get("since")), _time(d.get("until"))
    took = f" for {fmt.age((until - since).total_seconds())}" if since and until else ""
    lines = ["no candle was skipped: processing waited and went on from the last stored one",
             "entries were paused: /resume when satisfied" if d.get("paused") in (True, "True", "true")
             else "the trading state was kept"]
    if since is not None:
        lines.insert(0, f"from {fmt.clock(since, s.timezone, until)} to {fmt.clock(until, s.timezone, until)}")
    return f"Database was unreachable{took}", lines, []


def _recovery(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    took = _dec(d.get("took_s"))
    return (f"Restart recovery done{f' in {took:.1f} s' if took is not None else ''}",
            [str(x) for x in d.get("lines") or ()], [])


def _interrupted(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    at = _time(d.get("confirmed_at"))
    return (f"/{d.get('command', '?')} was interrupted by a restart",
            [f"confirmed by {who(d.get('requested_by', ''), s)} at {fmt.when(at, s.timezone)}",
             str(d.get("outcome", ""))], [])


def _checkin(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    quote, state = str(d.get("quote", "")), str(d.get("state", ""))
    ages = [a for a in (_dec(v) for v in (d.get("data_age_s") or {}).values()) if a is not None]
    mark = STATE_MARK.get(state, "")
    title = f"{mark + ' ' if mark else ''}Check-in: {state}, equity {fmt.money(_dec(d.get('equity')), quote)}"
    fields = [("today", fmt.signed(_dec(d.get("today_pnl")), quote)),
              ("positions", str(d.get("open_positions", 0))), ("orders", str(d.get("open_orders", 0))),
              ("data", f"{fmt.age(float(max(ages)))} old" if ages else "none yet")]
    if s.verbose:
        fields.append(("leader", str(d.get("leader") or d.get("instance_id", ""))))
    return title, [], fields


def _report(d: Mapping[str, Any], s: Style, title: str) -> tuple[str, list[str], list[tuple[str, str]]]:
    quote = str(d.get("quote", ""))
    fields = [("realized", fmt.signed(_dec(d.get("realized")), quote)),
              ("unrealized (open now)", fmt.signed(_dec(d.get("unrealized")), quote)),
              ("fees", fmt.money(_dec(d.get("fees")), quote))]
    trades = int(d.get("trades") or 0)
    if trades:
        fields.append(("trades", f"{trades}: {d.get('wins', 0)} won, {d.get('losses', 0)} lost, "
                                 f"win rate {fmt.ratio(_dec(d.get('win_rate')))}"))
    else:
        fields.append(("trades", "none closed"))
    if d.get("best_pair"):
        fields.append(("best", f"{d['best_pair']} {fmt.signed(_dec(d.get('best_pnl')), quote)}"))
        fields.append(("worst", f"{d.get('worst_pair')} {fmt.signed(_dec(d.get('worst_pnl')), quote)}"))
    dd_pct = _dec(d.get("max_drawdown_pct"))
    fields.append(("max drawdown", fmt.money(_dec(d.get("max_drawdown")), quote)
                   + (f" ({fmt.pct(-dd_pct)})" if dd_pct else "")))
    if d.get("equity_start") not in (None, "") and d.get("equity_end") not in (None, ""):
        fields.append(("equity",
                       f"{fmt.money(_dec(d['equity_start']), quote)} -> {fmt.money(_dec(d['equity_end']), quote)}"))
    return f"{title}: {d.get('label', '')}", [], fields


def _job_failed(d: Mapping[str, Any], s: Style) -> tuple[str, list[str], list[tuple[str, str]]]:
    error = str(d.get("error", ""))
    kind = error.split(":", 1)[0].strip()
    safe = kind if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]{0,80}", kind) else "an error"
    at = _time(d.get("scheduled_for"))
    return (f"Scheduled job {d.get('job', '?')} failed",
            [f"run of {fmt.when(at, s.timezone)}: {safe} (details in the log)"], [])


FORMATTERS: dict[str, Formatter] = {
    "order_filled": _order_filled,
    "order_placed": _order_placed,
    "order_rejected": _order_rejected,
    "order_cancelled": _order_cancelled,
    "order_voided": _order_voided,
    "position_opened": _position_opened,
    "position_closed": _position_closed,
    "state_changed": _state_changed,
    "auto_paused": _auto_paused,
    "killed": _killed,
    "rearmed": _rearmed,
    "error": _error,
    "reconcile_difference": _reconcile,
    "leadership_changed": _leadership,
    "alert_destination_failing": _destination_failing,
    "database_outage": _database_outage,
    "recovery": _recovery,
    "interrupted_command": _interrupted,
    "checkin": _checkin,
    "report": lambda d, s: _report(d, s, "PnL report"),
    "report_daily": lambda d, s: _report(d, s, "Daily PnL report"),
    "report_weekly": lambda d, s: _report(d, s, "Weekly PnL report"),
    "report_monthly": lambda d, s: _report(d, s, "Monthly PnL report"),
    "job_failed": _job_failed,
}


def format_event(kind: str, severity: str, data: Mapping[str, Any], style: Style, *, fallback: str = "",
                 now: datetime | None = None, repeats: int = 1, label: str = "") -> Alert:
    """The alert for one event. ``fallback`` (the event's summary) is used when there is no formatter
    for ``kind`` or its data cannot be read; ``repeats`` > 1 says the alert was raised that often while
    it could not be stored; ``label`` ("PAPER · live Kraken prices") heads the title."""
    severity = severity if severity in SEVERITIES else "info"
    ts = _time(data.get("ts"))
    formatter = FORMATTERS.get(kind)
    title, lines, fields = fallback or kind, [], []
    if formatter is not None:
        try:
            t, ls, fs = formatter(data, style)
            title, lines, fields = t, [line for line in ls if line], list(fs)
        except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError):
            log.warning("alert %s: data not readable; sending its summary", kind, exc_info=True)
            first, *rest = (fallback or kind).splitlines() or [kind]
            title, lines = first, rest
    elif "\n" in title:
        title, *lines = title.splitlines()
    if repeats > 1:
        lines.append(f"raised {repeats} times while the database was unreachable")
    if label:
        title = f"{label} · {title}"
    when = fmt.clock(ts, style.timezone, now) if ts is not None else ""
    time = fmt.clock(ts, style.timezone, now, with_zone=False) if ts is not None else ""
    zone = fmt.abbreviation(fmt.local(ts, style.timezone)) if ts is not None else ""
    return Alert(kind=kind, severity=severity, title=title, lines=tuple(lines), fields=tuple(fields), ts=ts, when=when,
                 time=time, zone=zone)


def from_payload(payload: Mapping[str, Any], style: Style, *, now: datetime | None = None) -> Alert:
    """The alert for an outbox row's payload (``kind``, ``severity``, ``text``, ``data``)."""
    data = payload.get("data")
    return format_event(str(payload.get("kind", "")), str(payload.get("severity", "info")),
                        data if isinstance(data, Mapping) else {}, style, fallback=str(payload.get("text", "")),
                        now=now, repeats=int(payload.get("repeats") or 1), label=str(payload.get("label") or ""))


def from_event(event: Any, style: Style, *, now: datetime | None = None) -> Alert:
    """The alert for a live :class:`core.trading.events.Event` (the console, a report shown to who asked)."""
    data = event.to_dict()
    data.pop("image_png", None)
    return format_event(event.kind, event.severity, data, style, fallback=event.summary(), now=now)
