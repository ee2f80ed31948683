"""The project has one exception tree: every exception class it defines derives from TradectlError.

Every module of the five packages is imported (pkgutil), so a class in a module nothing imports yet is
seen too; the alembic migration scripts are left out (they run only inside alembic). The tree is
printed, and shown in full when a class is outside it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

from exchanges.errors import TradectlError

PACKAGES = ("bot", "core", "exchanges", "strategies", "persistence")


def project_modules() -> list[ModuleType]:
    modules = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if ".migrations" in info.name:
                continue
            modules.append(importlib.import_module(info.name))
    return modules


def project_exceptions() -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for module in project_modules():
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.split(".")[0] in PACKAGES:
                found.add(obj)
    return found


def tree(root: type[BaseException], classes: set[type[BaseException]], depth: int = 0) -> list[str]:
    lines = ["  " * depth + f"{root.__name__} ({root.__module__})"]
    children = sorted((c for c in classes if root in c.__bases__), key=lambda c: (c.__module__, c.__name__))
    for child in children:
        lines += tree(child, classes, depth + 1)
    return lines


def test_every_project_exception_derives_from_tradectl_error() -> None:
    classes = project_exceptions()
    assert len(classes) > 30  # the walk found the tree, not just its root
    drawn = "\n".join(tree(TradectlError, classes))
    print(drawn)
    outside = sorted(f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, TradectlError))
    assert outside == [], f"exceptions outside the tree: {outside}\nthe tree:\n{drawn}"


def test_one_start_up_error() -> None:
    """Start-up problems are one class; what used to be three subclasses is its ``cause``."""
    from core.app.errors import StartupCause, StartupError

    startup = [c for c in project_exceptions() if issubclass(c, StartupError) or c.__name__.startswith("Startup")]
    assert startup == [StartupError]
    assert StartupError.settings("x").cause is StartupCause.SETTINGS
    assert StartupError.secrets("x").cause is StartupCause.SECRETS
    assert StartupError("x").cause is StartupCause.REFUSED
