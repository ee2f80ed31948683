"""Suggestions while a user types a slash command's argument: the traded pairs, the scheduled jobs.

Discord asks the bot (an ``APPLICATION_COMMAND_AUTOCOMPLETE`` interaction) each time the user types
in an option registered with ``"autocomplete": true``, and shows at most 25 answers. Suggestions
are a convenience only: what the user finally sends is parsed and checked by the dispatcher like a
typed command, so nothing here decides what is allowed. They are worked out from memory (the
service's pairs) or one quick call (the schedule), since Discord gives the answer 3 seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from bot.registry import ArgSpec

log = logging.getLogger("tradectl.discord")
MAX_CHOICES = 25  # Discord shows no more
MAX_VALUE = 100  # a choice's name and value
SCHEDULE_BUDGET_S = 1.5  # within Discord's 3 s, with room for the answer itself


def suggests(param: ArgSpec) -> bool:
    """Whether this argument gets suggestions: a pair (the traded pairs) or a job (the scheduled jobs)."""
    return param.kind == "pair" or (param.kind == "str" and param.name == "job")


def focused(options: Iterable[Mapping[str, Any]]) -> tuple[str, str] | None:
    """The option being typed and what is typed so far."""
    for opt in options:
        if opt.get("focused"):
            return str(opt.get("name", "")), str(opt.get("value") or "")
    return None


def _squash(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def matching(candidates: Iterable[str], typed: str) -> list[str]:
    """The candidates that contain what was typed (case, ``/``, ``-`` and spaces ignored, so ``btcusd``
    finds ``BTC/USD``), those starting with it first, in their own order otherwise; at most 25."""
    want = _squash(typed)
    seen: set[str] = set()
    starts, contains = [], []
    for name in candidates:
        if name in seen or not name or len(name) > MAX_VALUE:
            continue
        seen.add(name)
        flat = _squash(name)
        if flat.startswith(want):
            starts.append(name)
        elif want in flat:
            contains.append(name)
    return (starts + contains)[:MAX_CHOICES]


async def job_names(services: Any) -> list[str]:
    """The scheduled jobs' names, or none when the service has no schedule or does not answer in time."""
    schedule = getattr(services, "schedule", None)
    if schedule is None:
        return []
    try:
        jobs, _runs = await asyncio.wait_for(schedule(), SCHEDULE_BUDGET_S)
    except Exception as exc:  # noqa: BLE001 - no suggestions is a fine answer; the command itself will explain
        log.debug("no job suggestions: %s", exc)
        return []
    return [job.name for job in jobs]


async def candidates(param: ArgSpec, services: Any, pairs_allowed: tuple[str, ...] | None) -> list[str]:
    """Everything that may be suggested for ``param``; ``pairs_allowed`` narrows the pairs (a trader
    limited to some pairs), None for all."""
    if param.kind == "pair":
        pairs = list(getattr(services, "pairs", ()) or ())
        return [p for p in pairs if pairs_allowed is None or p in pairs_allowed]
    if suggests(param):
        return await job_names(services)
    return []
