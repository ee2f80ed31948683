"""The one number and time formatter: every reply and every alert shows values through these functions.

Telegram, Discord, Slack and the console agree on every figure because the command layer and the
alert formatters (:mod:`bot.notify.formats`) format once, here. Nothing here adds markup, and money
is never converted to float.

- **Money** is shown in its currency with the currency's code and the decimals that currency is
  counted in: 2 for fiat and dollar/euro stablecoins (``1,028.59 USD``), 0 for yen and won, 8 for
  anything else, crypto quotes included (``0.01234500 BTC``): a BTC-quoted account's PnL of a few
  satoshis must not round to ``0.00``.
- **Prices** are shown to the market's tick where it is known; otherwise (and when the tick is so
  coarse the price would keep fewer than three significant digits) to five significant digits, at
  least two decimals: ``64,000.50``, ``142.37``, ``0.52345``, ``0.00000812``.
- **Quantities** are rounded to the market's step where known (at most 8 decimals otherwise) and
  shown without trailing zeros: ``0.704``, ``19.8``, ``1,250,000``.
- **Times** are local to the service's time zone with its abbreviation (``2024-05-01 15:45 CEST``),
  or relative (``3 h ago``) where that reads better. UTC is for logs and exports only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

DASH = "-"
_CENTS = Decimal("0.01")

# Currencies counted in cents: fiat, and stablecoins that track a fiat currency one to one.
_TWO_DECIMALS = frozenset({
    "USD", "EUR", "GBP", "CHF", "CAD", "AUD", "NZD", "SGD", "HKD", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF",
    "TRY", "MXN", "BRL", "ZAR", "INR", "CNY", "AED", "ILS", "ARS",
    "USDT", "USDC", "DAI", "BUSD", "TUSD", "FDUSD", "PYUSD", "USDP", "GUSD", "USDE", "EURC", "EURT", "EURS",
    "ZUSD", "ZEUR", "ZGBP", "ZCAD",  # Kraken's legacy asset codes
})
_NO_DECIMALS = frozenset({"JPY", "KRW", "ZJPY", "VND", "CLP", "ISK"})
_CRYPTO_DECIMALS = 8
_PRICE_DIGITS = 5  # significant digits of a price when the tick is unknown
_PRICE_MAX_DECIMALS = 12
_QTY_MAX_DECIMALS = 8


def currency_decimals(currency: str) -> int:
    """How many decimals amounts in ``currency`` are shown with (2 when the currency is not named)."""
    code = currency.upper()
    if not code or code in _TWO_DECIMALS:
        return 2
    if code in _NO_DECIMALS:
        return 0
    return _CRYPTO_DECIMALS


def quote_of(pair: str) -> str:
    """``BTC/USD`` -> ``USD``; what a pair's prices and PnL are counted in."""
    return pair.rpartition("/")[2] if "/" in pair else ""


def _fixed(value: Decimal, decimals: int, *, sign: bool = False, strip_to: int | None = None) -> str:
    """``value`` rounded half-up to ``decimals`` with thousands separators; no ``-0``; optional sign;
    trailing zeros removed down to ``strip_to`` decimals when given."""
    q = value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP) if decimals >= 0 else value
    if q == 0:
        q = abs(q)
    text = f"{q:{'+' if sign and q != 0 else ''},.{max(decimals, 0)}f}"
    if strip_to is not None and "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0")
        frac += "0" * max(0, strip_to - len(frac))
        text = f"{whole}.{frac}" if frac else whole
    return text


def _with_code(text: str, currency: str) -> str:
    return f"{text} {currency}" if currency else text


def money(value: Decimal | None, currency: str = "") -> str:
    """``1,234.56 USD``, ``0.01234500 BTC``: an amount in its currency's decimals, with its code."""
    if value is None:
        return DASH
    return _with_code(_fixed(value, currency_decimals(currency)), currency)


def signed(value: Decimal | None, currency: str = "") -> str:
    """``+12.30 USD`` / ``-4.00 USD``: PnL always shows its sign (zero shows none)."""
    if value is None:
        return DASH
    return _with_code(_fixed(value, currency_decimals(currency), sign=True), currency)


def pct(value: Decimal | None) -> str:
    """A value already in percent (``1.5`` -> ``+1.50%``)."""
    if value is None:
        return DASH
    return _fixed(value, 2, sign=True) + "%"


def pnl(value: Decimal | None, percent: Decimal | None = None, currency: str = "") -> str:
    """``+163.91 USD (+1.25%)``: signed PnL in its currency, with its percentage when known."""
    if value is None:
        return DASH
    text = signed(value, currency)
    return f"{text} ({pct(percent)})" if percent is not None else text


