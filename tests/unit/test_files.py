"""The one atomic writer: whole or absent, never replacing when told not to, no temp
file left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.files import atomic_path, write_atomic


def test_write_atomic_replaces_or_keeps(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    assert write_atomic(target, "one") is True
    assert write_atomic(target, "two") is True
    assert target.read_text() == "two"
    assert write_atomic(target, b"three", replace=False) is False  # never replaced
    assert target.read_text() == "two"
    assert write_atomic(tmp_path / "b.bin", b"\x00\x01", replace=False, mode=0o644) is True
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]


def test_an_error_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "c.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["c.txt"]


def test_a_read_only_mode_still_writes(tmp_path: Path) -> None:
    target = tmp_path / "ro.txt"
    assert write_atomic(target, "x", mode=0o444) is True
    assert target.read_text() == "x" and target.stat().st_mode & 0o777 == 0o444
