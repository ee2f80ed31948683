"""Every command's reply on the :mod:`tests.bot.phone_fixture` account, built through the real
registry and dispatcher: what the width test renders on every platform, and what the phone examples
in docs/commands.md are generated from.

Commands run as the admin in a private chat (so ``/audit all`` and ``/roles all`` answer), reads
first, then the commands that change state; a command that asks for confirmation is shown with its
prompt, then pressed (Cancel for ``/closeall``, so ``/kill`` still has positions to close). Commands
that only list without arguments (``/close``, ``/report``, ``/chart``) are shown both ways. A command
added to the registry later is run bare (``/name``), so it is never left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.app import build_dispatcher
from bot.confirmations import parse_payload
from bot.harness import ChatHarness
from bot.reply import Reply
from core.settings.settings_models import ChatSettings
from core.trading.intents import short_order_id
from persistence.db import Database
from tests.bot.conftest import ADMIN, BASE_SETTINGS
from tests.bot.phone_fixture import ORDERS, T_END, PhoneTrading, fill_audit_log
from tests.fakes.clock import ManualClock

# Each command with the arguments it is shown with, in the order they run.
SAMPLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("help", ("/help", "/help close")),
    ("whoami", ("/whoami",)),
    ("status", ("/status",)),
    ("positions", ("/positions",)),
    ("balance", ("/balance",)),
    ("pnl", ("/pnl", "/pnl today")),
    ("daily", ("/daily 30",)),
    ("weekly", ("/weekly 12",)),
    ("monthly", ("/monthly 12",)),
    ("trades", ("/trades 50", "/trades 10 2")),
    ("performance", ("/performance",)),
    ("health", ("/health",)),
    ("orders", ("/orders",)),
    ("chart", ("/chart", "/chart 7")),
    ("schedule", ("/schedule",)),
    ("roles", ("/roles", "/roles all")),
    ("audit", ("/audit 50", "/audit all 50")),
    ("grant", ("/grant 123456789 trader",)),
    ("revoke", ("/revoke 123456789",)),
    ("report", ("/report", "/report daily_report")),
    ("pause", ("/pause waiting for the FOMC minutes at 20:00 before adding any risk",)),
    ("resume", ("/resume",)),
    ("sell", ("/sell SOL/USD 5", "/sell BTC/USD 0.01 @ 70000", "/sell PEPE/USD 125000000")),
    ("buy", ("/buy PEPE/USD 250USD", "/buy ETH/USD 0.1")),
    ("cancel", (f"/cancel {short_order_id(ORDERS[0][0])}", "/cancel all")),
    ("close", ("/close", "/close SOL/USD")),
    ("closeall", ("/closeall",)),
    ("kill", ("/kill exchange maintenance announced for 02:00",)),
    ("rearm", ("/rearm",)),
)
CANCELLED = frozenset({"closeall"})


@dataclass(frozen=True)
class Shown:
    """One reply and what produced it (``/close SOL/USD`` or ``/close SOL/USD → Confirm``); ``pressed``:
    the label of the button that was pressed for it (``🛑 Kill now``), if any."""

    command: str
    line: str
    reply: Reply
    pressed: str = ""


def phone_harness(db: Database) -> tuple[ChatHarness, PhoneTrading]:
    trading = PhoneTrading()
    clock = ManualClock(T_END + timedelta(minutes=20))
    dispatcher = build_dispatcher(db, trading, ChatSettings(**BASE_SETTINGS), clock=clock)
    return ChatHarness(dispatcher, actor=ADMIN), trading


async def every_reply(h: ChatHarness) -> list[Shown]:
    """Fifty audit rows first, then each command of the registry (see :data:`SAMPLES`)."""
    await fill_audit_log(h)
    registry = h.dispatcher.registry
    samples = dict(SAMPLES)
    names = [name for name, _ in SAMPLES if registry.get(name) is not None]
    later = [spec.name for spec in registry if spec.name not in samples]
    names[names.index("pause"):names.index("pause")] = later  # new commands run before anything changes state
    out: list[Shown] = []
    for name in names:
        for line in samples.get(name, (f"/{name}",)):
            sent = await h.send(line)
            if sent.reply is None:
                continue
            out.append(Shown(name, line, sent.reply))
            answers = {p[0]: b for b in sent.buttons if (p := parse_payload(b.payload)) is not None}
            action = "cancel" if name in CANCELLED else "confirm"
            if action in answers:
                pressed = await h.press(answers[action].payload)
                if pressed.reply is not None:
                    out.append(Shown(name, f"{line} → {action.capitalize()}", pressed.reply, answers[action].label))
    return out
