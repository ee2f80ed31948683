"""The chat layer's errors belong to the project's one exception tree and speak its retry vocabulary."""

from __future__ import annotations

from bot.errors import CommandError, UsageError
from bot.notify.senders import DeliveryError
from exchanges.errors import TradectlError


def test_command_errors_are_project_errors_that_are_not_retried() -> None:
    for cls in (CommandError, UsageError):
        err = cls("no such pair")
        assert isinstance(err, TradectlError)
        assert err.message == "no such pair" and not err.retryable and err.retry_after is None


def test_a_delivery_error_is_retryable_unless_retrying_cannot_help() -> None:
    slow = DeliveryError("rate limited", retry_after=2.5)
    refused = DeliveryError("unknown channel", retryable=False)
    assert isinstance(slow, TradectlError)
    assert slow.retryable and slow.retry_after == 2.5
    assert not refused.retryable and refused.retry_after is None
