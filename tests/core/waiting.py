"""Waiting for a condition in async tests, without sleeping a guessed time."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


async def eventually(pred: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``pred`` (plain or async) every 20 ms until it is true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = pred()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if loop.time() > end:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.02)
