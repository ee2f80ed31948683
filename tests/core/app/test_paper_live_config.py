"""trading.feed: paper on a live feed is allowed, live keeps its rules, bad values name the key."""

from __future__ import annotations

import pytest

from core.app.startup_checks import startup_problems
from core.settings.config import ConfigError, load_settings


def test_replay_is_the_default_and_paper_may_take_a_live_feed() -> None:
    default = load_settings(env={}, dotenv_path=None)
    assert default.trading.feed == "replay" and default.trading.paper_label == ""
    for feed, name in (("kraken", "Kraken"), ("coinbase", "Coinbase")):
        s = load_settings(env={"TRADECTL_TRADING__FEED": feed}, dotenv_path=None)
        assert s.trading.mode == "paper" and s.trading.venue == "paper" and s.trading.feed == feed
        assert s.trading.paper_label == f"PAPER · live {name} prices"


def test_live_mode_keeps_its_rules_and_a_mismatched_feed_names_the_key() -> None:
    live = {"TRADECTL_TRADING__MODE": "live", "TRADECTL_TRADING__VENUE": "kraken"}
    assert load_settings(env=live, dotenv_path=None).trading.paper_label == ""  # feed left unset
    assert load_settings(env={**live, "TRADECTL_TRADING__FEED": "kraken"}, dotenv_path=None).trading.feed == "kraken"
    with pytest.raises(ConfigError, match=r"trading\.feed = 'coinbase' does not match trading\.venue = 'kraken'"):
        load_settings(env={**live, "TRADECTL_TRADING__FEED": "coinbase"}, dotenv_path=None)
    with pytest.raises(ConfigError, match=r"trading\.feed = 'replay' does not match"):
        load_settings(env={**live, "TRADECTL_TRADING__FEED": "replay"}, dotenv_path=None)
    with pytest.raises(ConfigError, match=r"trading\.venue = 'kraken' trades real money"):
        load_settings(env={"TRADECTL_TRADING__VENUE": "kraken", "TRADECTL_TRADING__FEED": "kraken"},
                      dotenv_path=None)


def test_a_ccxt_exchange_may_be_the_feed() -> None:
    s = load_settings(env={"TRADECTL_TRADING__FEED": "ccxt:binance"}, dotenv_path=None)
    assert s.trading.feed == "ccxt:binance" and s.trading.paper_label == "PAPER · live binance prices (ccxt)"


@pytest.mark.parametrize(("feed", "says"), [
    ("binance", "unknown feed 'binance'; supported: replay, kraken, coinbase or ccxt:<exchange id>"),
    ("Kraken", "unknown feed 'Kraken'"),
    ("", "unknown feed ''"),
    ("ccxt:Binance", "'ccxt:Binance': write a ccxt feed as ccxt:<exchange id> in lower case"),
    ("ccxt:", "'ccxt:': write a ccxt feed as ccxt:<exchange id>"),
])
def test_a_bad_feed_is_refused_naming_the_key(feed: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env={"TRADECTL_TRADING__FEED": feed}, dotenv_path=None)
    assert str(err.value).startswith("trading.feed: ") and says in str(err.value)
    assert "TRADECTL_TRADING__FEED" in str(err.value)


def test_a_live_feed_needs_no_replay_candles_of_its_timeframe() -> None:
    env = {"TRADECTL_TRADING__TIMEFRAME": "15m"}
    replay = startup_problems(load_settings(env=env, dotenv_path=None))
    assert any(p.startswith("trading.timeframe: the bundled replay candles are 1h") for p in replay)
    live_feed = load_settings(env={**env, "TRADECTL_TRADING__FEED": "kraken"}, dotenv_path=None)
    assert not any("replay" in p for p in startup_problems(live_feed))


def test_a_ccxt_feed_ccxt_does_not_have_refuses_the_start_naming_the_setting() -> None:
    from core.app.errors import StartupError
    from core.app.paper_live import public_feed_venue
    from exchanges.clock import SystemClock

    s = load_settings(env={"TRADECTL_TRADING__FEED": "ccxt:nosuchexchange"}, dotenv_path=None)
    with pytest.raises(StartupError, match=r"^trading\.feed: .*nosuchexchange"):
        public_feed_venue(s, SystemClock())
