"""The command layer's error family (under the project's root, :class:`exchanges.errors.TradectlError`).

Only a :class:`CommandError`'s message reaches the chat. Anything else raised inside a command is
an internal failure: the chat gets "something went wrong, reference <id>" and the log gets the
traceback (redacted by the logging setup).
"""

from __future__ import annotations

from exchanges.errors import TradectlError


class CommandError(TradectlError):
    """A refusal or failure whose message is safe and useful to show in chat."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CommandError):
    """The arguments do not fit the command; the reply adds the command's usage text."""
