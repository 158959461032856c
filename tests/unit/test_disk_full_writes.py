"""Every writer on a real full file system (a 256 KiB tmpfs the test mounts): the write
is DiskFull naming the file and the space it needs, no temp file is left, the file it
would have replaced is intact, and the caches (file index, view cache) stay best effort."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from harness.errors import DiskFull
from harness.files import write_atomic
from harness.plan.calibration import CalibrationStore
from harness.warehouse import Warehouse
from harness.warehouse.disk import write_parquet_atomic
from tests.mounts import tmpfs


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "fs", "size=256k") as mount:
        yield mount


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob(".*") if p.is_file())


def test_write_atomic_on_a_full_disk_keeps_the_old_file(tiny_fs: Path) -> None:
    target = tiny_fs / "data.json"
    write_atomic(target, "old")
    with pytest.raises(DiskFull) as caught:
        write_atomic(target, b"x" * (1024 * 1024))
    err = caught.value
    assert err.exit_code == 1
    assert str(target) in err.message and "no space left on device" in err.message
    assert "1.0 MiB needed" in err.message and "free" in err.message
    assert err.needed == 1024 * 1024 and err.free is not None
    assert target.read_text() == "old"
    assert leftovers(tiny_fs) == []


def test_a_parquet_file_too_big_is_never_half_written(tiny_fs: Path) -> None:
    table = pa.table({"x": [os.urandom(512 * 1024)]})  # incompressible: 512 KiB on disk
    final = tiny_fs / "t" / "big.parquet"
    with pytest.raises(DiskFull, match="big.parquet"):
        write_parquet_atomic(table, final, replace=False)
    assert not final.exists()
    assert leftovers(tiny_fs) == []


def test_calibration_and_the_warehouse_on_a_full_disk(tiny_fs: Path) -> None:
    results = tiny_fs / "results"
    w = Warehouse(results)
    w.begin_sweep("s1", started_at=datetime(2026, 1, 1, tzinfo=UTC), harness_version="0",
                  inventory="i", profile="quick", plan={})
    filler = tiny_fs / "filler"
    with open(filler, "wb", buffering=0) as f:
        for _ in range(64):  # bounded: 256 KiB is 4 writes
            try:
                f.write(b"\0" * 65536)
            except OSError:
                break
        for _ in range(64):
            try:
                f.write(b"\0" * 512)
            except OSError:
                break
    with pytest.raises(DiskFull, match="calibration"):
        CalibrationStore(results).save("h", "py", {"profile_id": "p"}, {"cpu_rate": 1e6}, "s1")
    with pytest.raises(DiskFull):
        w.add_cell("s1", "e1", "c1", [{"workload": "w", "model": "sequential", "repeat": 0,
                                       "status": "ok", "ok": True, "wall_s": 1.0}])
    # readers still answer: the file index and the view cache are caches
    (results / ".file-index.json").unlink(missing_ok=True)
    assert w.sweep_ids() == ["s1"]
    assert w.fetch("SELECT count(*) FROM sweeps").rows == [(1,)]
    assert leftovers(results) == []
    assert w.done_cells("s1") == set()
    filler.unlink()
    assert w.add_cell("s1", "e1", "c1", [{"workload": "w", "model": "sequential", "repeat": 0,
                                          "status": "ok", "ok": True, "wall_s": 1.0}])
    assert w.done_cells("s1") == {("e1", "c1")}
