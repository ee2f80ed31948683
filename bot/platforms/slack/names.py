"""Display names of Slack users from ``users.info``, shown beside their ``U…`` ids (never deciding anything).

A slash command carries only the legacy handle (``user_name``), a button press ``user.username``, and an
``app_home_opened`` event no name at all. The name people see in Slack is the profile's ``display_name``,
else its ``real_name``, else the account ``name``: that needs ``users.info`` and the optional
``users:read`` scope.

What a name may cost:

- **At most one ``users.info`` call per user per TTL** (24 h): a bounded memory cache sits in front of
  :class:`~bot.identity.DisplayNames`, a name stored less than a TTL ago (by this replica or another)
  is used without asking Slack, and the commands of one user share one lookup however many arrive.
- **A command waits at most** :data:`WAIT_S` for it (the kill lane not at all). A slower lookup finishes
  in the background and the command goes on with the name known so far, or the handle; the next one
  carries the new name. The handle is marked as one (:attr:`~bot.identity.NameSource.HANDLE`): stored
  while no name is on record, it never replaces a looked-up name still fresh, whichever write lands last.
  Each answer is stored at once, the same name too (:meth:`~bot.identity.DisplayNames.confirm`), so the
  record says when Slack last confirmed the name.
- **A failure never fails the command** and leaves the handle (or the name known before). Each cause is
  logged once at warning, then at debug. ``missing_scope`` stops lookups for every user for a TTL, a
  429 for its ``Retry-After`` (this client does not wait and retry: a name is not worth it); another
  refusal (``user_not_found``, ...) is not asked again for that user within the TTL; a network error or
  a 5xx is tried again for that user after :data:`RETRY_FAILED_S`.

The adapter asks only for users who have a role (decided from memory), so a stranger's flood costs no
call, and :class:`~bot.identity.AccessControl` stores the names of people with a role only. A name is
made neutral text (:func:`bot.neutral.clean`, whitespace folded, at most
:data:`~bot.identity.MAX_NAME_CHARS`); renderers escape it as any user text, so ``@channel`` pings nobody.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.identity import FRESH_NAME_S, MAX_NAME_CHARS, DisplayNames, NameSource
from bot.neutral import clean
from bot.notify.senders import retry_after
from core.runtime import Supervisor
from exchanges.clock import Clock

log = logging.getLogger("tradectl.slack.names")
NAME_TTL_S = FRESH_NAME_S
WAIT_S = 0.5  # the longest a command waits for a lookup
RETRY_FAILED_S = 600.0  # after a network error or a 5xx, for that user
MAX_USERS = 5_000  # names kept in memory (least recently learnt go first)
PLATFORM = "slack"


@dataclass(slots=True)
class _Known:
    name: str  # "" when Slack gave none, or could not be asked
    until: datetime  # not asked again before this


def profile_name(data: Any) -> str:
    """The name a ``users.info`` answer gives the user: ``profile.display_name``, else ``profile.real_name``,
    else ``real_name``, else ``name`` (the first that is not blank), as neutral text; "" when none."""
    user = data.get("user") if isinstance(data, dict) else None
    if not isinstance(user, dict):
        return ""
    profile = user.get("profile")
    profile = profile if isinstance(profile, dict) else {}
    for raw in (profile.get("display_name"), profile.get("real_name"), user.get("real_name"), user.get("name")):
        name = " ".join(clean(raw).split())[:MAX_NAME_CHARS] if isinstance(raw, str) else ""
        if name:
            return name
    return ""


def lookup_client(client: AsyncWebClient) -> AsyncWebClient:
    """The adapter's client (token, base URL, timeout, session) without retry handlers: a lookup that fails
    leaves the handle rather than waiting for Slack's ``Retry-After``."""
    return AsyncWebClient(token=client.token, base_url=client.base_url, timeout=client.timeout, ssl=client.ssl,
                          proxy=client.proxy, session=client.session, retry_handlers=[])