def _decimals_of(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _significant_decimals(value: Decimal, digits: int) -> int:
    if value == 0:
        return 2
    magnitude = value.copy_abs().adjusted()  # floor(log10(|value|))
    return min(_PRICE_MAX_DECIMALS, max(2, digits - 1 - magnitude))


def price(value: Decimal | None, tick: Decimal | None = None) -> str:
    """A price: to the tick where known, else five significant digits (``64,000.50``, ``0.00000812``)."""
    if value is None:
        return DASH
    if tick is not None and tick > 0:
        decimals = _decimals_of(tick)
        rounded = value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
        # a tick far coarser than the price (a default paper market) would leave a meaningless figure: to the
        # tick only when the price is at least 100 ticks (a round price on the tick counts: 63,000.0 at 0.1)
        if abs(rounded) >= 100 * tick:
            return _fixed(value, decimals)
    return _fixed(value, _significant_decimals(value, _PRICE_DIGITS), strip_to=2)


def qty(value: Decimal | None, step: Decimal | None = None) -> str:
    """A quantity rounded to the market's ``step`` (else to 8 decimals), without trailing zeros."""
    if value is None:
        return DASH
    decimals = _decimals_of(step) if step is not None and step > 0 else _QTY_MAX_DECIMALS
    return _fixed(value, min(decimals, _QTY_MAX_DECIMALS), strip_to=0)


def ratio(value: Decimal | None) -> str:
    """A fraction shown as a percentage (``0.55`` -> ``55.0%``); win rates come as fractions."""
    if value is None:
        return DASH
    return f"{(value * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):.1f}%"


def number(value: Decimal | None) -> str:
    """A plain dimensionless figure such as a profit factor (``1.85``)."""
    if value is None:
        return DASH
    return _fixed(value, 2)


def count(n: int, noun: str, plural: str = "") -> str:
    """``1 position``, ``3 positions``."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


# -- time ------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """The named IANA zone (``UTC`` when empty)."""
    return ZoneInfo(name) if name and name != "UTC" else UTC


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def abbreviation(value: datetime) -> str:
    """``CEST``, ``EST``, ``UTC``; zones without a letter abbreviation read ``UTC+03``."""
    name = value.strftime("%Z")
    if not name or name[0] in "+-":
        offset = value.strftime("%z")  # +0300
        if not offset:
            return "UTC"
        hours, minutes = offset[:3], offset[3:]
        name = f"UTC{hours}" + (f":{minutes}" if minutes != "00" else "")
    return name


def local(value: datetime, tz: str = "UTC") -> datetime:
    """``value`` (UTC when naive) in the time zone ``tz``."""
    return _aware(value).astimezone(zone(tz))


def when(value: datetime | None, tz: str = "UTC") -> str:
    """A timestamp to the minute, local, with the zone: ``2024-05-01 15:45 CEST``."""
    if value is None:
        return DASH
    here = local(value, tz)
    return f"{here:%Y-%m-%d %H:%M} {abbreviation(here)}"


def clock(value: datetime | None, tz: str = "UTC", now: datetime | None = None, *, with_zone: bool = True) -> str:
    """Short local time: ``15:45 CEST`` on the same local day as ``now``, else ``30 Apr 15:45 CEST``
    (with the year when it differs). ``with_zone=False`` leaves the zone to a heading."""
    if value is None:
        return DASH
    here = local(value, tz)
    today = local(now, tz).date() if now is not None else None
    zone_name = f" {abbreviation(here)}" if with_zone else ""
    if today is not None and here.date() == today:
        return f"{here:%H:%M}{zone_name}"
    if today is not None and here.year == today.year:
        return f"{here.day} {here:%b %H:%M}{zone_name}"
    return f"{here.day} {here:%b %Y %H:%M}{zone_name}"


def day(value: date | None) -> str:
    """A calendar day as people read it: ``Mon 29 Apr 2024``."""
    if value is None:
        return DASH
    return f"{value:%a} {value.day} {value:%b %Y}"


def ago(value: datetime | None, now: datetime) -> str:
    """Relative time: ``just now``, ``12 min ago``, ``3 h ago``, ``2 d ago`` (``in 5 min`` ahead)."""
    if value is None:
        return DASH
    seconds = (_aware(now) - _aware(value)).total_seconds()
    ahead = seconds < 0
    s = abs(int(seconds))
    if s < 60:
        return "just now" if not ahead else "in under a minute"
    if s < 3600:
        text = f"{s // 60} min"
    elif s < 86400 * 2:
        text = f"{s // 3600} h"
    else:
        text = f"{s // 86400} d"
    return f"in {text}" if ahead else f"{text} ago"


def age(seconds: float | None) -> str:
    """How old something is: ``12s``, ``3m 04s``, ``2h 05m``, ``3d 02h``; ``no data`` when unknown."""
    if seconds is None:
        return "no data"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


# -- people ---------------------------------------------------------------------------------------


def person(key: str, name: str = "") -> str:
    """``alice (telegram:1)``: a display name beside the stable id (the id alone when no name is known)."""
    return f"{name} ({key})" if name and name != key else key


def clip(text: str, limit: int) -> str:
    """Shorten user-supplied text for echoing back or auditing; never splits inside the limit."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
