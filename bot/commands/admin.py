"""Admin commands: roles and the audit log.

Roles from the settings are shown but cannot be revoked from chat (so a compromised admin account
cannot lock the owner out); grants made here are stored in ``role_grants``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import format as fmt
from bot.context import CommandContext
from bot.errors import CommandError
from bot.identity import Role, parse_user_ref
from bot.registry import arg, command
from bot.reply import Reply, Table, Text


@command("roles", role=Role.ADMIN, mutates=False, help="Who has which role, and where it comes from")
async def roles(ctx: CommandContext, args: None) -> Reply:
    entries = await ctx.access.entries()
    rows = tuple((e.platform, e.user_id, e.role.label, e.source, e.granted_by or fmt.DASH) for e in entries)
    blocks = (Table("Roles", ("platform", "user id", "role", "from", "granted by"), rows),
              Text("The console operator is always admin."))
    return Reply(blocks)


@dataclass(frozen=True)
class GrantArgs:
    user: str = arg(kind="user", help="a stable platform user id, or platform:id")
    role: Role = arg(help="viewer, trader or admin")


def _user(ctx: CommandContext, text: str) -> tuple[str, str]:
    try:
        return parse_user_ref(text, ctx.actor.platform)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


@command("grant", role=Role.ADMIN, args=GrantArgs, help="Give a user a role",
         usage="The user is a stable id (Telegram: the numeric user id), or platform:id for another platform. "
               "Example: /grant 123456789 trader")
async def grant(ctx: CommandContext, args: GrantArgs) -> Reply:
    platform, user_id = _user(ctx, args.user)
    return Reply.text(await ctx.access.grant(platform, user_id, args.role, ctx.actor), "success")


@dataclass(frozen=True)
class RevokeArgs:
    user: str = arg(kind="user", help="a stable platform user id, or platform:id")


@command("revoke", role=Role.ADMIN, args=RevokeArgs, help="Remove a role granted from chat",
         usage="Roles from the settings cannot be revoked from chat.")
async def revoke(ctx: CommandContext, args: RevokeArgs) -> Reply:
    platform, user_id = _user(ctx, args.user)
    return Reply.text(await ctx.access.revoke(platform, user_id, ctx.actor), "success")


@dataclass(frozen=True)
class AuditArgs:
    n: int = arg(10, min=1, max=50, help="how many entries")


@command("audit", role=Role.ADMIN, mutates=False, args=AuditArgs, help="The latest command attempts: who, what, decision, result")
async def audit(ctx: CommandContext, args: AuditArgs) -> Reply:
    records = await ctx.audit.recent(args.n)
    rows = tuple((fmt.when(r.ts), r.ref_id, f"{r.platform}:{r.user_id}", r.chat_id, f"/{r.command}",
                  fmt.clip(r.args, 40), r.decision, fmt.clip(r.result, 80)) for r in records)
    return Reply((Table(f"Audit log, last {len(rows)}",
                        ("time", "ref", "user", "chat", "command", "args", "decision", "result"), rows),))
