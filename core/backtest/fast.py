"""Fast mode: the engine's trading rules over precomputed signals, for sweeps and long series.

The strategy's vectorized form (``signals()``, TA-Lib over the whole series in one call) marks the
candidate candles; :class:`~core.backtest.fastloop.Simulation` then applies the engine's per-candle
rules on those candles only, with the paper venue's fill, fee and liquidity arithmetic and the
backtest sizing rule. Same fill convention, same fees, same sizes, same trades.

When it is the same as engine mode, trade for trade (``tests/core/backtest`` checks it):

- one strategy enabled, one pair, no higher-timeframe filter, no trailing stop;
- sizing ``fixed`` or ``fraction`` (the live risk sizing reads account state that only the engine
  keeps: Kelly statistics, exposure of other pairs);
- the breakers (daily loss, drawdown) do not trip: fast mode does not pause entries, and says so
  in the result's notes when the engine would have;
- the strategy's signals on its sliding window of ``trading.history_bars`` equal those over the
  whole series. For SMAs that holds up to float rounding; recursive indicators (EMA, ATR, ADX,
  MACD) started at different candles agree only to many digits, which can move a signal on an
  exact tie.

Strategies whose every signal clears the confluence thresholds and suggests no stop or target
(``sma_cross``: strength is at least 0.5) run on the signal array alone. Any other built-in is
judged on each candidate candle with the engine's own evaluation (the configured strategy set on
the same window the engine would hand it), which gives exact strengths, stops and targets at the
price of one evaluation per candidate.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from core.backtest import warmup
from core.backtest.data import Bars
from core.backtest.fastlane import LaneInputs, walk
from core.backtest.fastloop import Fill, Judge, Position, Simulation, Venue
from core.backtest.fasttrades import FastTrades, integer_fills, total_pnl
from core.backtest.model import BacktestResult, RunSpec, Trade, TradeTable
from core.backtest.runner import market_rules, run_settings, start_equity
from core.backtest.stats import first_breach
from core.settings.config import Settings
from core.trading.accounting import price_q
from exchanges.base import Side
from exchanges.errors import TradectlError
from exchanges.paper.model import quote_fee, slipped_price
from strategies import Direction, load_strategies
from strategies.base import Candles
from strategies.scanner import StrategySet

ZERO = Decimal(0)
Q = Decimal("0.00000001")
CENTS = Decimal("0.01")
# Built-ins whose every BUY/SELL has at least this strength and no stop or take-profit.
PLAIN_STRENGTH = {"sma_cross": 0.5}


class FastUnsupported(TradectlError, ValueError):
    """The configuration needs engine mode; the message says which setting."""


def unsupported_reason(settings: Settings, spec: RunSpec) -> str | None:
    """Why fast mode cannot reproduce engine mode for this configuration, or None."""
    if spec.sizing not in ("fixed", "fraction"):
        return f"sizing {spec.sizing!r} needs the engine; fast mode sizes fixed or fraction"
    strategies = load_strategies(settings.strategies)
    if len(strategies.members) != 1:
        return f"fast mode runs one strategy; enabled: {', '.join(strategies.names)}"
    if strategies.members[0].signals is None:
        return f"strategy {strategies.names[0]!r} has no vectorized form"
    if settings.strategies.higher_timeframe:
        return "strategies.higher_timeframe needs the engine"
    if settings.risk.trailing_stop_pct is not None:
        return "risk.trailing_stop_pct needs the engine"
    return None


def _window(a: Candles, k: int, size: int) -> Candles:
    lo = max(0, k + 1 - size)
    s = slice(lo, k + 1)
    return Candles(pair=a.pair, timeframe_s=a.timeframe_s, ts=a.ts[s], open=a.open[s], high=a.high[s], low=a.low[s],
                   close=a.close[s], volume=a.volume[s])


def _plain(settings: Settings, strategies: StrategySet) -> bool:
    """True when the signal array alone says what the engine would do (no stops, no thresholds)."""
    s = settings.strategies
    floor = PLAIN_STRENGTH.get(strategies.members[0].name)
    return floor is not None and max(s.entry_threshold, s.exit_threshold) <= floor


def _judge(settings: Settings, strategies: StrategySet, sig: np.ndarray, bars: Bars) -> Judge:
    if _plain(settings, strategies):
        codes = sig.tolist()
        return lambda k: (codes[k], None, None) if codes[k] else None

    history = settings.trading.history_bars

    def judge(k: int) -> tuple[int, Decimal | None, Decimal | None] | None:
        if not sig[k]:
            return None
        signal = strategies.evaluate(bars.pair, _window(bars.arrays, k, history), None)
        if signal.direction == Direction.BUY:
            return 1, signal.stop, signal.take_profit
        return (-1, None, None) if signal.direction == Direction.SELL else None

    return judge


def run_fast(settings: Settings, bars: Bars, spec: RunSpec, *, shortcut: bool = True) -> BacktestResult:
    """Simulate ``bars`` in fast mode; :class:`FastUnsupported` when only engine mode would be right.

    ``shortcut=False`` skips :mod:`core.backtest.fastlane` and always runs the general loop (the
    tests check that both agree).
    """
    started = time.perf_counter()
    reason = unsupported_reason(settings, spec)
    if reason is not None:
        raise FastUnsupported(reason)
    warmup.check(spec, (bars,))
    settings = run_settings(settings, bars)
    strategies = load_strategies(settings.strategies)
    member = strategies.members[0]
    assert member.signals is not None
    sig = member.signals(bars.arrays)
    sig[:max(1, spec.warmup)] = 0  # the engine needs two candles before it scans; no entry in the warm-up
    p = settings.paper
    venue = Venue(market_rules(settings).market(bars.pair), p.slippage_bps, p.impact_bps, p.volume_share)
    base_ccy, quote = bars.pair.split("/")
    cash, base = p.starting_balances.get(quote, ZERO), p.starting_balances.get(base_ccy, ZERO)
    result = _lane(settings, bars, spec, sig, strategies, venue, cash, base) if shortcut else None
    if result is None:
        sim = Simulation(bars, spec, venue, cash=cash, base=base, buy_bars=np.flatnonzero(sig > 0),
                         sell_bars=np.flatnonzero(sig < 0), judge=_judge(settings, strategies, sig, bars),
                         cooldown_s=settings.risk.cooldown_after_loss_s)
        sim.run()
        result = _from_simulation(settings, bars, spec, sim)
    breach = first_breach(result, daily_loss_limit=float(settings.risk.daily_loss_limit),
                          max_drawdown=float(settings.risk.max_drawdown), timezone=settings.service.timezone,
                          since=spec.warmup)
    if breach:
        result.exact = False
        result.notes.append(f"the engine would have paused entries: {breach}; fast mode does not pause")
    if spec.warmup:
        result = warmup.trading_part(result, bars, settings, spec.warmup)
    result.elapsed_s = time.perf_counter() - started
    return result


def price_fill(bars: Bars, k: int, side: Side, qty: Decimal, venue: Venue) -> Fill:
    """A whole fill of ``qty`` at candle ``k``'s open, priced and charged as the paper venue does."""
    m = venue.market
    price = slipped_price(bars.price(k, "open"), side, qty, bars.volume(k), slippage_bps=venue.slippage_bps,
                          impact_bps=venue.impact_bps, tick=m.price_tick)
    return Fill(k, qty, price, quote_fee(qty, price, m.taker_fee))


