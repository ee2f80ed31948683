"""``unavailable``: a library's optional import takes its "not installed" path while the block lasts, and
only then; what is loaded already is never touched."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.runtime.lazy import unavailable

LIBRARY = """
try:
    import optional_extra_x
    HAS_EXTRA = True
except ImportError:
    HAS_EXTRA = False
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    """An optional extra and a library that uses it when installed, importable for the test only."""
    (tmp_path / "optional_extra_x.py").write_text("VALUE = 1\n")
    (tmp_path / "library_using_x.py").write_text(LIBRARY)
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in ("optional_extra_x", "library_using_x"):
        sys.modules.pop(name, None)


def test_a_library_loaded_inside_sees_the_extra_missing_and_it_loads_afterwards(site: Path) -> None:
    with unavailable("optional_extra_x"):
        library = importlib.import_module("library_using_x")
    assert library.HAS_EXTRA is False and "optional_extra_x" not in sys.modules
    extra = importlib.import_module("optional_extra_x")  # e.g. the vault, later: as usual
    assert extra.VALUE == 1 and Path(extra.__file__ or "").parent == site


def test_a_module_loaded_already_is_left_alone(site: Path) -> None:
    extra = importlib.import_module("optional_extra_x")
    assert Path(extra.__file__ or "").parent == site
    with unavailable("optional_extra_x"):
        library = importlib.import_module("library_using_x")
    assert library.HAS_EXTRA is True and sys.modules["optional_extra_x"] is extra


def test_the_block_ends_when_what_it_wraps_fails(site: Path) -> None:
    with pytest.raises(ImportError), unavailable("optional_extra_x"):
        importlib.import_module("optional_extra_x")
    extra = importlib.import_module("optional_extra_x")
    assert extra.VALUE == 1 and Path(extra.__file__ or "").parent == site
