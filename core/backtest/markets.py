"""A backtest's market rules and money precision follow the pair being tested, not the USD defaults.

The paper settings (``paper.price_tick``, ``paper.qty_step``, ``paper.min_qty``, ``paper.min_notional``)
default to a USD market: a 0.01 tick and a 5 USD minimum order. Applied to ``ETH/BTC`` they round
every fill to 0.01 BTC or refuse every order. So, for each of those four rules, a backtest uses the
first of:

1. the value set explicitly (config file, environment, or the ``backtest`` command's ``--tick``,
   ``--step``, ``--min-qty``, ``--min-notional``, which are overrides of these settings);
2. the venue's recorded market metadata when the pair is in it (:data:`RECORDED`: Kraken's AssetPairs
   and Coinbase's products as recorded in ``tests/exchanges/fixtures/ccxt/markets``, parsed by the
   venue adapters; a test keeps the table equal to what the adapters derive from those files);
   the configured venue's record first, then Coinbase's (the bundled candles are Coinbase's), then
   Kraken's;
3. otherwise, inferred: the tick from the most decimal places the candles' prices are written with;
   step and minimum quantity the paper defaults (1e-8 and 1e-4 units of the base); the minimum order
   value the paper default only where the quote is counted in cents (a fiat or dollar/euro
   stablecoin, where the 5 means 5 of that unit), else none.

Fees are not part of this: they stay ``paper.maker_fee`` / ``paper.taker_fee``.

The quote currency (what cash, equity and PnL are counted in) is the pair's, whatever
``trading.quote`` says. :func:`money` prints an amount with that currency's decimals: 2 for fiat and
dollar/euro stablecoins, 0 for yen-like currencies, 8 for anything else (crypto). It is the rule of
``bot.format.currency_decimals``, repeated here because ``core`` never imports ``bot``; a test keeps the
two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from exchanges.paper import MarketRules

TWO_DECIMALS = frozenset({
    "USD", "EUR", "GBP", "CHF", "CAD", "AUD", "NZD", "SGD", "HKD", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF",
    "TRY", "MXN", "BRL", "ZAR", "INR", "CNY", "AED", "ILS", "ARS",
    "USDT", "USDC", "DAI", "BUSD", "TUSD", "FDUSD", "PYUSD", "USDP", "GUSD", "USDE", "EURC", "EURT", "EURS",
    "ZUSD", "ZEUR", "ZGBP", "ZCAD",
})
NO_DECIMALS = frozenset({"JPY", "KRW", "ZJPY", "VND", "CLP", "ISK"})
CRYPTO_DECIMALS = 8
MAX_PRICE_DECIMALS = 18  # 0.000000000251 (SHIB/BTC) has 12; the accounting counts in 28 digits
MAX_TICKS_IN_PRICE = 1e15  # 15 significant digits: what a float holds exactly, more than any venue quotes
RULE_FIELDS = ("price_tick", "qty_step", "min_qty", "min_notional")


@dataclass(frozen=True, slots=True)
class Recorded:
    """A pair's rules in a venue's recorded market metadata."""

    price_tick: Decimal
    qty_step: Decimal
    min_qty: Decimal
    min_notional: Decimal


def _r(tick: str, step: str, min_qty: str, min_notional: str) -> Recorded:
    return Recorded(Decimal(tick), Decimal(step), Decimal(min_qty), Decimal(min_notional))


# venue -> pair -> rules; tests/core/backtest/test_markets.py derives it again from the recorded files.
RECORDED: dict[str, dict[str, Recorded]] = {
    "kraken": {
        "BTC/USDT": _r("0.1", "1E-8", "0.0001", "0.5"),
        "BTC/USD": _r("0.1", "1E-8", "0.0001", "0.5"),
        "ETH/USDT": _r("0.01", "1E-8", "0.01", "0.5"),
        "ADA/USDT": _r("0.000001", "1E-8", "20", "0.5"),
        "LTC/USDT": _r("0.00001", "1E-8", "0.08", "0.5"),
        "XRP/USDT": _r("0.00001", "1E-8", "10", "0.5"),
        "DOGE/USDT": _r("0.00001", "1E-8", "80", "0.5"),
        "XRP/USD": _r("0.00001", "1E-8", "10", "0.5"),
    },
    "coinbase": {
        "BTC/USDC": _r("0.01", "1E-8", "1E-8", "1"),
        "BTC/USDT": _r("0.01", "1E-8", "1E-8", "1"),
        "ETH/USDT": _r("0.01", "1E-8", "1E-8", "1"),
        "ADA/USDT": _r("0.0001", "0.01", "0.01", "1"),
        "XRP/USDT": _r("0.0001", "0.000001", "0.000001", "1"),
        "DOGE/USDT": _r("0.0001", "0.1", "0.1", "1"),
        "XRP/USDC": _r("0.0001", "0.000001", "0.000001", "1"),
        "BTC/USD": _r("0.01", "1E-8", "1E-8", "1"),
    },
}


def quote_of(pair: str) -> str:
    """``ETH/BTC`` -> ``BTC``: what the pair's prices, cash, equity and PnL are counted in."""
    base, sep, quote = pair.partition("/")
    if not (base and sep and quote):
        raise ValueError(f"pair must be written BASE/QUOTE, got {pair!r}")
    return quote


