"""Attempts a cell never finished are kept apart from results, so resume re-runs them.

Also: a warehouse written by the first schema (tests/data/warehouse_v1, committed)
is read by this harness, and files of a newer schema are refused.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from harness.errors import WarehouseInputError
from harness.warehouse import SCHEMA_VERSION, Warehouse

T0 = datetime(2025, 1, 1, tzinfo=UTC)
V1 = Path(__file__).resolve().parents[1] / "data" / "warehouse_v1"


def rows(status: str, walls: list[float | None], error: str | None = None) -> list[dict[str, Any]]:
    return [{"cell_key": "k1", "workload": "cpu_bound", "model": "sequential", "workers": 1,
             "params": {"tasks": 2}, "repeat": i, "warmup": False, "headline": True,
             "wall_s": w, "ok": w is not None, "error": error, "status": status}
            for i, w in enumerate(walls)]


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    w = Warehouse(tmp_path / "results")
    w.begin_sweep("s1", started_at=T0, harness_version="t", inventory="i", profile="quick",
                  plan={})
    w.add_environment("s1", {"host": "h", "python": "p", "env_id": "e1"})
    return w


def test_an_attempt_is_not_done_and_a_later_result_supersedes_it(wh: Warehouse) -> None:
    assert wh.add_attempt("s1", "e1", "c1", rows("failed", [None], "h: connection lost")) == 1
    assert wh.add_attempt("s1", "e1", "c1", rows("failed", [None], "h: lost again")) == 2
    assert wh.done_cells("s1") == set()
    assert wh.unfinished_cells("s1") == {("e1", "c1")}
    cells = wh.query("SELECT status, reason, n FROM cells")
    assert cells.to_dict("records") == [{"status": "failed", "reason": "h: lost again", "n": 0}]
    assert len(wh.query("SELECT * FROM attempts")) == 2
    # the resumed run finishes the cell: one result, the attempts stay as history
    assert wh.add_cell("s1", "e1", "c1", rows("ok", [1.0, 1.1, 1.2]))
    assert wh.done_cells("s1") == {("e1", "c1")}
    assert wh.unfinished_cells("s1") == set()
    cells = wh.query("SELECT status, n FROM cells")
    assert cells.to_dict("records") == [{"status": "ok", "n": 3}]
    assert wh.query("SELECT count(*) AS n FROM measurements").n[0] == 3
    # a finished cell is never written twice
    assert not wh.add_cell("s1", "e1", "c1", rows("ok", [9.0]))
    assert wh.query("SELECT count(*) AS n FROM measurements").n[0] == 3
    # measurements keeps exactly its columns (no attempt column leaks in)
    cols = list(wh.query("SELECT * FROM measurements LIMIT 0").columns)
    assert "attempt" not in cols and cols[0] == "sweep_id"


def test_first_schema_warehouse_is_readable(tmp_path: Path) -> None:
    assert V1.is_dir(), "tests/data/warehouse_v1 is committed"
    versions = {pq.read_table(p).column("schema_version").to_pylist()[0]
                for p in V1.rglob("*.parquet") if pq.read_metadata(p).num_rows}
    assert versions == {1}
    root = tmp_path / "results"
    shutil.copytree(V1, root)
    wh = Warehouse(root)
    (sid,) = wh.sweep_ids()
    cells = wh.query("SELECT status, n FROM cells WHERE sweep_id = ?", [sid])
    assert len(cells) >= 2 and (cells.status == "ok").all()
    matrix = wh.query("SELECT model, speedup FROM matrix ORDER BY model")
    assert "sequential" in set(matrix.model)
    assert wh.done_cells(sid)


def test_a_newer_schema_is_refused(wh: Warehouse, tmp_path: Path) -> None:
    wh.add_cell("s1", "e1", "c1", rows("ok", [1.0]))
    path = next((wh.root / "measurements").rglob("*.parquet"))
    table = pq.read_table(path)
    col = table.schema.get_field_index("schema_version")
    import pyarrow as pa

    newer = table.set_column(col, "schema_version",
                             pa.array([SCHEMA_VERSION + 1] * len(table), pa.int32()))
    pq.write_table(newer, path)
    with pytest.raises(WarehouseInputError, match="newer harness"):
        wh.query("SELECT * FROM cells")
