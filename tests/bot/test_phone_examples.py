"""docs/commands.md shows what the main replies look like on a phone: its examples are exactly what
``python -m tests.bot.phone_examples`` prints today, so a change to a reply or a renderer that is not
regenerated into the docs fails here."""

from __future__ import annotations

import re
from pathlib import Path

from persistence.db import Database
from tests.bot.phone_examples import examples
from tests.bot.phone_replies import every_reply, phone_harness

DOCS = Path(__file__).parents[2] / "docs" / "commands.md"
_REF = re.compile(r"\bref [0-9a-f]{8}\b")  # an audit row's reference id: random on every run


async def test_the_docs_show_the_phone_examples_the_renderers_print(sqlite_db: Database) -> None:
    h, _ = phone_harness(sqlite_db)
    printed = _REF.sub("ref <id>", examples(await every_reply(h))).strip()
    docs = _REF.sub("ref <id>", DOCS.read_text())
    assert printed in docs, "docs/commands.md is stale: .venv/bin/python -m tests.bot.phone_examples"
