"""Secrets inside URLs (database password, webhook URLs, credentials in a URL) never print: not in
``tradectl config check``, not in the service's logs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from core.settings.url_secrets import redact_url
from tests.core.app.test_service import TRADECTL, env_for, tradectl

DB_PASSWORD = "db-Pa55word-7319"
DISCORD_TOKEN = "dWebhookToken-Zq81xY"
SLACK_TOKEN = "sWebhookToken-Kp27wV"
REST_PASSWORD = "rest-pw-5521"
DISCORD_HOOK = f"https://discord.com/api/webhooks/381870553235193857/{DISCORD_TOKEN}"
SLACK_HOOK = f"https://hooks.slack.com/services/T0TEAM0001/B0HOOK0001/{SLACK_TOKEN}"
DESTINATIONS = json.dumps([
    {"name": "ops", "platform": "discord", "target": DISCORD_HOOK},
    {"name": "team", "platform": "slack", "target": SLACK_HOOK},
    {"name": "room", "platform": "slack", "target": "C0ALERTS01"},
])
SECRETS = (DB_PASSWORD, DISCORD_TOKEN, SLACK_TOKEN, REST_PASSWORD)


def test_config_check_hides_secrets_in_urls_and_names_their_source(tmp_path: Path) -> None:
    env = env_for(tmp_path, DATABASE_URL=f"postgresql://tradectl:{DB_PASSWORD}@db.internal:5432/tradectl",
                  TRADECTL_NOTIFY__DESTINATIONS=DESTINATIONS,
                  TRADECTL_KRAKEN__REST_URL=f"https://trader:{REST_PASSWORD}@api.example.com/")
    text = tradectl(["config", "check"], env, tmp_path)
    as_json = tradectl(["config", "check", "--json"], env, tmp_path)
    for res in (text, as_json):
        assert res.returncode == 0, res.stderr
        for secret in SECRETS:
            assert secret not in res.stdout + res.stderr, secret
    assert 'url = "postgresql://tradectl:***@db.internal:5432/tradectl"' in text.stdout
    assert 'database.url = "environment variable DATABASE_URL"' in text.stdout
    assert 'notify.destinations[ops].target = "environment variable TRADECTL_NOTIFY__DESTINATIONS"' in text.stdout
    assert 'notify.destinations[team].target = ' in text.stdout
    data = json.loads(as_json.stdout)
    targets = [d["target"] for d in data["notify"]["destinations"]]
    assert targets == ["https://discord.com/***", "https://hooks.slack.com/***", "C0ALERTS01"]
    assert data["kraken"]["rest_url"] == "https://trader:***@api.example.com/"
    assert data["secrets"]["kraken.rest_url"] == "environment variable TRADECTL_KRAKEN__REST_URL"
    assert "notify.destinations[room].target" not in data["secrets"]  # a channel id is no secret


def test_secrets_in_urls_are_registered_with_the_log_redactor(pg_database_url: str, tmp_path: Path) -> None:
    """The service's redactor knows the database password and the webhook URLs: any log line that
    carries them (here a pause reason typed at the console) shows ``***`` instead."""
    scheme, rest = pg_database_url.split("://", 1)
    user_host = rest.split("@", 1)
    url = f"{scheme}://{user_host[0]}:{DB_PASSWORD}@{user_host[1]}" if len(user_host) == 2 else \
        f"{scheme}://postgres:{DB_PASSWORD}@{rest}"
    env = env_for(tmp_path, DATABASE_URL=url, TRADECTL_DATABASE__AUTO_UPGRADE="always",
                  TRADECTL_CHAT__CONSOLE="on", TRADECTL_NOTIFY__DESTINATIONS=DESTINATIONS)
    typed = "".join(f"/pause moving to {where}\n/resume\n" for where in (url, DISCORD_HOOK, SLACK_HOOK))
    res = subprocess.run([*TRADECTL, "run", "--exit-after-input"], env=env, cwd=tmp_path, input=typed,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count("paused by console:local: moving to ") == 3  # the reasons reached the log
    assert f"moving to {url.replace(DB_PASSWORD, '***')}" in res.stderr
    for secret in (DB_PASSWORD, DISCORD_TOKEN, SLACK_TOKEN):
        assert secret not in res.stderr, f"{secret} reached the log"


def test_redact_url_forms() -> None:
    assert redact_url("sqlite:///data/tradectl.db") == ("sqlite:///data/tradectl.db", ())
    shown, parts = redact_url("postgresql://u:p%40ss-word@h/db")
    assert shown == "postgresql://u:***@h/db" and {"p%40ss-word", "p@ss-word"} <= set(parts)
    shown, parts = redact_url("postgresql://u@h/db?sslmode=require&password=hunter22")
    assert shown == "postgresql://u@h/db?sslmode=require&password=***" and "hunter22" in parts
    shown, parts = redact_url(DISCORD_HOOK, whole=True)
    assert shown == "https://discord.com/***" and DISCORD_HOOK in parts
    assert any(DISCORD_TOKEN in p and not p.startswith("https") for p in parts)  # the path alone too
    assert redact_url("https://discord.com/api/v10") == ("https://discord.com/api/v10", ())