def _lane(settings: Settings, bars: Bars, spec: RunSpec, sig: np.ndarray, strategies: StrategySet, venue: Venue,
          cash: Decimal, base: Decimal) -> BacktestResult | None:
    """The shortcut of :mod:`core.backtest.fastlane`, when it applies and can decide every step."""
    m = venue.market
    qty = m.round_qty(spec.qty)
    if (spec.sizing != "fixed" or spec.fill_on != "next_open" or base != 0 or qty != spec.qty
            or qty < m.min_qty or not _plain(settings, strategies)):
        return None
    a = bars.arrays

    def exact_pnl(f: int, g: int) -> Decimal:
        buy, sell = price_fill(bars, f, Side.BUY, qty, venue), price_fill(bars, g, Side.SELL, qty, venue)
        return qty * (sell.price - buy.price) - buy.fee - sell.fee

    rate = float(m.taker_fee)
    lane = walk(LaneInputs(
        buys=np.flatnonzero(sig > 0), sells=np.flatnonzero(sig < 0), open=a.open, close=a.close,
        volume=a.volume, close_ts=a.ts + a.timeframe_s, qty=float(qty), cash=float(cash), taker_fee=rate,
        max_fee=float(max(m.taker_fee, m.maker_fee)), slippage_bps=float(venue.slippage_bps),
        impact_bps=float(venue.impact_bps), volume_share=float(venue.volume_share), qty_step=float(m.qty_step),
        price_tick=float(m.price_tick), min_notional=float(m.min_notional),
        cooldown_s=settings.risk.cooldown_after_loss_s, exact_pnl=exact_pnl,
        exact_price=lambda k, sign: float(price_fill(bars, k, Side.BUY if sign > 0 else Side.SELL, qty, venue).price)))
    if lane is None:
        return None
    n, fq = len(bars), float(qty)
    entries = np.asarray(lane.entries, dtype=np.int64)
    exits = np.asarray(lane.exits, dtype=np.int64)
    buy = np.asarray(lane.buy_prices) * fq
    sell = np.asarray(lane.sell_prices) * fq
    d_cash, d_base = np.zeros(n), np.zeros(n)
    np.add.at(d_cash, entries, -buy * (1 + rate))
    np.add.at(d_base, entries, fq)
    np.add.at(d_cash, exits, sell * (1 - rate))
    np.add.at(d_base, exits, -fq)
    equity = float(cash) + np.cumsum(d_cash) + np.cumsum(d_base) * a.close
    closed = exits.size
    last = float(a.close[-1])
    pnl = np.r_[sell * (1 - rate) - buy[:closed] * (1 + rate), (fq * last - buy[closed:] * (1 + rate))]
    table = TradeTable(entry_bar=entries, exit_bar=np.r_[exits, np.full(entries.size - closed, -1, dtype=np.int64)],
                       pnl=pnl, cost=buy, fees=np.r_[(buy[:closed] + sell) * rate, buy[closed:] * rate])
    in_position = _holding(n, entries, exits)
    trades = _trades(bars, venue, qty, lane.entries, lane.exits, lane.buy_prices, lane.sell_prices)
    total = total_pnl(qty, m.price_tick, trades.buys, trades.sells) if trades.sells.bar.size else None
    end = sum((t.pnl for t in trades), cash) if total is None else cash + total
    if total is not None and len(trades) > closed:
        end += trades[closed].pnl
    result = BacktestResult(mode="fast", pair=bars.pair, timeframe_s=bars.timeframe_s,
                            start_equity=start_equity(settings, bars), end_equity=end,
                            equity_ts=a.ts + a.timeframe_s, equity=equity, in_position=in_position, bars=n,
                            trades=trades, table=table)
    if lane.unfilled_at_end:
        result.notes.append("an entry placed on the last candle was never filled")
    return result


