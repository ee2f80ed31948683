"""Who is asking, from where, and what they may do.

An actor is a stable platform user id on a platform, a chat is a stable chat id on the same
platform; display names are carried for messages only and never decide anything. Roles come from
two places: the settings (bootstrap roles per platform, which chat cannot change) and grants that
admins make from chat (``role_grants`` table). The effective role is the higher of the two.

Deny by default: a group chat or channel must be listed in ``chat.allowed_chats``; a private chat
needs only a user with a role. The console (``console:local``) is the operator at the terminal and
is always an admin.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Literal

from sqlmodel import col, delete, or_, select

from bot.errors import CommandError
from bot.inbound import clean_text
from core.settings import CHAT_PLATFORMS, ChatSettings
from exchanges.clock import Clock
from persistence.db import Database
from persistence.models import DisplayNameRow, RoleGrantRow
from persistence.upsert import dialect_insert, table_of, upsert

log = logging.getLogger("tradectl.bot.identity")

ChatKind = Literal["private", "group", "channel"]
CONSOLE = "console"
# Stable ids per platform: Telegram user ids are integers, Discord ids are snowflakes, Slack user ids
# look like U024BE7LH. A display name or a handle never matches.
_USER_ID_RE = {
    "telegram": re.compile(r"^[0-9]{1,20}$"),
    "discord": re.compile(r"^[0-9]{5,25}$"),
    "slack": re.compile(r"^[UW][A-Z0-9]{2,30}$"),
}


_EXAMPLE_ID = {"telegram": "123456789", "discord": "80351110224678912", "slack": "U024BE7LH"}


class Role(IntEnum):
    NONE = 0
    VIEWER = 1
    TRADER = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """``viewer`` / ``trader`` / ``admin`` (any case); ``none`` is not grantable and not parsed."""
        try:
            role = cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r}: use viewer, trader or admin") from None
        if role is cls.NONE:
            raise ValueError("role must be viewer, trader or admin")
        return role


class NameSource(StrEnum):
    """Where a display name came from, which decides whether it may replace the one on record."""

    # The name the platform shows for the user: what Telegram (first and last name) and Discord (server
    # nickname, else global name, else username) send with every update, and what Slack's users.info answers.
    PROFILE = "profile"
    # The legacy handle a Slack command (user_name) or button press (user.username) carries: shown and
    # stored while no profile name is known (no users:read scope, a lookup not answered yet), never
    # replacing a profile name that is still fresh.
    HANDLE = "handle"


@dataclass(frozen=True, slots=True)
class Actor:
    platform: str
    user_id: str
    display: str = ""
    display_source: NameSource = NameSource.PROFILE

    @property
    def key(self) -> str:
        """``telegram:123456``: what intents carry as ``requested_by`` and settings use as user key."""
        return f"{self.platform}:{self.user_id}"

    def same_user(self, other: Actor) -> bool:
        return self.platform == other.platform and self.user_id == other.user_id


@dataclass(frozen=True, slots=True)
class ChatRef:
    platform: str
    chat_id: str
    kind: ChatKind = "private"


CONSOLE_ACTOR = Actor(CONSOLE, "local", "operator")
CONSOLE_CHAT = ChatRef(CONSOLE, "local", "private")


@dataclass(frozen=True, slots=True)
class RoleEntry:
    platform: str
    user_id: str
    role: Role
    source: str  # "settings", "granted" or "settings+granted"
    granted_by: str = ""
    granted_at: datetime | None = None


def parse_user_ref(text: str, default_platform: str) -> tuple[str, str]:
    """``123456`` (same platform as the caller), ``discord:123`` or a mention (``<@123>``, ``@U123``).

    Returns ``(platform, user_id)``; raises ValueError with a message fit for chat.
    """
    raw = text.strip()
    platform = default_platform
    if ":" in raw and not raw.startswith("<"):
        platform, raw = raw.split(":", 1)
        platform = platform.lower()
    if raw.startswith("<@") and raw.endswith(">"):
        raw = raw[2:-1].lstrip("!").split("|", 1)[0]
    raw = raw.lstrip("@")
    if platform not in CHAT_PLATFORMS:
        raise ValueError(f"name the platform of the user, e.g. telegram:{raw or '123456'}")
    if not _USER_ID_RE[platform].match(raw):
        raise ValueError(f"a {platform} user is named by their stable platform id, such as "
                         f"{_EXAMPLE_ID[platform]} (not a display name or handle)")
    return platform, raw


MAX_NAME_CHARS = 64
FRESH_NAME_S = 24 * 3600.0  # a profile name younger than this is current: no handle replaces it
_MAX_REMEMBERED = 10_000
_KEYS = ("platform", "user_id")


@dataclass(frozen=True, slots=True)
class StoredName:
    name: str
    source: NameSource
    seen_at: datetime


class DisplayNames:
    """The latest display name seen per platform user, for showing beside the id (``alice (telegram:1)``).

    Names are what the platform says about the user and change at will, so they decide nothing; the
    stable id stays the identity. A name is written when it is first seen or changed (compared with what
    this process last wrote, so a steady user costs no write), and only for people with a role: a
    stranger's flood never reaches the database.

    A profile name always replaces what is on record. A handle (:attr:`NameSource.HANDLE`, Slack's
    stand-in while the name is being looked up or cannot be) replaces only a handle or a profile name
    older than ``fresh_s``: a kill-lane press that did not wait for the lookup never undoes the name
    another command of the same user stored meanwhile, whichever write lands last. The rule is one
    conditional statement, so it holds between replicas too."""

    def __init__(self, db: Database, clock: Clock, *, fresh_s: float = FRESH_NAME_S) -> None:
        self.db = db
        self.clock = clock
        self.fresh = timedelta(seconds=fresh_s)
        self._written: dict[tuple[str, str], tuple[str, NameSource]] = {}

    async def remember(self, actor: Actor) -> None:
        name = clean_text(actor.display).strip()[:MAX_NAME_CHARS]
        key = (actor.platform, actor.user_id)
        written = (name, actor.display_source)
        if not name or actor.platform == CONSOLE or self._written.get(key) == written:
            return
        now = self.clock.now()
        values = {"platform": actor.platform, "user_id": actor.user_id, "name": name,
                  "source": actor.display_source.value, "seen_at": now}
        if actor.display_source is NameSource.PROFILE:
            stmt = upsert(self.db.dialect, DisplayNameRow, values, _KEYS)
        else:
            table = table_of(DisplayNameRow)
            ins = dialect_insert(self.db.dialect, DisplayNameRow).values(**values)
            stmt = ins.on_conflict_do_update(
                index_elements=list(_KEYS), set_={c: ins.excluded[c] for c in ("name", "source", "seen_at")},
                where=or_(table.c.source != NameSource.PROFILE.value, table.c.seen_at <= now - self.fresh))
        try:
            async with self.db.session() as s:
                result = await s.exec(stmt)
        except Exception:
            log.warning("could not store the display name of %s:%s", *key, exc_info=True)
            return
        if result.rowcount != 0:  # 0: a handle that left a fresh profile name alone; not written
            self._note_written(key, written)

    async def confirm(self, platform: str, user_id: str, name: str) -> None:
        """Store a name the platform has just answered for (Slack's ``users.info``), renewing its
        ``seen_at`` even when it is the name on record: the record then says when the name was last
        confirmed, so a name confirmed again never ages into one a handle may replace. Only for people
        with a role (the lookup is made only for them); a database failure is logged and ignored."""
        name = clean_text(name).strip()[:MAX_NAME_CHARS]
        if not name:
            return
        values = {"platform": platform, "user_id": user_id, "name": name, "source": NameSource.PROFILE.value,
                  "seen_at": self.clock.now()}
        try:
            async with self.db.session() as s:
                await s.exec(upsert(self.db.dialect, DisplayNameRow, values, _KEYS))
        except Exception:
            log.warning("could not store the display name of %s:%s", platform, user_id, exc_info=True)
            return
        self._note_written((platform, user_id), (name, NameSource.PROFILE))

    def _note_written(self, key: tuple[str, str], written: tuple[str, NameSource]) -> None:
        if len(self._written) >= _MAX_REMEMBERED:
            self._written.clear()
        self._written[key] = written

    async def stored(self, platform: str, user_id: str) -> StoredName | None:
        """The name on record for one user, where it came from and when it was written, or None.

        For platforms where a name costs an API call (Slack's ``users.info``): a profile name written less
        than a while ago need not be asked for again; a handle is no name. The name read counts as
        written, so :meth:`remember` with that same name and source writes nothing and its ``seen_at``
        keeps saying when it was last learnt. A source this version does not know counts as a handle."""
        async with self.db.session() as s:
            row = await s.get(DisplayNameRow, (platform, user_id))
        if row is None or not row.name:
            return None
        source = NameSource.PROFILE if row.source == NameSource.PROFILE.value else NameSource.HANDLE
        self._note_written((platform, user_id), (row.name, source))
        return StoredName(row.name, source, row.seen_at)

    async def lookup(self, keys: Iterable[tuple[str, str]] | None = None) -> dict[tuple[str, str], str]:
        """``(platform, user_id) -> name`` for ``keys`` (every known name when None)."""
        wanted = set(keys) if keys is not None else None
        if wanted is not None and not wanted:
            return {}
        async with self.db.session() as s:
            stmt = select(DisplayNameRow.platform, DisplayNameRow.user_id, DisplayNameRow.name)
            if wanted is not None:
                stmt = stmt.where(col(DisplayNameRow.user_id).in_({u for _, u in wanted}))
            rows = (await s.exec(stmt)).all()
        return {(p, u): n for p, u, n in rows if n and (wanted is None or (p, u) in wanted)}

    async def label(self, key: str) -> str:
        """``alice (telegram:1)`` for the actor key ``telegram:1``; the key alone when no name is known."""
        platform, _, user_id = key.partition(":")
        name = (await self.lookup([(platform, user_id)])).get((platform, user_id), "") if user_id else ""
        return f"{name} ({key})" if name else key


class AccessControl:
    """Combines bootstrap roles and allowed chats from the settings with grants in the database.

    It also remembers the display names of the people it lets in (:class:`DisplayNames`)."""

    def __init__(self, db: Database, settings: ChatSettings, clock: Clock, *, grant_cache_s: float = 5.0) -> None:
        self.db = db
        self.names = DisplayNames(db, clock)
        self.settings = settings
        self.clock = clock
        self.grant_cache_s = grant_cache_s
        self._grants: dict[tuple[str, str], Role] | None = None
        self._grants_at = 0.0
        self._grants_lock = asyncio.Lock()  # one reload at a time, however many messages wait for it
        self._boot: dict[tuple[str, str], Role] = {}
        for role, table in ((Role.VIEWER, settings.viewers), (Role.TRADER, settings.traders),
                            (Role.ADMIN, settings.admins)):
            for platform, ids in table.items():
                for user_id in ids:
                    key = (platform, user_id)
                    self._boot[key] = max(role, self._boot.get(key, Role.NONE))

    def bootstrap_role(self, platform: str, user_id: str) -> Role:
        if platform == CONSOLE:
            return Role.ADMIN if user_id == CONSOLE_ACTOR.user_id else Role.NONE
        return self._boot.get((platform, user_id), Role.NONE)

    async def granted_role(self, platform: str, user_id: str) -> Role:
        async with self.db.session() as s:
            row = await s.get(RoleGrantRow, (platform, user_id))
        if row is None:
            return Role.NONE
        try:
            return Role.parse(row.role)
        except ValueError:
            return Role.NONE  # a hand-edited row with a bad role grants nothing

    def _grants_stale(self) -> bool:
        return self._grants is None or time.monotonic() - self._grants_at > self.grant_cache_s

    async def _cached_grants(self) -> dict[tuple[str, str], Role]:
        if not self._grants_stale():
            assert self._grants is not None
            return self._grants
        async with self._grants_lock:
            if self._grants_stale():
                await self._load_grants()
        return self._grants or {}

    async def _load_grants(self) -> None:
        async with self.db.session() as s:
            rows = (await s.exec(select(RoleGrantRow.platform, RoleGrantRow.user_id, RoleGrantRow.role))).all()
        grants = {}
        for platform, user_id, role in rows:
            try:
                grants[(platform, user_id)] = Role.parse(role)
            except ValueError:
                continue
        self._grants, self._grants_at = grants, time.monotonic()

    async def role_of(self, actor: Actor, *, fresh: bool = True) -> Role:
        """The effective role. ``fresh=False`` may use grants up to ``grant_cache_s`` old: the dispatcher
        allows that for commands without side effects only, so a revocation made on another replica
        stops state changes at once and reads within seconds."""
        boot = self.bootstrap_role(actor.platform, actor.user_id)
        if actor.platform == CONSOLE or boot is Role.ADMIN:
            return boot  # nothing a grant could add
        if fresh:
            granted = await self.granted_role(actor.platform, actor.user_id)
        else:
            granted = (await self._cached_grants()).get((actor.platform, actor.user_id), Role.NONE)
        return max(boot, granted)

    def chat_allowed(self, chat: ChatRef) -> bool:
        if chat.platform == CONSOLE:
            return chat.chat_id == CONSOLE_CHAT.chat_id
        if chat.kind == "private":
            return True
        return chat.chat_id in self.settings.allowed_chats.get(chat.platform, ())

    def cached_role(self, actor: Actor, chat: ChatRef) -> Role:
        """The role from memory alone: the settings, and grants as last read from the database (possibly
        a few seconds old, or not read yet: then only the settings count). Never touches the database,
        so it may classify traffic before any other work; it never grants anything by itself."""
        if actor.platform != chat.platform or not self.chat_allowed(chat):
            return Role.NONE
        boot = self.bootstrap_role(actor.platform, actor.user_id)
        if actor.platform == CONSOLE or boot is Role.ADMIN:
            return boot
        return max(boot, (self._grants or {}).get((actor.platform, actor.user_id), Role.NONE))

    async def authorize(self, actor: Actor, chat: ChatRef, *, fresh: bool = True) -> Role:
        """The actor's role in this chat; ``Role.NONE`` means nothing may be executed."""
        if actor.platform != chat.platform or not self.chat_allowed(chat):
            return Role.NONE
        role = await self.role_of(actor, fresh=fresh)
        if role is not Role.NONE and actor.display:
            await self.names.remember(actor)
        return role

    def pair_limit(self, actor: Actor, role: Role) -> tuple[str, ...] | None:
        """Pairs a trader may act on, or None when unrestricted (admins, or no limit configured)."""
        if role >= Role.ADMIN:
            return None
        return self.settings.trader_pairs.get(actor.key)

    async def grant(self, platform: str, user_id: str, role: Role, by: Actor) -> str:
        if platform == CONSOLE:
            raise CommandError("the console operator is always an admin; grant roles to platform users")
        boot = self.bootstrap_role(platform, user_id)
        values = {"platform": platform, "user_id": user_id, "role": role.label, "granted_by": by.key,
                  "granted_at": self.clock.now()}
        async with self.db.session() as s:
            await s.exec(upsert(self.db.dialect, RoleGrantRow, values, ("platform", "user_id")))
        self._grants = None
        note = ""
        if boot > role:
            note = f" (the settings make them {boot.label}, which still applies)"
        return f"{platform}:{user_id} is now {role.label}{note}"

    async def revoke(self, platform: str, user_id: str, by: Actor) -> str:
        boot = self.bootstrap_role(platform, user_id)
        async with self.db.session() as s:
            result = await s.exec(delete(RoleGrantRow).where(
                col(RoleGrantRow.platform) == platform, col(RoleGrantRow.user_id) == user_id))
            removed = result.rowcount > 0
        self._grants = None
        who = f"{platform}:{user_id}"
        if boot is not Role.NONE:
            why = (f"{who} is {boot.label} by the settings, which chat cannot revoke: "
                   "change chat.admins/traders/viewers in the configuration")
            if removed:
                return f"removed the granted role; {why}"
            raise CommandError(why)
        if not removed:
            raise CommandError(f"{who} has no granted role")
        return f"{who} no longer has a role"

    async def entries(self) -> list[RoleEntry]:
        """Every user with a role, from the settings and from grants, sorted by platform and id."""
        async with self.db.session() as s:
            rows = (await s.exec(select(RoleGrantRow))).all()
        out: dict[tuple[str, str], RoleEntry] = {
            key: RoleEntry(key[0], key[1], role, "settings") for key, role in self._boot.items()}
        for row in rows:
            try:
                granted = Role.parse(row.role)
            except ValueError:
                continue
            key = (row.platform, row.user_id)
            boot = self._boot.get(key, Role.NONE)
            source = "settings+granted" if boot is not Role.NONE else "granted"
            out[key] = RoleEntry(row.platform, row.user_id, max(boot, granted), source, row.granted_by, row.granted_at)
        return [out[k] for k in sorted(out)]
