"""A fake chat for tests: push a message as a given actor, get the reply back rendered.

Every adapter's tests reuse it: the Telegram, Discord and Slack suites pass their own renderer and
check that what a user sees on their platform matches what the command core decided. It drives a
real :class:`~bot.dispatcher.Dispatcher` on a real database; only the platform is fake.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.confirmations import parse_payload
from bot.dispatcher import Dispatcher
from bot.identity import Actor, ChatRef
from bot.platforms.console import render_console
from bot.reply import Button, Reply, Text


@dataclass(frozen=True)
class Sent:
    """One reply as a user would receive it. ``reply`` is None when the bot stayed silent."""

    reply: Reply | None
    rendered: str = ""
    actor: Actor | None = field(default=None, compare=False)

    @property
    def silent(self) -> bool:
        return self.reply is None

    @property
    def text(self) -> str:
        return self.reply.plain_text() if self.reply is not None else ""

    @property
    def buttons(self) -> tuple[Button, ...]:
        return self.reply.buttons if self.reply is not None else ()

    def payload(self, label: str) -> str:
        for b in self.buttons:
            if b.label.lower() == label.lower():
                return b.payload
        raise AssertionError(f"no button {label!r} in reply: {self.rendered!r}")

    @property
    def confirm_payload(self) -> str:
        return self._payload_for("confirm")

    @property
    def cancel_payload(self) -> str:
        return self._payload_for("cancel")

    @property
    def nonce(self) -> str:
        parsed = parse_payload(self.confirm_payload)
        assert parsed is not None
        return parsed[1]

    def _payload_for(self, action: str) -> str:
        for b in self.buttons:
            parsed = parse_payload(b.payload)
            if parsed is not None and parsed[0] == action:
                return b.payload
        raise AssertionError(f"no {action} button in reply: {self.rendered!r}")

    def has_style(self, style: str) -> bool:
        return self.reply is not None and any(isinstance(b, Text) and b.style == style for b in self.reply.blocks)


def private_chat(actor: Actor) -> ChatRef:
    """A one-to-one chat with the bot (on Telegram its id is the user's id)."""
    return ChatRef(actor.platform, actor.user_id, "private")


class ChatHarness:
    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        actor: Actor | None = None,
        chat: ChatRef | None = None,
        render: Callable[[Reply], str] = render_console,
    ) -> None:
        self.dispatcher = dispatcher
        self.actor = actor or Actor("telegram", "1000", "tester")
        self.chat = chat
        self.render = render
        self.outbox: list[Sent] = []

    def _chat(self, actor: Actor, chat: ChatRef | None) -> ChatRef:
        return chat or self.chat or private_chat(actor)

    def _sent(self, reply: Reply | None, actor: Actor) -> Sent:
        sent = Sent(reply, self.render(reply) if reply is not None else "", actor)
        self.outbox.append(sent)
        return sent

    async def send(self, text: str, *, as_: Actor | None = None, chat: ChatRef | None = None,
                   sent_at: datetime | None = None, update_id: str | None = None, epoch: int | None = None) -> Sent:
        actor = as_ or self.actor
        when = sent_at if sent_at is not None else self.dispatcher.clock.now()
        reply = await self.dispatcher.handle_text(actor, self._chat(actor, chat), text, when, update_id, epoch=epoch)
        return self._sent(reply, actor)

    async def press(self, payload: str, *, as_: Actor | None = None, chat: ChatRef | None = None,
                    update_id: str | None = None) -> Sent:
        actor = as_ or self.actor
        reply = await self.dispatcher.handle_callback(actor, self._chat(actor, chat), payload, update_id)
        return self._sent(reply, actor)

    async def confirm(self, text: str, *, as_: Actor | None = None, chat: ChatRef | None = None) -> Sent:
        """Send a command that asks for confirmation and press its Confirm button as the same user."""
        asked = await self.send(text, as_=as_, chat=chat)
        return await self.press(asked.confirm_payload, as_=as_, chat=chat)

    def pop(self) -> Sent:
        """The oldest reply not yet looked at."""
        return self.outbox.pop(0)
