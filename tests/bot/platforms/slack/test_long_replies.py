"""Long replies on Slack, end to end: slack-bolt in Socket Mode against the fake Slack.

A reply longer than one Slack message (about 10,000 characters of blocks) arrives as several
messages through the command's ``response_url``, every row in one of them and each part numbered.
"""

from __future__ import annotations

import re

from bot.harness import ChatHarness
from bot.identity import Actor, ChatRef
from tests.bot.phone_fixture import PhoneTrading
from tests.bot.platforms.slack.conftest import ADMIN, DM, StartSlack
from tests.core.waiting import eventually
from tests.fakes.slack import FakeSlack, Posted

PART = re.compile(r"Audit log, every chat[^()\n]*\((\d+)/(\d+)\)")
REASON = "waiting for the FOMC minutes at 20:00 before adding any risk, then the CPI print and the ECB press conference"


def shown(p: Posted) -> str:
    """What a message's blocks show (the notification fallback ``text`` repeats it, so it is left out)."""
    return "\n".join((b.get("text") or {}).get("text", "") for b in p.blocks if b.get("type") == "section")


def parts(posted: list[Posted]) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for p in posted for a, b in PART.findall(shown(p))]


def finished(posted: list[Posted]) -> bool:
    found = parts(posted)
    return bool(found) and found[-1][0] == found[-1][1]


async def test_a_long_reply_arrives_as_several_messages_with_every_row(start_slack: StartSlack,
                                                                       fake_slack: FakeSlack) -> None:
    adapter = await start_slack(services=PhoneTrading())
    operator = ChatHarness(adapter.dispatcher, actor=Actor("slack", ADMIN), chat=ChatRef("slack", DM, "private"))
    for i in range(50):  # fifty audit rows with long arguments: more than one Slack message holds
        await operator.send(f"/pause {i}: {REASON}")
    await fake_slack.command("audit all 50", user=ADMIN, channel=DM)
    await eventually(lambda: finished(fake_slack.posted), what="every part of /tradectl audit all 50")
    posted = fake_slack.posted
    assert 1 < len(posted) <= 5  # several messages, within the five uses of a response_url
    assert all(p.channel == DM and p.response_type == "in_channel" and not p.replace_original for p in posted)
    text = "\n".join(shown(p) for p in posted)
    assert "not shown" not in text and "did not fit" not in text
    total = parts(posted)[0][1]
    assert parts(posted) == [(k, total) for k in range(1, total + 1)]  # numbered, none missing
    assert sorted(int(n) for n in re.findall(r"args (\d+): waiting", text)) == list(range(50))  # every row, once
