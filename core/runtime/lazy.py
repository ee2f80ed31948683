"""Names a package offers but loads on first use, so importing the package stays cheap.

A package's ``__init__`` lists where each public name lives and sets
``__getattr__ = lazy_exports(__name__, {"adapter": ("SlackAdapter",), ...})``; ``from pkg import
SlackAdapter`` then imports ``pkg.adapter`` only at that moment (and a renderer can be imported without
its platform's client library). Type checkers read the names from the package's ``TYPE_CHECKING`` imports.

``absent`` names optional dependencies a library imports whenever they are installed although the service
never uses what they serve: while the submodule loads they look not installed (:func:`unavailable`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib import import_module
from typing import Any


@contextmanager
def unavailable(*modules: str) -> Iterator[None]:
    """Inside, importing one of ``modules`` raises ``ModuleNotFoundError``, as if it were not installed.

    For a library that imports an optional dependency only to offer a feature the service never uses: the
    library takes its documented "not installed" path and the memory is not spent. A module already loaded is
    left alone (nothing to save), and afterwards each can be imported as usual. Uses the import system's
    own rule (a ``None`` entry in ``sys.modules`` stops an import), so imports on other threads meanwhile
    would see it missing too: use it around imports made at start-up on the main thread."""
    hidden = [name for name in modules if name not in sys.modules]
    for name in hidden:
        # typeshed allows only modules here; None is the import system's own "not importable"
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def lazy_exports(package: str, homes: Mapping[str, tuple[str, ...]],
                 absent: tuple[str, ...] = ()) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``homes`` maps a submodule (relative to the package) to
    the names it provides. Once loaded, a name becomes a plain attribute of the package. While a submodule
    loads, the modules in ``absent`` look not installed (see :func:`unavailable`)."""
    module_of = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        with unavailable(*absent):
            loaded = import_module(f"{package}.{module}")
        value = getattr(loaded, name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
