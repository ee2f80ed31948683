"""Names vulture reports as unused that are in fact used: called by a framework, looked up by name,
or stored rather than read. `make check` runs vulture with this file (see [tool.vulture] in pyproject.toml).
A name that is really dead is deleted, not listed here."""


# Registered by a decorator and called through the registry or the framework: chat commands (@command), typer
# CLI commands and callbacks, discord.py client hooks and view callbacks, pydantic validators and settings
# sources, SQLAlchemy type hooks and engine event listeners, pytest hooks and autouse fixtures.
model_config  # unused variable (core/settings/config.py:60)
settings_cls  # unused variable (core/settings/config.py:90)
env_settings  # unused variable (core/settings/config.py:92)
dotenv_settings  # unused variable (core/settings/config.py:93)
file_secret_settings  # unused variable (core/settings/config.py:94)
model_config  # unused variable (core/settings/models_base.py:9)
_.isolation_level  # unused attribute (persistence/db.py:248)
impl  # unused variable (persistence/types.py:23)
cache_ok  # unused variable (persistence/types.py:24)
impl  # unused variable (persistence/types.py:51)
cache_ok  # unused variable (persistence/types.py:52)
_.setup_hook  # unused method (bot/platforms/discord/gateway.py:67)
weekly  # unused function (bot/commands/info.py:254)
monthly  # unused function (bot/commands/info.py:259)
rearm  # unused function (bot/commands/trading.py:192)
_on_begin  # unused function (persistence/db.py:255)
closeall  # unused function (bot/commands/trading.py:178)
_.on_connect  # unused method (bot/platforms/discord/gateway.py:70)
show_version  # unused variable (core/app/cli.py:78)
_._user_ids  # unused method (core/settings/models_chat.py:90)
_._chat_ids  # unused method (core/settings/models_chat.py:95)
_.load_dialect_impl  # unused method (persistence/types.py:26)
_.process_result_value  # unused method (persistence/types.py:44)
_.load_dialect_impl  # unused method (persistence/types.py:54)
pytest_sessionstart  # unused function (tests/conftest.py:48)
_.on_interaction  # unused method (bot/platforms/discord/gateway.py:79)
list_names  # unused function (core/app/vault_cli.py:221)
_on_connect  # unused function (core/backtest/runner.py:118)
_._higher_timeframe  # unused method (core/settings/models_trading.py:204)
_._time_of_day  # unused method (core/settings/models_ops.py:126)
_.process_result_value  # unused method (persistence/types.py:71)
pytest_terminal_summary  # unused function (tests/conftest.py:54)
_isolated  # unused function (autouse fixture: tests/core/backtest/test_cli.py:36, test_data_files.py:25,
#           test_strategy_guide.py:24, test_tuning.py:33)
_.from_custom_id  # unused method (bot/platforms/discord/render.py:92)
_._guild_ids  # unused method (core/settings/models_chat.py:226)
_._team_ids  # unused method (core/settings/models_chat.py:268)
interaction_check  # unused function (bot/platforms/discord/render.py:100)
_main  # unused function (core/app/cli.py:76)
_._weekly  # unused method (core/settings/models_ops.py:133)
_._monthly  # unused method (core/settings/models_ops.py:142)
_on_connect  # unused function (persistence/db.py:245)
_.process_bind_param  # unused method (persistence/types.py:61)
_._live_needs_explicit_switch  # unused method (core/settings/config.py:100)
_._trader_keys  # unused method (core/settings/models_chat.py:100)
_.process_bind_param  # unused method (persistence/types.py:33)
_.settings_customise_sources  # unused method (core/settings/config.py:87)
config_docs  # unused function (core/app/cli.py:442)
db_current  # unused function (core/app/cli.py:308)
config_check  # unused function (core/app/cli.py:417)
set_secret  # unused function (core/app/vault_cli.py:194)
db_upgrade  # unused function (core/app/cli.py:280)
db_backup  # unused function (core/app/cli.py:357)
db_restore  # unused function (core/app/cli.py:382)

# Table columns and model fields: written to the database (and read by operators, exports and migrations), not
# read back in code.
_.claimed_until  # unused attribute (bot/notify/dispatcher.py:370)
_.submitted_at  # unused attribute (core/trading/executor.py:256)
acquired_at  # unused variable (persistence/models/ops.py:22)
claimed_until  # unused variable (persistence/models/ops.py:67)
submitted_at  # unused variable (persistence/models/trading.py:51)
positions_value  # unused variable (persistence/models/trading.py:124)

