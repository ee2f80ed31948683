"""What `tradectl run` on the embedded default and `tradectl health` load: platform libraries, charting and the
live venues only when enabled or used (a Raspberry Pi pays for every module); the health probe, run by
Docker every 15 s, only the settings, the database handle and its two Core queries.

Each runs the real command in a fresh interpreter through the CLI's own entry point; the script adds an
``atexit`` hook that prints ``sys.modules`` once the command has finished, so production has no test hook.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.core.app.test_service import ROOT, env_for

# not one of these is needed by console chat, the paper venue and SQLite
PLATFORMS = ("telegram", "discord", "slack_bolt", "slack_sdk", "aiohttp", "matplotlib", "bot.platforms.telegram",
             "bot.platforms.discord", "bot.platforms.slack", "exchanges.kraken", "exchanges.coinbase")

SCRIPT = """
import atexit, json, sys
atexit.register(lambda: print("MODULES " + json.dumps(sorted(sys.modules))))
sys.argv = ["tradectl", *sys.argv[1:]]
from core.app.cli import main
main()
"""


def loaded_by(args: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> tuple[int, str, set[str]]:
    res = subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env, cwd=cwd, input=stdin, capture_output=True,
                         text=True, timeout=90)
    line = next((x for x in res.stdout.splitlines() if x.startswith("MODULES ")), None)
    assert line is not None, res.stdout[-2000:] + res.stderr[-3000:]
    return res.returncode, res.stdout, set(json.loads(line.removeprefix("MODULES ")))


def present(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_run_on_the_embedded_default_loads_no_platform_chart_or_live_venue_code(tmp_path: Path) -> None:
    env = env_for(tmp_path, TRADECTL_CHAT__CONSOLE="on")
    code, out, modules = loaded_by(["run", "--exit-after-input"], env, tmp_path, stdin="/status\n")
    assert code == 0
    assert "equity" in out  # the service ran and answered /status on the console
    assert "bot.platforms.console" in modules and "exchanges.paper" in modules  # the check itself sees imports
    assert present(modules, PLATFORMS) == []


def test_health_loads_settings_and_the_database_only(tmp_path: Path) -> None:
    # Before: the probe loaded the trading core and every ORM model (and PostgreSQL's dialect on SQLite):
    # ~1 s of CPU and 75 MB every 15 s.
    env = env_for(tmp_path)
    assert subprocess.run([sys.executable, "-m", "core.app.cli", "db", "upgrade"], env=env, cwd=tmp_path,
                          capture_output=True, timeout=60).returncode == 0
    code, out, modules = loaded_by(["health"], env, tmp_path)
    assert code == 1 and "no instance of group 'default'" in out  # it did query the database
    assert "persistence.db" in modules and "sqlalchemy" in modules
    heavy = ("core.trading", "core.ops.leader", "core.ops.outbox", "core.ops.scheduler", "persistence.models",
             "persistence.migrate", "alembic", "bot", "strategies", "numpy", "talib", "httpx",
             "sqlalchemy.dialects.postgresql")
    assert present(modules, (*PLATFORMS, *heavy)) == []



def test_a_renderer_or_the_format_helpers_load_no_client_library_nor_the_whole_command_core() -> None:
    # Before: each package's __init__ imported everything in it, so the Telegram renderer loaded
    # python-telegram-bot and `bot.format` loaded the dispatcher, the console and every command.
    script = ("import json, sys; import bot.format, bot.platforms.telegram.render, bot.platforms.slack.render; "
              "print(json.dumps(sorted(sys.modules)))")
    res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    modules = set(json.loads(res.stdout))
    assert "bot.platforms.telegram.render" in modules
    assert present(modules, ("telegram", "slack_bolt", "slack_sdk", "bot.app", "bot.dispatcher",
                             "bot.platforms.console", "bot.commands")) == []


def test_the_telegram_adapter_and_alerts_load_no_cryptography_which_stays_usable(tmp_path: Path) -> None:
    # python-telegram-bot imports cryptography (about 8 MiB) whenever it is installed, for Telegram Passport,
    # which the service never uses. Loaded the way the service wires them, the adapter and the alert sender
    # leave it out; a vault opened later still gets it.
    script = """
import json, sys
from bot.platforms.telegram import TelegramAlertSender, TelegramPolling
from core.settings import TelegramSettings
TelegramAlertSender(TelegramSettings(enabled=True, token="1:x", base_url="http://127.0.0.1:9/bot"))
before = "cryptography" in sys.modules
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
AESGCM(AESGCM.generate_key(bit_length=128))
print(json.dumps({"before": before, "after": "cryptography" in sys.modules}))
"""
    res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env=env_for(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout.splitlines()[-1]) == {"before": False, "after": True}
