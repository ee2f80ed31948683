"""Every exception class in exchanges/, strategies/ and persistence/ derives from the one root,
``exchanges.errors.TradectlError`` (including the carriers of a venue's own words, kept as ``__cause__``)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import exchanges
import persistence
import strategies
from exchanges.errors import TradectlError


def _modules() -> list[str]:
    names = []
    for package in (exchanges, strategies, persistence):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not info.name.startswith("persistence.migrations"):
                names.append(info.name)
    return names


def _exception_classes() -> list[type[BaseException]]:
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == name:
                found.append(cls)
    return found


def test_the_walk_finds_the_known_families() -> None:
    names = {cls.__name__ for cls in _exception_classes()}
    assert {"ExchangeError", "HttpStatusError", "KrakenApiError", "CoinbaseOrderRefused", "ReplayError",
            "StrategyError", "DatabaseError", "MigrationError"} <= names


@pytest.mark.parametrize("cls", _exception_classes(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_exception_derives_from_the_root(cls: type[BaseException]) -> None:
    assert issubclass(cls, TradectlError)
