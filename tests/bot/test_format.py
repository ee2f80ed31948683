"""The one number and time formatter: what every reply and alert shows for prices, amounts and times."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from bot import format as fmt


@pytest.mark.parametrize(("value", "shown"), [
    ("0.0000081234", "0.0000081234"),  # PEPE: five significant digits, never 0.00
    ("0.00000812", "0.00000812"),
    ("0.000012345", "0.000012345"),  # SHIB
    ("0.52345", "0.52345"),  # XRP
    ("142.37", "142.37"),  # SOL
    ("3245.678", "3,245.68"),  # ETH
    ("64000.5", "64,000.50"),  # BTC
    ("64000.50000000", "64,000.50"),
])
def test_prices_keep_their_significant_digits_at_any_magnitude(value: str, shown: str) -> None:
    assert fmt.price(D(value)) == shown


def test_round_prices_on_the_tick_keep_the_ticks_decimals() -> None:
    assert fmt.price(D("63000"), D("0.1")) == "63,000.0"  # not five significant digits, "63,000.00"
    assert fmt.price(D("0.0000081"), D("0.00000001")) == "0.00000810"
    assert fmt.price(D("1.20"), D("0.01")) == "1.20"


def test_prices_follow_the_tick_unless_it_would_erase_them() -> None:
    assert fmt.price(D("64000.5"), D("0.1")) == "64,000.5"
    assert fmt.price(D("0.00000812"), D("0.00000001")) == "0.00000812"
    # a default tick far coarser than the price (paper markets) must not show 0.00
    assert fmt.price(D("0.00000812"), D("0.01")) == "0.00000812"


def test_money_has_its_currency_code_and_the_currency_decimals() -> None:
    assert fmt.money(D("1028.5887994611"), "USD") == "1,028.59 USD"
    assert fmt.money(D("16.07585700"), "EUR") == "16.08 EUR"
    assert fmt.money(D("4439.71000000"), "USDT") == "4,439.71 USDT"
    assert fmt.money(D("1234.5"), "JPY") == "1,235 JPY"
    # a BTC-quoted account: satoshis count, so eight decimals
    assert fmt.money(D("0.01234567891"), "BTC") == "0.01234568 BTC"
    assert fmt.signed(D("0.00000123"), "BTC") == "+0.00000123 BTC"
    assert fmt.money(D("2.5"), "ETH") == "2.50000000 ETH"


def test_pnl_is_signed_with_its_percent_and_never_negative_zero() -> None:
    assert fmt.pnl(D("163.91069585"), D("1.2534"), "USD") == "+163.91 USD (+1.25%)"
    assert fmt.pnl(D("-4"), D("-0.5"), "USD") == "-4.00 USD (-0.50%)"
    assert fmt.signed(D("-0.001"), "USD") == "0.00 USD"
    assert fmt.pct(D("-0.001")) == "0.00%"


def test_quantities_follow_the_step_without_trailing_zeros() -> None:
    assert fmt.qty(D("0.70400000")) == "0.704"
    assert fmt.qty(D("19.80"), D("0.01")) == "19.8"
    assert fmt.qty(D("1250000")) == "1,250,000"  # PEPE-sized quantities
    assert fmt.qty(D("0.123456789123")) == "0.12345679"
    assert fmt.qty(D("0.123456789"), D("0.001")) == "0.123"


def test_times_are_local_with_the_zone_abbreviation() -> None:
    summer = datetime(2024, 5, 1, 13, 45, tzinfo=UTC)
    winter = datetime(2024, 1, 15, 7, 0, tzinfo=UTC)
    assert fmt.when(summer, "Europe/Berlin") == "2024-05-01 15:45 CEST"
    assert fmt.when(winter, "Europe/Berlin") == "2024-01-15 08:00 CET"
    assert fmt.when(summer, "America/New_York") == "2024-05-01 09:45 EDT"
    assert fmt.when(summer, "Asia/Kolkata") == "2024-05-01 19:15 IST"
    assert fmt.when(summer, "Europe/Istanbul") == "2024-05-01 16:45 UTC+03"  # no letter abbreviation
    assert fmt.when(summer) == "2024-05-01 13:45 UTC"


def test_short_and_relative_times() -> None:
    at = datetime(2024, 5, 1, 13, 45, tzinfo=UTC)
    assert fmt.clock(at, "Europe/Berlin", at) == "15:45 CEST"  # today: the time alone
    assert fmt.clock(at, "Europe/Berlin", datetime(2024, 6, 1, tzinfo=UTC)) == "1 May 15:45 CEST"
    assert fmt.clock(at, "Europe/Berlin", datetime(2025, 6, 1, tzinfo=UTC)) == "1 May 2024 15:45 CEST"
    # 23:30 UTC is already the next day in Berlin
    assert fmt.clock(datetime(2024, 5, 1, 23, 30, tzinfo=UTC), "Europe/Berlin",
                     datetime(2024, 5, 2, 6, 0, tzinfo=UTC)) == "01:30 CEST"
    assert fmt.ago(at, datetime(2024, 5, 1, 16, 50, tzinfo=UTC)) == "3 h ago"
    assert fmt.ago(at, datetime(2024, 5, 1, 13, 57, tzinfo=UTC)) == "12 min ago"
    assert fmt.ago(at, datetime(2024, 5, 4, 13, 45, tzinfo=UTC)) == "3 d ago"
