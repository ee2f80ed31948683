"""What closed a position travels as a typed exit kind from the closing order's purpose to the alert."""

from __future__ import annotations

import json
from decimal import Decimal

from bot.notify.formats import Style, from_payload
from core.ops.outbox import OutboxWriter
from core.settings.settings_models import Destination, NotifySettings
from core.trading.events import Event, ExitKind, PositionClosed
from core.trading.intents import ClosePosition, PauseEntries
from persistence.db import Database
from tests.core.engine_rig import PAIR, Rig, ScriptedStrategy


def alert_lines(event: Event) -> tuple[str, ...]:
    """The alert's lines as the dispatcher makes them from the stored outbox row."""
    settings = NotifySettings(destinations=(Destination(name="ops", platform="telegram", target="1"),), events={})
    (row,) = OutboxWriter(settings).rows_for(event)
    return from_payload(json.loads(row.payload), Style(names={"telegram:1": "alice"})).lines


def closed_events(rig: Rig) -> list[PositionClosed]:
    return [e for e in rig.drain() if isinstance(e, PositionClosed)]


async def test_a_stop_loss_close_is_a_stop_with_its_level(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy"}))
    await rig.start()
    for close in ["100", "100", "100"]:
        await rig.candle(close)
    await rig.engine.submit(PauseEntries(requested_by="console:local"))
    rig.drain()
    await rig.candle("95", low="89")  # the stop (about 90) is crossed by the candle's low
    (closed,) = closed_events(rig)
    assert closed.exit_kind is ExitKind.STOP and closed.level is not None and Decimal(85) < closed.level < Decimal(95)
    assert closed.reason.startswith("price 89") and "<= stop" in closed.reason  # the detail, not the kind
    assert alert_lines(closed)[0].startswith("stop ") and alert_lines(closed)[0].endswith(" reached")
    await rig.stop()


async def test_a_manual_close_names_who_asked(db: Database) -> None:
    rig = Rig(db, ScriptedStrategy({3: "buy"}))
    await rig.start()
    for close in ["100", "100", "100"]:
        await rig.candle(close)
    rig.drain()
    assert (await rig.engine.submit(ClosePosition(requested_by="telegram:1", pair=PAIR))).ok
    (closed,) = closed_events(rig)
    assert (closed.exit_kind, closed.by, closed.level) == (ExitKind.MANUAL, "telegram:1", None)
    assert alert_lines(closed)[0] == "closed by alice (telegram:1)"
    await rig.stop()
