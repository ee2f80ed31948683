"""Risk: approve, resize or reject every entry, with the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from core.settings.settings_models import RiskSettings
from core.trading.risk import Portfolio, RiskManager, TradeStats
from exchanges.base import Market

NOW = datetime(2024, 5, 1, tzinfo=UTC)
MARKET = Market("BTC/USD", "BTC", "USD", "BTCUSD", min_qty=Decimal("0.0001"), qty_step=Decimal("0.00000001"),
                price_tick=Decimal("0.01"), min_notional=Decimal("5"), maker_fee=Decimal("0.0016"),
                taker_fee=Decimal("0.0026"))
NO_STATS = TradeStats(0, 0, Decimal(0), Decimal(0))


def pf(equity: str = "10000", cash: str | None = None, exposure: dict[str, Decimal] | None = None,
       n: int = 0) -> Portfolio:
    return Portfolio(Decimal(equity), Decimal(cash or equity), exposure or {}, n)


def check(rm: RiskManager, **kw: object):  # type: ignore[no-untyped-def]
    args = dict(pair="BTC/USD", price=Decimal("100"), suggested_stop=Decimal("95"), market=MARKET, portfolio=pf(),
                stats=NO_STATS, now=NOW)
    args.update(kw)
    return rm.check_entry(**args)  # type: ignore[arg-type]


def test_fixed_fractional_size_from_stop_distance() -> None:
    rm = RiskManager(RiskSettings(risk_per_trade=Decimal("0.01"), max_pair_exposure=Decimal("1"),
                                  max_total_exposure=Decimal("1")))
    d = check(rm)
    # risk 1% of 10,000 = 100 over a 5.00 stop distance = 20 units = 2,000 notional
    assert d.approved and d.qty == Decimal(20) and d.stop == Decimal("95.00") and not d.resized


def test_pair_exposure_cap_resizes() -> None:
    rm = RiskManager(RiskSettings(max_pair_exposure=Decimal("0.1")))
    d = check(rm)
    assert d.approved and d.resized and d.qty == Decimal(10)


def test_rejections_name_their_reason() -> None:
    rm = RiskManager(RiskSettings(max_open_positions=2))
    assert "max open positions" in check(rm, portfolio=pf(n=2)).reason
    assert "already holding" in check(rm, portfolio=pf(exposure={"BTC/USD": Decimal(5)})).reason
    assert "below the venue minimum" in check(rm, portfolio=pf(equity="10", cash="3")).reason
    total = RiskManager(RiskSettings(max_total_exposure=Decimal("0.5")))
    assert "total exposure" in check(total, portfolio=pf(exposure={"ETH/USD": Decimal(6000)})).reason


def test_cooldown_after_losing_exit_only() -> None:
    rm = RiskManager(RiskSettings(cooldown_after_loss_s=3600))
    rm.record_exit("BTC/USD", Decimal("5"), NOW - timedelta(minutes=5))
    assert check(rm).approved
    rm.record_exit("BTC/USD", Decimal("-5"), NOW - timedelta(minutes=5))
    assert "cooling down" in check(rm).reason
    assert check(rm, now=NOW + timedelta(hours=1)).approved


def test_kelly_caps_and_rejects_negative_edge() -> None:
    rm = RiskManager(RiskSettings(kelly_min_trades=10, max_pair_exposure=Decimal(1), max_total_exposure=Decimal(1),
                                  risk_per_trade=Decimal("0.2")))
    good = TradeStats(closed=20, wins=12, avg_win=Decimal(10), avg_loss=Decimal(10))  # f = 0.6 - 0.4 = 0.2
    d = check(rm, stats=good)
    assert d.approved and d.resized
    assert d.qty == Decimal(10)  # 10,000 * 0.2 * 0.5 / 100
    bad = TradeStats(closed=20, wins=5, avg_win=Decimal(10), avg_loss=Decimal(10))
    assert "negative edge" in check(rm, stats=bad).reason
    few = TradeStats(closed=5, wins=0, avg_win=Decimal(0), avg_loss=Decimal(10))
    assert check(rm, stats=few).approved


def test_bad_suggested_stop_falls_back_to_default() -> None:
    rm = RiskManager(RiskSettings(default_stop_pct=Decimal("0.02")))
    assert check(rm, suggested_stop=Decimal("150")).stop == Decimal("98.00")


def test_daily_loss_and_drawdown_breaches() -> None:
    rm = RiskManager(RiskSettings(daily_loss_limit=Decimal("0.05"), max_drawdown=Decimal("0.2")))
    assert rm.breach(equity=Decimal(9600), day_start_equity=Decimal(10000), peak_equity=Decimal(10000)) is None
    daily = rm.breach(equity=Decimal(9400), day_start_equity=Decimal(10000), peak_equity=Decimal(10000))
    assert "daily loss" in (daily or "")
    drawdown = rm.breach(equity=Decimal(9400), day_start_equity=Decimal(9400), peak_equity=Decimal(12000))
    assert "drawdown" in (drawdown or "")