def _trades(bars: Bars, venue: Venue, qty: Decimal, entries: list[int], exits: list[int], buy_prices: list[float],
            sell_prices: list[float]) -> FastTrades:
    """The lane's round trips as integer records (:mod:`core.backtest.fasttrades`); the open one built here."""
    m = venue.market
    exact = bars.candles is None  # real candles' Decimal prices may carry more digits than their floats
    buys = integer_fills(np.asarray(entries, dtype=np.int64), buy_prices, qty=qty, tick=m.price_tick, rate=m.taker_fee,
                         exact=exact, price_fill=lambda k: price_fill(bars, k, Side.BUY, qty, venue))
    sells = integer_fills(np.asarray(exits, dtype=np.int64), sell_prices, qty=qty, tick=m.price_tick, rate=m.taker_fee,
                          exact=exact, price_fill=lambda k: price_fill(bars, k, Side.SELL, qty, venue))
    still_open = None
    if len(entries) > len(exits):
        f = entries[-1]
        buy = price_fill(bars, f, Side.BUY, qty, venue)
        cost = qty * buy.price + buy.fee
        last_close = bars.price(len(bars) - 1, "close")
        pnl = qty * last_close - cost
        still_open = Trade(pair=bars.pair, entry_bar=f, exit_bar=None, entry_time=_at(bars, f, 0), exit_time=None,
                           qty=qty, entry_price=price_q(buy.price), exit_price=last_close, fees=buy.fee,
                           pnl=pnl.quantize(Q), pnl_pct=(pnl / cost * 100).quantize(CENTS), exit_reason="open")
    return FastTrades(pair=bars.pair, qty=qty, tick=m.price_tick, ts=bars.arrays.ts, buys=buys, sells=sells,
                      still_open=still_open)


