"""The outbox writer: announcements are rows written in the same transaction as the change.

:class:`OutboxWriter` routes an event to the configured destinations (per event kind ``on``,
``silent`` or ``off``; a minimum severity per destination) and adds one row per destination to the
caller's session. If the transaction rolls back, no alert exists for a change that did not happen;
if it commits, the alert waits in the table until a dispatcher delivers it (bot/notify/).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from core.settings.settings_models import NotifySettings
from core.trading.events import Event
from persistence.models import OutboxRow

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


def _json_default(value: Any) -> str:
    return str(value)


class OutboxWriter:
    """``label`` (``trading.paper_label``: "PAPER · live Kraken prices") goes into every row's payload,
    so each alert of paper trading on a live feed says so, however long it waits to be delivered."""

    def __init__(self, settings: NotifySettings, label: str = "") -> None:
        self.settings = settings
        self.label = label

    def level(self, destination_events: Mapping[str, str], kind: str) -> str:
        return destination_events.get(kind) or self.settings.events.get(kind, "on")

    def rows_for(self, event: Event, now: Any = None, *, repeats: int = 1) -> list[OutboxRow]:
        """One row per destination that wants ``event``; ``repeats`` > 1 says how often the same
        alert was raised while it could not be stored (see ``EventBus.announce``)."""
        rows = []
        text = event.summary()
        if repeats > 1:
            text += f" (raised {repeats} times while the database was unreachable)"
        doc: dict[str, Any] = {"kind": event.kind, "severity": event.severity, "text": text,
                               "data": event.to_dict()}
        if repeats > 1:
            doc["repeats"] = repeats
        if self.label:
            doc["label"] = self.label
        image = getattr(event, "image_png", None)
        if image:
            doc["image"] = base64.b64encode(image).decode("ascii")
            doc["data"].pop("image_png", None)
        payload = json.dumps(doc, default=_json_default)
        for dest in self.settings.destinations:
            if dest.platform == "console":
                continue  # the console prints events straight from the bus
            level = self.level(dest.events, event.kind)
            if level == "off" or SEVERITY_RANK[event.severity] < SEVERITY_RANK[dest.min_severity]:
                continue
            row = OutboxRow(destination=dest.name, event_type=event.kind, severity=event.severity,
                            silent=level == "silent", payload=payload)
            if now is not None:
                row.created_at = row.next_attempt_at = now
            rows.append(row)
        return rows

    def write(self, session: AsyncSession, event: Event, *, repeats: int = 1) -> int:
        rows = self.rows_for(event, repeats=repeats)
        for row in rows:
            session.add(row)
        return len(rows)
