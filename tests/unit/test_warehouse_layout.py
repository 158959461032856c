"""The warehouse's file names are built and parsed in one place and round-trip; files
are written with the umask's permissions, a cell file never replaces another."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.errors import WarehouseInputError
from harness.warehouse import Warehouse
from harness.warehouse.disk import file_mode
from harness.warehouse.layout import (
    Layout,
    attempt_file,
    cell_file,
    env_file,
    parse_attempt_file,
    parse_cell_file,
    parse_partition_name,
    partition_name,
)

IDS = ["e1", "a-b", "x%2Dy/z", "ünï code", "a.b_c~d", "-", "%"]


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("cell_id", IDS)
def test_names_round_trip(env_id: str, cell_id: str) -> None:
    assert parse_cell_file(cell_file(env_id, cell_id)) == (env_id, cell_id)
    for number in (1, 7, 1000):
        assert parse_attempt_file(attempt_file(env_id, cell_id, number)) == (
            env_id, cell_id, number)
    assert "/" not in cell_file(env_id, cell_id) and "/" not in env_file(env_id)


def test_todays_names_are_kept() -> None:
    assert cell_file("e1", "c1") == "cell-e1-c1.parquet"
    assert attempt_file("e1", "c1", 2) == "attempt-e1-c1-002.parquet"
    assert env_file("a-b") == "env-a%2Db.parquet"
    assert partition_name("s1") == "sweep_id=s1"
    assert parse_partition_name("sweep_id=s1") == "s1"
    assert parse_partition_name(".compact-sweep_id=s1") is None
    layout = Layout(Path("/r"))
    assert layout.sweep_file("s1") == Path("/r/sweeps/sweep_id=s1/sweep.parquet")
    assert layout.staging("measurements", "s1") == Path(
        "/r/measurements/.compact-sweep_id=s1")


def test_other_names_do_not_parse() -> None:
    for name in ("cell-e1.parquet", "part-abc.parquet", ".cell-e1-c1.parquet.x.part",
                 "attempts-none.parquet"):
        assert parse_cell_file(name) is None
    for name in ("attempt-e1-c1.parquet", "attempt-e1-c1-x.parquet", "attempts-none.parquet",
                 "cell-e1-c1.parquet"):
        assert parse_attempt_file(name) is None


def test_invalid_sweep_ids_never_name_a_directory() -> None:
    layout = Layout(Path("/r"))
    for bad in ("../x", "123", "", "-a", "a/b"):
        with pytest.raises(WarehouseInputError, match="invalid sweep id"):
            layout.partition("sweeps", bad)


def test_files_have_the_umask_permissions_and_a_cell_is_never_replaced(
        tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "results")
    wh.begin_sweep("s1", started_at=datetime(2026, 1, 1, tzinfo=UTC), harness_version="t",
                   inventory="i", profile="quick", plan={})
    row = {"workload": "cpu_bound", "model": "sequential", "repeat": 0, "wall_s": 1.0}
    assert wh.add_cell("s1", "e1", "c1", [row])
    assert not wh.add_cell("s1", "e1", "c1", [{**row, "wall_s": 2.0}])
    wh.set_sweep_status("s1", "interrupted")  # writes warehouse.duckdb
    wh.query("SELECT count(*) FROM measurements")  # the file index and the view cache
    files = [p for p in wh.root.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"sweep.parquet", "cell-e1-c1.parquet",
                                       "warehouse.duckdb", ".file-index.json"}
    assert any(p.name.startswith(".views-") for p in files)
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == file_mode(), p
    assert not [p for p in files if p.name.endswith(".part")]
    assert file_mode() == 0o666 & ~_umask()
    assert wh.query("SELECT wall_s FROM measurements").wall_s.tolist() == [1.0]


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old
