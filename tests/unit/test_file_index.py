"""The warehouse's file index (.file-index.json) and the connections scoped to sweeps."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.errors import WarehouseInputError
from harness.warehouse import INDEX_NAME, Warehouse
from tests.unit.small_warehouse import T0, rows, two_sweeps


@pytest.fixture()
def wh(tmp_path: Path) -> Warehouse:
    return two_sweeps(tmp_path / "results")


def _newer(path: Path) -> None:
    """Rewrite ``path`` (atomically, as a newer harness would) with schema_version 99."""
    t = pq.read_table(path)
    i = t.schema.get_field_index("schema_version")
    t = t.set_column(i, "schema_version", pa.array([99] * t.num_rows, pa.int32()))
    tmp = path.with_name(".tmp-newer")
    pq.write_table(t, tmp)
    os.replace(tmp, path)


def test_index_is_written_and_lists_every_data_file(wh: Warehouse) -> None:
    assert len(wh.query("SELECT * FROM measurements")) == 6
    data = json.loads((wh.root / INDEX_NAME).read_text())
    names = set(data["files"])
    on_disk = {str(p.relative_to(wh.root)) for p in wh.root.glob("*/sweep_id=*/*.parquet")}
    assert names == on_disk
    # a removed file leaves the index at the next read
    (wh.root / "measurements/sweep_id=s2/cell-e1-c1.parquet").unlink()
    assert wh.query("SELECT DISTINCT sweep_id FROM measurements").sweep_id.tolist() == ["s1"]
    data = json.loads((wh.root / INDEX_NAME).read_text())
    assert "measurements/sweep_id=s2/cell-e1-c1.parquet" not in data["files"]


def test_a_replaced_file_of_a_newer_schema_is_refused_despite_the_index(wh: Warehouse) -> None:
    wh.query("SELECT count(*) FROM measurements")  # indexes every file as version 1
    cell = wh.root / "measurements/sweep_id=s1/cell-e1-c1.parquet"
    before = cell.stat()
    _newer(cell)
    # even with the old mtime: the inode changed, so the file is read again
    os.utime(cell, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(WarehouseInputError, match="newer harness"):
        wh.query("SELECT count(*) FROM measurements")
    with pytest.raises(WarehouseInputError, match="newer harness"):
        wh.check_schema()


def test_a_new_file_of_a_newer_schema_is_refused(wh: Warehouse) -> None:
    wh.query("SELECT count(*) FROM sweeps")
    src = wh.root / "environments/sweep_id=s2/env-e1.parquet"
    copy = src.with_name("env-e2.parquet")
    copy.write_bytes(src.read_bytes())
    _newer(copy)
    with pytest.raises(WarehouseInputError, match="newer harness"):
        wh.query("SELECT count(*) FROM sweeps")


def test_a_corrupt_or_foreign_index_is_rebuilt(wh: Warehouse) -> None:
    (wh.root / INDEX_NAME).write_text("{not json")
    assert len(wh.query("SELECT * FROM measurements")) == 6
    assert json.loads((wh.root / INDEX_NAME).read_text())["files"]
    # an entry that lies about a file (same key, wrong facts) is not trusted past its key:
    # rewrite every entry's key so none matches, and the facts are read again
    data = json.loads((wh.root / INDEX_NAME).read_text())
    for entry in data["files"].values():
        entry[0] = -1
        entry[5] = entry[6] = 99  # claims a newer schema
    (wh.root / INDEX_NAME).write_text(json.dumps(data))
    assert len(wh.query("SELECT * FROM measurements")) == 6


def test_sweep_ids_follow_a_status_change(wh: Warehouse) -> None:
    assert wh.sweep_ids() == ["s1", "s2"]
    wh.set_sweep_status("s1", "complete", finished_at=T0 + timedelta(hours=3))
    assert wh.sweep_ids() == ["s1", "s2"]
    assert wh.query("SELECT status FROM sweeps WHERE sweep_id = 's1'").status.tolist() == [
        "complete"]


def test_connect_scoped_to_sweeps_sees_only_them(wh: Warehouse) -> None:
    con = wh.connect(["s2"])
    try:
        got = con.execute("SELECT DISTINCT sweep_id, median_s FROM cells").fetchall()
        assert got == [("s2", 2.0)]
        assert con.execute("SELECT sweep_id FROM sweeps").fetchall() == [("s2",)]
    finally:
        con.close()
    con = wh.connect()
    try:
        got = con.execute("SELECT sweep_id FROM cells ORDER BY 1").fetchall()
        assert got == [("s1",), ("s2",)]
    finally:
        con.close()


def test_empty_files_are_not_read_and_the_empty_table_still_answers(wh: Warehouse) -> None:
    # every attempts file is the empty one begin_sweep writes
    assert wh.query("SELECT count(*) AS n FROM attempts").n.tolist() == [0]
    assert wh.query("SELECT count(*) AS n FROM measurements").n.tolist() == [6]
    n = wh.add_attempt("s1", "e1", "c2", rows("threads", [0.5]))
    assert n == 1
    got = wh.query("SELECT cell_id, status FROM measurements WHERE cell_id = 'c2'")
    assert got.cell_id.tolist() == ["c2"]