class SlackNames:
    """Names for the adapter's actors. ``stop`` cancels lookups still running (safe to call twice)."""

    def __init__(self, client: AsyncWebClient, names: DisplayNames, clock: Clock, *, ttl_s: float = NAME_TTL_S,
                 wait_s: float = WAIT_S, retry_failed_s: float = RETRY_FAILED_S, max_users: int = MAX_USERS) -> None:
        self._client = lookup_client(client)
        self._names = names
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_s)
        self._retry_failed = timedelta(seconds=min(retry_failed_s, ttl_s))
        self._wait_s = wait_s
        self._max_users = max_users
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._quiet_until: datetime | None = None  # no lookups for anyone before this
        self._logged: set[str] = set()
        # a lookup handles its own errors; one that still raises is logged and stops nothing else
        self._lookups = Supervisor("slack:names")

    async def name(self, user_id: str, fallback: str, *, wait: bool = True) -> tuple[str, NameSource]:
        """The user's display name (a profile name), or ``fallback`` (the handle Slack sent, a
        :attr:`~bot.identity.NameSource.HANDLE`) while none is known. ``wait`` False (the kill lane): a
        lookup still starts, but the answer is not waited for at all."""
        known = self._known.get(user_id)
        if known is None or self._clock.now() >= known.until:
            task_name = f"slack:name:{user_id}"
            task = self._lookups.task(task_name) or self._lookups.spawn(task_name, self._lookup(user_id))
            if wait:
                await asyncio.wait({task}, timeout=self._wait_s)  # never cancels it: a late answer still counts
            known = self._known.get(user_id)
        if known is not None and known.name:
            return known.name, NameSource.PROFILE
        return fallback, NameSource.HANDLE

    async def stop(self) -> None:
        await self._lookups.stop()

    async def _lookup(self, user_id: str) -> None:
        before = self._known.get(user_id)
        name = before.name if before is not None else ""
        try:
            stored = await self._names.stored(PLATFORM, user_id)
        except Exception as exc:  # noqa: BLE001 - the database's trouble shows elsewhere; ask Slack instead
            log.debug("slack: stored name of %s unreadable: %s", user_id, exc)
            stored = None
        now = self._clock.now()
        if stored is not None and stored.source is NameSource.PROFILE:  # a handle, stored meanwhile, is no name
            name = stored.name
            if now - stored.seen_at < self._ttl:
                self._keep(user_id, name, stored.seen_at + self._ttl)
                return
        if self._quiet_until is not None and now < self._quiet_until:
            self._keep(user_id, name, self._quiet_until)
            return
        try:
            response = await self._client.users_info(user=user_id)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the command keeps the handle
            self._keep(user_id, name, now + self._failed(exc, now))
            return
        looked_up = profile_name(response.data)
        if looked_up:
            await self._names.confirm(PLATFORM, user_id, looked_up)
        self._keep(user_id, looked_up or name, now + self._ttl)

    def _keep(self, user_id: str, name: str, until: datetime) -> None:
        self._known[user_id] = _Known(name, until)
        self._known.move_to_end(user_id)
        while len(self._known) > self._max_users:
            self._known.popitem(last=False)

    def _failed(self, exc: Exception, now: datetime) -> timedelta:
        """Log ``exc`` (once per cause) and say when to ask Slack about this user again."""
        if not isinstance(exc, SlackApiError):
            network = isinstance(exc, (SlackClientError, aiohttp.ClientError, TimeoutError, OSError))
            self._once("network" if network else type(exc).__name__,
                       "slack users.info failed (%s); names stay the handles Slack sends, tried again later",
                       f"{type(exc).__name__}: {exc}"[:200])
            return self._retry_failed
        response = exc.response
        error = str(response.get("error", "")) if isinstance(response.data, dict) else ""
        if response.status_code == 429 or error == "ratelimited":
            wait = timedelta(seconds=retry_after(response.headers or {}, default=60.0))
            self._quiet_until = now + wait
            self._once("ratelimited", "slack users.info rate limited: no name lookups for %s", wait)
            return wait
        if error == "missing_scope":
            self._quiet_until = now + self._ttl
            self._once("missing_scope", "slack users.info refused (missing_scope: the app needs the optional "
                       "users:read scope, docs/slack.md); names stay the handles Slack sends, asked again in %s",
                       self._ttl)
            return self._ttl
        if response.status_code >= 500:
            self._once("unavailable", "slack users.info answered %s; names stay the handles, tried again later",
                       response.status_code)
            return self._retry_failed
        self._once(f"refused:{error}", "slack users.info refused (%s); that user keeps the handle",
                   error or response.status_code)
        return self._ttl

    def _once(self, cause: str, message: str, *args: object) -> None:
        level = logging.DEBUG if cause in self._logged else logging.WARNING
        self._logged.add(cause)
        log.log(level, message, *args)