# Fields of frozen records that describe something whole; nothing branches on them yet. Three of the venue
# capability flags are declared per venue (docs/exchanges.md) but nothing consults them yet;
# LaneStats.running_urgent is part of the lane snapshot; NEXT_OPEN is an enum member selected by value.
running_urgent  # unused variable (bot/lanes.py:59)
market_orders  # unused variable (exchanges/base.py:196)
limit_orders  # unused variable (exchanges/base.py:197)
private_stream  # unused variable (exchanges/base.py:200)
NEXT_OPEN  # unused variable (exchanges/paper/model.py:40)

# Fake platform and venue servers: handlers are looked up by name from the request path (_api_<method>,
# _pub_<name>, _priv_<name>) or called by html.parser; the contract suite's VenueController is a Protocol used
# in annotations; set_max_fill_qty is part of the fakes' controller API (partial fills against the fakes are
# not exercised yet).
_.__signature__  # unused attribute (tests/exchanges/contract.py:68)
_._pub_AssetPairs  # unused method (tests/exchanges/fakes/kraken.py:212)
_._priv_Balance  # unused method (tests/exchanges/fakes/kraken_private.py:55)
_._priv_OpenOrders  # unused method (tests/exchanges/fakes/kraken_private.py:159)
_._priv_QueryTrades  # unused method (tests/exchanges/fakes/kraken_private.py:195)
_.handle_data  # unused method (tests/fakes/telegram.py:75)
_._api_getWebhookInfo  # unused method (tests/fakes/telegram.py:317)
_.set_max_fill_qty  # unused method (tests/exchanges/fakes/__init__.py:62)
_._pub_Time  # unused method (tests/exchanges/fakes/kraken.py:208)
_._api_getMyCommands  # unused method (tests/fakes/telegram.py:332)
_._priv_BalanceEx  # unused method (tests/exchanges/fakes/kraken_private.py:58)
_._priv_ClosedOrders  # unused method (tests/exchanges/fakes/kraken_private.py:162)
_._priv_GetWebSocketsToken  # unused method (tests/exchanges/fakes/kraken_private.py:198)
_._priv_WithdrawInfo  # unused method (tests/exchanges/fakes/kraken_private.py:203)
_.handle_starttag  # unused method (tests/fakes/telegram.py:62)
_._api_deleteWebhook  # unused method (tests/fakes/telegram.py:312)
_._api_sendPhoto  # unused method (tests/fakes/telegram.py:488)
_._pub_Ticker  # unused method (tests/exchanges/fakes/kraken.py:226)
_._pub_Assets  # unused method (tests/exchanges/fakes/kraken.py:215; ccxt's load_markets asks for it)
_._pub_Depth  # unused method (tests/exchanges/fakes/kraken.py:234)
_._priv_QueryOrders  # unused method (tests/exchanges/fakes/kraken_private.py:167)
_.handle_endtag  # unused method (tests/fakes/telegram.py:67)
_._api_deleteMyCommands  # unused method (tests/fakes/telegram.py:336)
_._pub_OHLC  # unused method (tests/exchanges/fakes/kraken.py:242)
_._api_answerCallbackQuery  # unused method (tests/fakes/telegram.py:524)
_._priv_CancelOrder  # unused method (tests/exchanges/fakes/kraken_private.py:175)
_._priv_TradesHistory  # unused method (tests/exchanges/fakes/kraken_private.py:185)
_._api_editMessageReplyMarkup  # unused method (tests/fakes/telegram.py:513)
_._api_setMyCommands  # unused method (tests/fakes/telegram.py:320)
_._api_editMessageText  # unused method (tests/fakes/telegram.py:501)
VenueController  # unused class (tests/exchanges/contract.py:39)
_._priv_AddOrder  # unused method (tests/exchanges/fakes/kraken_private.py:68)

# Test scaffolding: __aexit__ parameters.
exc_type  # unused variable (tests/persistence/outage.py:29)
tb  # unused variable (tests/persistence/outage.py:30)

# pytest reads module-level `pytestmark`.
pytestmark

# prometheus_client calls a registered collector's collect() at each scrape (core/ops/metrics.py).
hash_  # unused function (core/app/strategy_cli.py:33: typer command)
list_  # unused function (core/app/data_cli.py:112: typer command)
read_logs  # unused method (core/backtest/studies.py:142: Optuna journal backend, called by Optuna)
append_logs  # unused method (core/backtest/studies.py:147: Optuna journal backend, called by Optuna)
_._feed_matches_mode  # unused method (core/settings/models_trading.py:119)
_._tx  # unused attribute (persistence/inline_sqlite.py:45: aiosqlite's queue, read by SQLAlchemy's adapter)