def _holding(n: int, entries: np.ndarray, exits: np.ndarray) -> np.ndarray:
    """True on candles whose close finds a position open (from the entry fill to the exit fill)."""
    step = np.zeros(n + 1, dtype=np.int64)
    np.add.at(step, entries, 1)
    np.add.at(step, exits, -1)
    return np.cumsum(step[:n]) > 0


def _trade(pos: Position, bars: Bars, spec: RunSpec, last_close: Decimal) -> Trade:
    shift = bars.timeframe_s if spec.fill_on == "last_close" else 0
    qty = sum((f.qty for f in pos.entries), ZERO)
    cost = sum((f.qty * f.price for f in pos.entries), ZERO)
    entry_fees = sum((f.fee for f in pos.entries), ZERO)
    out_qty = sum((f.qty for f in pos.exits), ZERO)
    value = sum((f.qty * f.price for f in pos.exits), ZERO)
    exit_fees = sum((f.fee for f in pos.exits), ZERO)
    closed = pos.qty <= 0
    if closed:
        pnl = value - exit_fees - cost - entry_fees
        exit_price = price_q(value / out_qty)
    else:
        basis = (cost + entry_fees) / qty
        pnl = value - exit_fees - out_qty * basis + pos.qty * (last_close - basis)
        exit_price = last_close
    entry_bar = pos.entries[0].bar
    exit_bar = pos.exits[-1].bar if closed else None
    return Trade(pair=bars.pair, entry_bar=entry_bar, exit_bar=exit_bar, entry_time=_at(bars, entry_bar, shift),
                 exit_time=_at(bars, exit_bar, shift) if exit_bar is not None else None, qty=qty,
                 entry_price=price_q(cost / qty), exit_price=exit_price, fees=entry_fees + exit_fees,
                 pnl=pnl.quantize(Q), pnl_pct=(pnl / (cost + entry_fees) * 100).quantize(CENTS),
                 exit_reason=pos.reason if closed else "open")


def _at(bars: Bars, i: int, shift: int) -> datetime:
    return datetime.fromtimestamp(int(bars.arrays.ts[i]) + shift, UTC)


def _from_simulation(settings: Settings, bars: Bars, spec: RunSpec, sim: Simulation) -> BacktestResult:
    n = len(bars)
    last_close = bars.price(n - 1, "close")
    positions = sim.closed + ([sim.pos] if sim.pos is not None and sim.pos.open else [])
    trades = [_trade(p, bars, spec, last_close) for p in positions]
    fills: list[tuple[Fill, int]] = [(f, 1) for p in positions for f in p.entries]
    fills += [(f, -1) for p in positions for f in p.exits]
    d_cash, d_base = np.zeros(n), np.zeros(n)
    if fills:
        at = np.fromiter((f.bar for f, _ in fills), dtype=np.int64, count=len(fills))
        np.add.at(d_base, at, [float(s * f.qty) for f, s in fills])
        np.add.at(d_cash, at, [float(-s * f.qty * f.price - f.fee) for f, s in fills])
    base_ccy, quote = bars.pair.split("/")
    start_cash = float(settings.paper.starting_balances.get(quote, ZERO))
    start_base = float(settings.paper.starting_balances.get(base_ccy, ZERO))
    equity = start_cash + np.cumsum(d_cash) + (start_base + np.cumsum(d_base)) * bars.arrays.close
    entries = np.asarray([t.entry_bar for t in trades], dtype=np.int64)
    exits = np.asarray([t.exit_bar for t in trades if t.exit_bar is not None], dtype=np.int64)
    result = BacktestResult(mode="fast", pair=bars.pair, timeframe_s=bars.timeframe_s,
                            start_equity=start_equity(settings, bars), end_equity=sim.cash + sim.base * last_close,
                            trades=trades, equity_ts=bars.arrays.ts + bars.timeframe_s, equity=equity,
                            in_position=_holding(n, entries, exits), bars=n)
    for what, count in sim.inexact.items():
        result.exact = False
        result.notes.append(f"not reproduced exactly ({count}x): {what}; use engine mode")
    if sim.pos is not None and not sim.pos.open:
        result.notes.append("an entry placed on the last candle was never filled")
    return result
