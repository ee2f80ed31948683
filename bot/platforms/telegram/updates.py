"""Telegram updates as dispatcher calls: who, where, what — and nothing about what it means.

``Actor("telegram", <user id>, <name>)`` and ``ChatRef("telegram", <chat id>, kind)`` carry stable
numeric ids; names are for display only. A command addressed to another bot (``/status@OtherBot``
in a group) is not ours and is ignored; ``/status@OurBot`` is passed on as ``/status``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from telegram import Chat, User

from bot.identity import Actor, ChatKind, ChatRef
from bot.reply import Reply, Text

_KINDS: dict[str, ChatKind] = {Chat.PRIVATE: "private", Chat.GROUP: "group", Chat.SUPERGROUP: "group",
                               Chat.CHANNEL: "channel"}


def actor_of(user: User) -> Actor:
    return Actor("telegram", str(user.id), user.full_name or user.username or "")


def kind_of(chat_type: str) -> ChatKind:
    # An unknown chat type is treated as a group: it then needs to be on the allowlist.
    return _KINDS.get(chat_type, "group")


def chat_of(chat: Chat) -> ChatRef:
    return ChatRef("telegram", str(chat.id), kind_of(chat.type))


def private_chat(user: User) -> ChatRef:
    """Where a press on a message we cannot see (inline mode) is answered: the user's own chat."""
    return ChatRef("telegram", str(user.id), "private")


@dataclass(frozen=True, slots=True)
class RawInput:
    """Who, where and what, read straight from an update's JSON (no names: for deciding, not display)."""

    actor: Actor
    chat: ChatRef
    text: str | None
    payload: str | None


def raw_input(update: dict[str, Any]) -> RawInput | None:
    """A message or button press from the update's JSON, or None (anything else, or malformed) — for
    decisions that must not pay for python-telegram-bot's parsing (about 0.1 ms an update)."""
    try:
        query, message = update.get("callback_query"), update.get("message")
        if isinstance(query, dict):
            user, origin = query["from"], query.get("message")
            chat = origin["chat"] if isinstance(origin, dict) else {"id": user["id"], "type": Chat.PRIVATE}
            text, payload = None, str(query.get("data") or "")
        elif isinstance(message, dict) and isinstance(message.get("from"), dict):
            user, chat = message["from"], message["chat"]
            text, payload = message.get("text") if isinstance(message.get("text"), str) else None, None
        else:
            return None
        return RawInput(Actor("telegram", str(user["id"]), ""),
                        ChatRef("telegram", str(chat["id"]), kind_of(str(chat.get("type")))), text, payload)
    except (KeyError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A text message read straight from its JSON: all a command needs, without python-telegram-bot's
    objects (building those costs about 0.1 ms a message, which a flood of a thousand turns into a
    tenth of a second in front of the kill switch)."""

    actor: Actor
    chat: ChatRef
    chat_id: int
    message_id: int
    text: str
    sent_at: datetime


def raw_message(update: dict[str, Any]) -> RawMessage | None:
    """The update's text message, read as :func:`actor_of` and :func:`chat_of` read PTB's objects; None
    for anything else or anything unexpected (then python-telegram-bot reads it)."""
    try:
        message = update["message"]
        user, chat = message["from"], message["chat"]
        text, date, message_id = message["text"], message["date"], message["message_id"]
        if not (isinstance(text, str) and text and isinstance(date, int) and isinstance(message_id, int)
                and isinstance(user["id"], int) and isinstance(chat["id"], int)):
            return None
        names = [n for n in (user.get("first_name"), user.get("last_name")) if isinstance(n, str) and n]
        name = " ".join(names) or str(user.get("username") or "")
        return RawMessage(Actor("telegram", str(user["id"]), name),
                          ChatRef("telegram", str(chat["id"]), kind_of(str(chat.get("type")))), chat["id"],
                          message_id, text, datetime.fromtimestamp(date, UTC))
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def addressed_text(text: str, username: str | None) -> str | None:
    """The command text with our ``@username`` removed; None when it names another bot."""
    stripped = text.lstrip()
    if not stripped.startswith("/"):
        return text
    head, sep, rest = stripped.partition(" ")
    if "@" not in head:
        return text
    name, _, target = head.partition("@")
    if username is None or target.lower() != username.lower():
        return None
    return name + sep + rest


def refused(reply: Reply) -> bool:
    """True when the reply reports an error or refusal (its first text block is an error)."""
    for block in reply.blocks:
        if isinstance(block, Text):
            return block.style == "error"
    return False
