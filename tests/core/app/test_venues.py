"""trading.venue = "ccxt:<id>": the setting, building the venue (errors name the key or how to list ids),
the preflight gate honouring ccxt.allow_withdraw_keys, `tradectl venues`, and ccxt loaded only when used."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.app.cli import app
from core.app.errors import StartupCause, StartupError
from core.app.live import build_live_exchange, preflight
from core.app.trading_core import TradingCore
from core.settings.config import ConfigError, Settings, load_settings
from core.trading.events import EventBus
from exchanges.base import LiveExchange
from exchanges.ccxt import CcxtExchange
from persistence.db import Database
from tests.exchanges.ccxt.harness import ccxt_for
from tests.exchanges.fakes import FakeCoinbase, FakeKraken

LIVE = {"TRADECTL_TRADING__MODE": "live"}


def settings(venue: str, **env: str) -> Settings:
    return load_settings(env={**LIVE, "TRADECTL_TRADING__VENUE": venue, **env}, dotenv_path=None)


def test_a_ccxt_venue_is_a_setting_and_a_bad_one_says_how_to_list_them() -> None:
    assert settings("ccxt:binance").trading.venue == "ccxt:binance"
    for bad, says in (("binance", "unknown venue 'binance'"), ("ccxt:Bin ance", "ccxt:<exchange id> in lower case")):
        with pytest.raises(ConfigError, match="tradectl venues") as err:
            settings(bad)
        assert "trading.venue" in str(err.value) and says in str(err.value)
    with pytest.raises(ConfigError, match="trades real money"):
        load_settings(env={"TRADECTL_TRADING__VENUE": "ccxt:kraken"}, dotenv_path=None)


def test_building_names_the_missing_key_or_the_unknown_exchange() -> None:
    with pytest.raises(StartupError, match=r"ccxt\.api_key and ccxt\.api_secret") as missing:
        build_live_exchange(settings("ccxt:kraken"), db=None)
    with pytest.raises(StartupError, match=r"no exchange 'krakn'.*tradectl venues") as unknown:
        build_live_exchange(settings("ccxt:krakn", TRADECTL_CCXT__API_KEY="k", TRADECTL_CCXT__API_SECRET="s"),
                            db=None)
    with pytest.raises(StartupError, match="no sandbox") as sandbox:
        build_live_exchange(settings("ccxt:kraken", TRADECTL_CCXT__API_KEY="k", TRADECTL_CCXT__API_SECRET="s",
                                     TRADECTL_CCXT__SANDBOX="true"), db=None)
    assert {e.value.cause for e in (missing, unknown, sandbox)} == {StartupCause.SETTINGS}


async def test_the_gate_runs_the_ccxt_preflight_and_honours_ccxt_allow_withdraw_keys() -> None:
    async with FakeKraken(key_can_withdraw=True) as fake:
        fake.set_balance("USD", Decimal(1000))
        await fake.set_price("BTC/USD", Decimal(20000))
        env = {"TRADECTL_CCXT__API_KEY": fake.api_key, "TRADECTL_CCXT__API_SECRET": fake.api_secret,
               "TRADECTL_CCXT__REST_URL": fake.rest_url, "TRADECTL_CCXT__WEBSOCKET": "false"}
        built = build_live_exchange(settings("ccxt:kraken", **env), db=None)
        assert isinstance(built, CcxtExchange) and isinstance(built, LiveExchange)
        assert built.name == "ccxt:kraken" and built.ex.enableRateLimit
        assert built.ex.urls["api"]["private"] == fake.rest_url
        await built.stop()
        # the same venue without ccxt's 1 s spacing of Kraken calls, so that the test stays fast
        gate = await preflight(settings("ccxt:kraken", **env), ccxt_for(fake))
        assert not gate.passed and any(line.startswith("FAIL  no withdrawal permission") for line in gate.lines)
        allowed = settings("ccxt:kraken", **env, TRADECTL_CCXT__ALLOW_WITHDRAW_KEYS="true")
        gate = await preflight(allowed, ccxt_for(fake))
        assert gate.passed, gate.lines
        assert any("allowed by allow_withdraw_keys" in line for line in gate.lines)


def test_tradectl_venues_lists_native_and_ccxt_venues_and_refuses_an_unknown_id() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["venues"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any(line.split()[:1] == ["kraken"] for line in lines)  # the native adapter
    assert any(line.split()[:3] == ["ccxt:kraken", "yes", "WebSocket"] for line in lines)
    assert any(line.split()[:2] == ["ccxt:bequant", "no"] for line in lines)
    one = runner.invoke(app, ["venues", "ccxt:binance"])
    assert one.exit_code == 0 and "ccxt:binance" in one.output and "native" not in one.output
    bad = runner.invoke(app, ["venues", "krakn"])
    assert bad.exit_code == 2 and "tradectl venues" in bad.output and "ccxt:kraken" in bad.output


def test_ccxt_is_imported_only_for_a_ccxt_venue() -> None:
    code = ("import sys; import core.app.cli, core.app.live, core.app.venues; from core.settings.config import "
            "load_settings; load_settings(env={}, dotenv_path=None); print(sorted(m for m in sys.modules "
            "if m == 'ccxt' or m.startswith(('ccxt.', 'exchanges.ccxt'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


async def test_the_service_starts_live_on_a_ccxt_venue_only_past_the_gate(sqlite_db: Database, tmp_path: Path) -> None:
    async with FakeCoinbase(can_transfer=True) as fake:  # a key that can move funds out
        fake.set_balance("USD", Decimal(1000))
        await fake.set_price("BTC/USD", Decimal(20000))
        top = datetime.now(UTC).replace(second=0, microsecond=0)
        fake.add_candles("BTC/USD", 60, [{"start": str(int((top - timedelta(minutes=k)).timestamp())),
                                          "low": "19990", "high": "20010", "open": "20000", "close": "20000",
                                          "volume": "1"} for k in range(60, 1, -1)])
        ccxt = {"api_key": fake.key_name, "api_secret": fake.private_key_pem, "rest_url": fake.rest_url,
                "websocket": False}

        def core(allow: bool) -> TradingCore:
            s = load_settings(env={}, dotenv_path=None, overrides={
                "trading": {"mode": "live", "venue": "ccxt:coinbase", "pairs": ["BTC/USD"], "timeframe": "1m"},
                "ccxt": {**ccxt, "allow_withdraw_keys": allow}})
            return TradingCore(s, sqlite_db, EventBus(), instance_id="t", leader=lambda: "t", on_failure=lambda e: None)

        refused = core(False)
        with pytest.raises(StartupError, match="no withdrawal permission: the key can transfer funds out"):
            await refused.start()
        allowed = core(True)  # ccxt.allow_withdraw_keys, not another venue's flag, decides
        await allowed.start()
        try:
            assert allowed.exchange is not None and allowed.exchange.name == "ccxt:coinbase"
            assert allowed.engine is not None
        finally:
            await allowed.stop()
