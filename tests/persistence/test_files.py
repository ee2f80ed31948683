"""Whole-file writes (persistence.files): the one way the vault, the overlays, backtest reports and
candle downloads replace a file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from persistence.files import atomic_write


def test_replaces_the_file_whole_with_owner_only_permissions(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "overlay.toml"
    atomic_write(target, b"first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["overlay.toml"]  # no temporary left beside it


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    atomic_write(target, b"kept")
    with pytest.raises(TypeError):
        atomic_write(target, "text, not bytes")  # type: ignore[arg-type]  # the failure under test
    assert target.read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]


def test_a_symlink_target_is_replaced_not_written_through(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"not yours")
    link = tmp_path / "vault.bin"
    os.symlink(elsewhere, link)
    atomic_write(link, b"new")
    assert elsewhere.read_bytes() == b"not yours"
    assert not link.is_symlink() and link.read_bytes() == b"new"


def test_the_mode_is_the_one_asked_for(tmp_path: Path) -> None:
    target = tmp_path / "chart.png"
    atomic_write(target, b"png", mode=0o644)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
