"""Every package says what it is and what it offers: a docstring and an ``__all__`` in its ``__init__.py``
(empty where the package exports nothing), and every name listed there can be imported from it.

Alembic's ``persistence/migrations/versions/`` is left out: it holds generated revision scripts.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("bot", "core", "exchanges", "strategies", "persistence")


def package_inits() -> list[Path]:
    found = []
    for name in PACKAGES:
        for init in sorted((ROOT / name).rglob("__init__.py")):
            if "versions" not in init.relative_to(ROOT).parts:
                found.append(init)
    return found


def declared_all(tree: ast.Module, name: str) -> list[str] | None:
    """The names ``__all__`` lists, or None when the package has no ``__all__``."""
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return list(importlib.import_module(name).__all__)
    return None


def test_every_package_has_a_docstring_and_an_all() -> None:
    inits = package_inits()
    assert len(inits) > 20  # the walk found the packages
    missing, unresolved = [], []
    for init in inits:
        name = ".".join(init.parent.relative_to(ROOT).parts)
        tree = ast.parse(init.read_text())
        exported = declared_all(tree, name)
        if ast.get_docstring(tree) is None or exported is None:
            missing.append(name)
            continue
        package = importlib.import_module(name)
        unresolved += [f"{name}.{n}" for n in exported if not hasattr(package, n)]
    assert missing == [], f"packages without a docstring or an __all__: {missing}"
    assert unresolved == [], f"names in an __all__ that the package does not offer: {unresolved}"