def quote_decimals(currency: str) -> int:
    """Decimals an amount in ``currency`` is shown with (2 when the currency is not named)."""
    code = currency.upper()
    if not code or code in TWO_DECIMALS:
        return 2
    if code in NO_DECIMALS:
        return 0
    return CRYPTO_DECIMALS


def money(value: float | Decimal | None, currency: str = "", *, sign: bool = False) -> str:
    """``1,234.56 USD``, ``0.01234500 BTC``; ``n/a`` for None."""
    if value is None:
        return "n/a"
    places = quote_decimals(currency)
    text = format(float(value), f"{'+' if sign else ''},.{places}f")
    if text.lstrip("+-").strip("0,.") == "":  # no -0.00 / +0.00
        text = text.lstrip("+-")
    return f"{text} {currency}".rstrip()


def price_decimals(*columns: np.ndarray) -> int:
    """The most decimal places the prices are written with (at most :data:`MAX_PRICE_DECIMALS`).

    Works on the floats: ``x * 10**d`` is a whole number to within float rounding once ``d`` covers
    every written digit, and at least a tenth away from one while a digit is still missing. A price
    below one unit of the ``d``-th decimal is not covered yet (``0.00000075`` is not a whole number of
    units just because it is close to 0).
    """
    values = np.abs(np.concatenate([np.asarray(c, dtype=np.float64) for c in columns]))
    values = values[np.isfinite(values) & (values > 0)]
    for d in range(MAX_PRICE_DECIMALS + 1):
        scaled = values * 10.0 ** d
        whole = np.round(scaled)
        if np.all((whole >= 1) & (np.abs(scaled - whole) <= np.maximum(1e-6, scaled * 1e-12))):
            return d
    return MAX_PRICE_DECIMALS


def recorded(pair: str, venue: str) -> tuple[str, Recorded] | None:
    """(venue, rules) from the recorded metadata: ``venue``'s first, then Coinbase's, then Kraken's."""
    for name in dict.fromkeys((venue, "coinbase", "kraken")):
        rules = RECORDED.get(name, {}).get(pair)
        if rules is not None:
            return name, rules
    return None


@dataclass(frozen=True, slots=True)
class PairRules:
    """The rules a backtest of one pair uses, and where each came from (shown to the user)."""

    rules: MarketRules
    origin: dict[str, str]

    def describe(self) -> str:
        r = self.rules
        values = {"price_tick": r.price_tick, "qty_step": r.qty_step, "min_qty": r.min_qty,
                  "min_notional": r.min_notional}
        return ", ".join(f"{name.replace('_', ' ')} {format(values[name].normalize(), 'f')} ({self.origin[name]})"
                         for name in RULE_FIELDS)


def resolve(pair: str, venue: str, explicit: dict[str, Decimal], defaults: dict[str, Decimal],
            fees: tuple[Decimal, Decimal], prices: tuple[np.ndarray, ...]) -> PairRules:
    """The market rules for ``pair``; see the module docstring for the order.

    ``explicit``: the rule settings the user set; ``defaults``: the paper settings' values of all four;
    ``fees``: (maker, taker); ``prices``: the candles' price columns, read only when a tick is inferred.
    """
    quote = quote_of(pair)
    found = recorded(pair, venue)
    values: dict[str, Decimal] = {}
    origin: dict[str, str] = {}
    for name in RULE_FIELDS:
        if name in explicit:
            values[name], origin[name] = explicit[name], "set"
        elif found is not None:
            values[name], origin[name] = getattr(found[1], name), f"{found[0]} market data"
        elif name == "price_tick":
            values[name] = Decimal(1).scaleb(-price_decimals(*prices))
            origin[name] = "inferred from the candles' prices"
        elif name == "min_notional" and quote.upper() not in TWO_DECIMALS:
            values[name], origin[name] = Decimal(0), f"none: the paper default is a USD figure, not {quote}"
        else:
            values[name], origin[name] = defaults[name], "paper default"
    _check_tick(values["price_tick"], origin["price_tick"], prices)
    rules = MarketRules(min_qty=values["min_qty"], qty_step=values["qty_step"], price_tick=values["price_tick"],
                        min_notional=values["min_notional"], maker_fee=fees[0], taker_fee=fees[1])
    return PairRules(rules=rules, origin=origin)


def _check_tick(tick: Decimal, origin: str, prices: tuple[np.ndarray, ...]) -> None:
    """ValueError when the candles' prices cannot be quoted on ``tick``.

    A tick above the lowest price would round a fill to a price the market never had (a buy at
    0.00000075 filled at 1); one so fine that the highest price holds more than
    :data:`MAX_TICKS_IN_PRICE` ticks is past the digits a price is counted in.
    """
    values = np.concatenate([np.asarray(c, dtype=np.float64) for c in prices]) if prices else np.empty(0)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return
    low, high = float(values.min()), float(values.max())
    text = format(tick.normalize(), "f")
    if float(tick) > low:
        raise ValueError(f"price tick {text} ({origin}) is larger than the candles' lowest price {low:.10g}: "
                         "their prices cannot be quoted on it; give the pair's tick with --tick")
    if high / float(tick) > MAX_TICKS_IN_PRICE:
        raise ValueError(f"price tick {text} ({origin}) is too fine for prices up to {high:.10g}: more than "
                         f"{MAX_TICKS_IN_PRICE:.0e} ticks in a price; give the pair's tick with --tick")
