"""Admin commands: roles and the audit log.

Roles from the settings are shown but cannot be revoked from chat (so a compromised admin account
cannot lock the owner out); grants made here are stored in ``role_grants``. ``/roles`` and ``/audit``
show only the chat they are asked in; ``all`` (every chat) is answered in a private chat only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot import format as fmt
from bot.audit import AuditRecord
from bot.context import CommandContext
from bot.errors import CommandError
from bot.identity import Role, parse_user_ref
from bot.registry import arg, command
from bot.reply import Reply, Table, Text, more_buttons

Scope = Literal["all"]


def _every_chat(ctx: CommandContext, scope: Scope | None, name: str) -> bool:
    """True for the full view. A group sees only its own rows (a private /pause reason, another
    platform's users or a stranger's text are not its business); every chat is for a private chat."""
    if scope != "all":
        return False
    if ctx.chat.kind != "private":
        raise CommandError(f"/{name} all shows every chat, so only in a private chat with the bot; "
                           f"here /{name} shows this chat's rows.")
    return True


@dataclass(frozen=True)
class RolesArgs:
    # arg() is the registry's dataclasses.field; ruff cannot tell a Literal alias or Role is immutable
    scope: Scope | None = arg(None, help="all: everyone, from every chat (in a private chat only)")  # noqa: RUF009


@command("roles", group="Admin", role=Role.ADMIN, mutates=False, args=RolesArgs,
         help="Who has which role, and where it comes from",
         usage="Without 'all': the people who used this chat. '/roles all' lists everyone, in a private chat.")
async def roles(ctx: CommandContext, args: RolesArgs) -> Reply:
    every = _every_chat(ctx, args.scope, "roles")
    entries = await ctx.access.entries()
    names = await ctx.access.names.lookup(None if every else
                                          [(e.platform, e.user_id) for e in entries if e.platform == ctx.chat.platform])
    if every:
        rows = tuple((_user(e.platform, e.user_id, names), e.role.label, e.source,
                      _granter(e.granted_by, names))
                     for e in entries)
        return Reply((Table("Roles, everyone", ("user", "role", "from", "granted by"), rows, key=("user",),
                            optional=("granted by",)),
                      Text("The console operator is always admin.")))
    seen = await ctx.audit.users_in_chat(ctx.chat.platform, ctx.chat.chat_id) | {ctx.actor.user_id}
    here = tuple((_user(e.platform, e.user_id, names), e.role.label, e.source) for e in entries
                 if e.platform == ctx.chat.platform and e.user_id in seen)
    return Reply((Table("Roles of the people who used this chat", ("user", "role", "from"), here, key=("user",)),
                  Text("Only this chat. Everyone, from every chat: /roles all in a private chat with the bot.")))


def _user(platform: str, user_id: str, names: dict[tuple[str, str], str]) -> str:
    """``alice (telegram:1)``: the latest display name seen beside the stable id (which stays the identity)."""
    return fmt.person(f"{platform}:{user_id}", names.get((platform, user_id), ""))


def _granter(granted_by: str, names: dict[tuple[str, str], str]) -> str:
    """Who granted a role: a person (``platform:id``) named as :func:`_user` does, or what the record says."""
    platform, colon, user_id = granted_by.partition(":")
    return _user(platform, user_id, names) if colon else granted_by or fmt.DASH


@dataclass(frozen=True)
class GrantArgs:
    user: str = arg(kind="user", help="a stable platform user id, or platform:id")
    role: Role = arg(help="viewer, trader or admin")  # noqa: RUF009 - see RolesArgs


def _target(ctx: CommandContext, text: str) -> tuple[str, str]:
    try:
        return parse_user_ref(text, ctx.actor.platform)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


@command("grant", group="Admin", role=Role.ADMIN, args=GrantArgs, help="Give a user a role",
         usage="The user is a stable id (Telegram: the numeric user id), or platform:id for another platform. "
               "Example: /grant 123456789 trader")
async def grant(ctx: CommandContext, args: GrantArgs) -> Reply:
    platform, user_id = _target(ctx, args.user)
    return Reply.text(await ctx.access.grant(platform, user_id, args.role, ctx.actor), "success")


@dataclass(frozen=True)
class RevokeArgs:
    user: str = arg(kind="user", help="a stable platform user id, or platform:id")


@command("revoke", group="Admin", role=Role.ADMIN, args=RevokeArgs, help="Remove a role granted from chat",
         usage="Roles from the settings cannot be revoked from chat.")
async def revoke(ctx: CommandContext, args: RevokeArgs) -> Reply:
    platform, user_id = _target(ctx, args.user)
    return Reply.text(await ctx.access.revoke(platform, user_id, ctx.actor), "success")


@dataclass(frozen=True)
class AuditArgs:
    scope: Scope | None = arg(None, help="all: every chat (in a private chat only)")  # noqa: RUF009 - see RolesArgs
    n: int = arg(10, min=1, max=50, help="how many entries per page")
    page: int = arg(1, min=1, max=100, help="which page, 1 = the newest")


def _decision(record: AuditRecord) -> str:
    return f"{record.decision} x{record.attempts}" if record.attempts > 1 else record.decision


@command("audit", group="Admin", role=Role.ADMIN, mutates=False, args=AuditArgs,
         help="The latest command attempts: who, what, decision, result",
         usage="Without 'all': this chat's attempts. '/audit all' shows every chat, in a private chat. "
               "/audit 20 2 shows the 20 before the latest 20.")
async def audit(ctx: CommandContext, args: AuditArgs) -> Reply:
    every = _every_chat(ctx, args.scope, "audit")
    skip = args.n * (args.page - 1)
    wanted = skip + args.n + 1  # one more than shown: is there a next page?
    if every:
        records = await ctx.audit.recent(wanted)
    else:
        records = await ctx.audit.recent(wanted, platform=ctx.chat.platform, chat_id=ctx.chat.chat_id)
    records = records[skip:]
    more = len(records) > args.n
    records = records[: args.n]
    names = await ctx.access.names.lookup({(r.platform, r.user_id) for r in records})
    rows = tuple((ctx.clock_time(r.ts), _user(r.platform, r.user_id, names), f"/{r.command}", fmt.clip(r.args, 40),
                  _decision(r), fmt.clip(r.result, 80), r.ref_id) + ((r.chat_id,) if every else ()) for r in records)
    span = f"{skip + 1}-{skip + len(rows)}" if args.page > 1 else f"last {len(rows)}"
    title = f"Audit log, every chat, {span}" if every else f"Audit log of this chat, {span}"
    note = ("Every chat's attempts." if every else
            "Only this chat. Every chat: /audit all in a private chat with the bot.")
    call = "/audit all" if every else "/audit"
    headers = ("time", "user", "command", "args", "decision", "result", "ref") + (("chat",) if every else ())
    optional = ("result", "args", "ref", *(("chat",) if every else ()))
    table = Table(title, headers, rows, key=("time", "command"), optional=optional,
                  more=f"Older entries: {call} {args.n} {args.page + 1}" if more else "")
    return Reply((table, Text(note), *more_buttons(table.more, f"{call} {args.n} {args.page + 1}")))
