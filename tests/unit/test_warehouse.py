"""The warehouse files: atomic writes, idempotent cells, schema versions, plain readers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from harness.errors import WarehouseInputError
from harness.warehouse import (
    MEASUREMENT_SCHEMA,
    SCHEMA_VERSION,
    Warehouse,
    view_sql,
)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
VIEWS = ("sweeps", "environments", "measurements", "cells", "matrix", "profile_matrix",
         "profile_cells", "profiles", "samples")


def env(env_id: str = "e1", host: str = "h1", profile_id: str = "p1", **kw: Any) -> dict:
    row = {
        "host": host, "python": "python3", "env_id": env_id, "profile_id": profile_id,
        "hostname": host, "cpu_model": "Test CPU", "usable_cpus": 4, "numa_nodes": 1,
        "python_version": "3.13.1", "implementation": "CPython", "free_threaded": False,
        "gil_enabled": True, "status": "ok", "probe": {"cpus": 4}, "numa_cpus": [[0, 1, 2, 3]],
    }
    row.update(kw)
    return row


def rows(model: str, xs: list[float | None], *, workload: str = "cpu_bound",
         headline: bool = True, **kw: Any) -> list[dict]:
    return [
        {"cell_key": f"{workload}-{model}", "workload": workload, "params": {"n": 10},
         "model": model, "workers": 4, "repeat": i, "warmup": False, "headline": headline,
         "wall_s": x, "cpu_user_s": None, "ok": x is not None,
         "status": "ok" if x is not None else "failed", "extra": {}, **kw}
        for i, x in enumerate(xs)
    ]


@pytest.fixture()
def wh(tmp_path: Path) -> Warehouse:
    w = Warehouse(tmp_path / "results")
    w.begin_sweep("s1", started_at=T0, harness_version="0.1.0", inventory="local.ini",
                  profile="quick", plan={"workloads": ["cpu_bound"]})
    w.add_environment("s1", env())
    return w


def all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_layout_and_no_temp_files(wh: Warehouse) -> None:
    assert wh.add_cell("s1", "e1", "c1", rows("sequential", [1.0, 2.0, 3.0]))
    wh.set_sweep_status("s1", "running")
    assert not (wh.root / "warehouse.duckdb").exists()
    wh.set_sweep_status("s1", "complete", finished_at=T0 + timedelta(minutes=5))
    assert (wh.root / "warehouse.duckdb").exists()  # refreshed when the sweep ends
    names = {str(p.relative_to(wh.root)) for p in all_files(wh.root)}
    caches = {n for n in names if n.startswith(".views-") and n.endswith(".duckdb")}
    assert len(caches) == 1  # the view cache, built when the sweep ended (one sweep: one)
    assert names - caches == {
        "sweeps/sweep_id=s1/sweep.parquet",
        "environments/sweep_id=s1/env-e1.parquet",
        "measurements/sweep_id=s1/cell-e1-c1.parquet",
        "attempts/sweep_id=s1/attempts-none.parquet",
        "warehouse.duckdb",
        ".file-index.json",  # what readers know of each file (a cache, safe to delete)
    }
    # sweep_id lives only in the directory name
    cell_file = wh.root / "measurements/sweep_id=s1/cell-e1-c1.parquet"
    assert "sweep_id" not in pq.read_schema(cell_file).names


def test_explicit_types_survive_all_null_columns(wh: Warehouse) -> None:
    wh.add_cell("s1", "e1", "c1", rows("sequential", [1.0, float("nan")]))
    t = pq.read_table(wh.root / "measurements/sweep_id=s1/cell-e1-c1.parquet")
    assert t.schema.equals(MEASUREMENT_SCHEMA, check_metadata=False)
    assert t.column("cpu_user_s").type == pa.float64()
    assert t.column("wall_s").to_pylist() == [1.0, None]  # NaN stays missing, never 0
    assert t.column("schema_version").to_pylist() == [SCHEMA_VERSION] * 2
    assert json.loads(t.column("params")[0].as_py()) == {"n": 10}


def test_duplicate_cell_is_a_noop(wh: Warehouse) -> None:
    assert wh.add_cell("s1", "e1", "c1", rows("sequential", [1.0, 2.0]))
    assert not wh.add_cell("s1", "e1", "c1", rows("sequential", [9.0, 9.0, 9.0]))
    df = wh.query("SELECT wall_s FROM measurements ORDER BY wall_s")
    assert df["wall_s"].tolist() == [1.0, 2.0]
    assert wh.done_cells("s1") == {("e1", "c1")}


def test_concurrent_writers_of_one_cell_store_it_once(wh: Warehouse) -> None:
    results: list[bool] = []
    lock = threading.Lock()

    def write(i: int) -> None:
        ok = wh.add_cell("s1", "e1", "c1", rows("sequential", [float(i + 1)]))
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert len(wh.query("SELECT * FROM measurements")) == 1
    temps = [p for p in all_files(wh.root) if p.name.startswith(".") and p.name.endswith(".part")]
    assert not temps


def test_ids_that_could_collide_in_file_names(wh: Warehouse) -> None:
    wh.add_environment("s1", env(env_id="a-b"))
    wh.add_environment("s1", env(env_id="a", host="h2"))
    assert wh.add_cell("s1", "a-b", "c", rows("sequential", [1.0]))
    assert wh.add_cell("s1", "a", "b-c", rows("sequential", [2.0]))
    assert wh.add_cell("s1", "a", "x%2Dy/z", rows("sequential", [3.0]))
    assert wh.done_cells("s1") == {("a-b", "c"), ("a", "b-c"), ("a", "x%2Dy/z")}
    stored = wh.query("SELECT env_id, cell_id FROM measurements")
    assert set(stored.itertuples(index=False, name=None)) == wh.done_cells("s1")


def test_rows_must_match_the_cell(wh: Warehouse) -> None:
    with pytest.raises(WarehouseInputError, match="env_id"):
        wh.add_cell("s1", "e1", "c1", rows("sequential", [1.0], env_id="other"))
    with pytest.raises(WarehouseInputError, match="unknown column"):
        wh.add_cell("s1", "e1", "c1", rows("sequential", [1.0], wal_s=1.0))
    with pytest.raises(WarehouseInputError, match="status"):
        wh.add_cell("s1", "e1", "c1", rows("sequential", [1.0], status="weird"))
    with pytest.raises(WarehouseInputError, match="no rows"):
        wh.add_cell("s1", "e1", "c1", [])
    with pytest.raises(WarehouseInputError, match="schema"):
        wh.add_cell("s1", "e1", "c1", rows("sequential", ["slow"]))  # type: ignore[list-item]
    assert wh.done_cells("s1") == set()


def test_unknown_sweep_and_bad_ids(wh: Warehouse) -> None:
    for call in (
        lambda: wh.add_cell("nope", "e1", "c1", rows("sequential", [1.0])),
        lambda: wh.add_environment("nope", env()),
        lambda: wh.set_sweep_status("nope", "complete"),
        lambda: wh.done_cells("nope"),
    ):
        with pytest.raises(WarehouseInputError, match="unknown sweep id"):
            call()
    with pytest.raises(WarehouseInputError, match="invalid sweep id"):
        wh.done_cells("../etc")
    with pytest.raises(WarehouseInputError, match="already exists"):
        wh.begin_sweep("s1", started_at=T0, harness_version="x", inventory="i", profile="quick",
                       plan={})
    with pytest.raises(WarehouseInputError, match="invalid sweep status"):
        wh.set_sweep_status("s1", "done")


def test_root_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "results"
    f.write_text("not a dir")
    with pytest.raises(WarehouseInputError, match="not a directory"):
        Warehouse(f)


def test_read_only_root_refuses_writes_but_reads(tmp_path: Path, wh: Warehouse) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores permissions")
    wh.add_cell("s1", "e1", "c1", rows("sequential", [1.0]))
    wh.root.chmod(0o555)
    try:
        with pytest.raises(WarehouseInputError, match="not a writable"):
            wh.refresh_views()
        assert len(Warehouse(wh.root).query("SELECT * FROM cells")) == 1
    finally:
        wh.root.chmod(0o755)


def test_sweep_status_and_order(tmp_path: Path) -> None:
    w = Warehouse(tmp_path / "r")
    assert w.sweep_ids() == [] and w.latest_sweep_id() is None
    w.begin_sweep("zz-old", started_at=T0, harness_version="0.1", inventory="i", profile="quick",
                  plan={})
    w.begin_sweep("aa-new", started_at=T0 + timedelta(hours=1), harness_version="0.1",
                  inventory="i", profile="quick", plan={"a": [1, 2]})
    assert w.sweep_ids() == ["zz-old", "aa-new"]
    assert w.latest_sweep_id() == "aa-new"
    w.set_sweep_status("aa-new", "interrupted")
    w.set_sweep_status("aa-new", "complete", finished_at=T0 + timedelta(hours=2))
    df = w.query("SELECT * FROM sweeps WHERE sweep_id = ?", ["aa-new"])
    assert df.loc[0, "status"] == "complete"
    assert df.loc[0, "finished_at"] == pandas.Timestamp(T0 + timedelta(hours=2))
    assert df.loc[0, "started_at"] == pandas.Timestamp(T0 + timedelta(hours=1))
    assert json.loads(df.loc[0, "plan"]) == {"a": [1, 2]}


def test_failed_host_is_an_environment_row(wh: Warehouse) -> None:
    wh.add_environment("s1", {"host": "down", "python": "python3", "status": "failed",
                              "error": "connection refused"})
    df = wh.query("SELECT host, status, error, cpu_model FROM environments ORDER BY host")
    first = df.to_dict("records")[0]
    assert pandas.isna(first.pop("cpu_model"))
    assert first == {"host": "down", "status": "failed", "error": "connection refused"}
    # a re-probe of the same env replaces its row
    wh.add_environment("s1", env(cpu_model="Other CPU"))
    df = wh.query("SELECT cpu_model FROM environments WHERE env_id = 'e1'")
    assert df["cpu_model"].tolist() == ["Other CPU"]


def _write_v2(path: Path, schema: pa.Schema, row: dict) -> None:
    row = {**{n: None for n in schema.names}, **row, "schema_version": SCHEMA_VERSION + 1}
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([row], schema=schema), path)


def test_newer_schema_is_refused(wh: Warehouse) -> None:
    wh.add_cell("s1", "e1", "c1", rows("sequential", [1.0]))
    _write_v2(wh.root / "measurements/sweep_id=s1/cell-e9-c9.parquet", MEASUREMENT_SCHEMA,
              {"env_id": "e9", "cell_id": "c9", "ok": True, "wall_s": 1.0})
    with pytest.raises(WarehouseInputError, match="newer harness"):
        wh.query("SELECT * FROM cells")
    with pytest.raises(WarehouseInputError, match="newer harness"):
        wh.refresh_views()


def test_newer_sweep_file_is_refused(wh: Warehouse) -> None:
    from harness.warehouse import SWEEP_SCHEMA

    _write_v2(wh.root / "sweeps/sweep_id=s2/sweep.parquet", SWEEP_SCHEMA,
              {"status": "running", "started_at": T0})
    with pytest.raises(WarehouseInputError, match="newer harness"):
        wh.add_cell("s2", "e1", "c1", rows("sequential", [1.0]))


def test_empty_and_missing_warehouse_answer_empty_frames(tmp_path: Path) -> None:
    w = Warehouse(tmp_path / "absent")
    for view in VIEWS:
        df = w.query(f"SELECT * FROM {view}")
        assert df.empty and len(df.columns) > 0, view
    assert not (tmp_path / "absent").exists()  # reading creates nothing
    w2 = Warehouse(tmp_path / "r")
    w2.begin_sweep("s", started_at=T0, harness_version="0", inventory="i", profile="quick",
                   plan={})
    assert len(w2.query("SELECT * FROM sweeps")) == 1
    assert w2.query("SELECT * FROM matrix").empty
    # typed empty columns: the same types as with data
    con = w2.connect()
    types = {r[0]: r[1] for r in con.execute("DESCRIBE measurements").fetchall()}
    con.close()
    assert types["sweep_id"] == "VARCHAR" and types["wall_s"] == "DOUBLE"
    assert types["params"] == "JSON" and types["headline"] == "BOOLEAN"


def test_sql_errors_are_warehouse_input_errors(wh: Warehouse) -> None:
    with pytest.raises(WarehouseInputError, match="SQL error"):
        wh.query("SELECT no_such_column FROM cells")


def test_refresh_views_file_is_optional_and_unlocked(wh: Warehouse) -> None:
    wh.add_cell("s1", "e1", "c1", rows("sequential", [1.0, 2.0, 3.0]))
    db = wh.refresh_views()
    assert db == wh.root / "warehouse.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT n, median_s FROM cells").fetchall() == [(3, 2.0)]
    finally:
        con.close()
    con = duckdb.connect(str(db))  # nobody holds a lock
    con.close()
    wh.refresh_views()  # rebuilt over the old one
    db.unlink()
    assert wh.query("SELECT n FROM cells")["n"].tolist() == [3]


def test_plain_readers_need_nothing_from_harness(wh: Warehouse) -> None:
    wh.add_environment("s1", env(env_id="e2", host="h2"))
    wh.add_cell("s1", "e1", "c1", rows("sequential", [1.0, 2.0]))
    wh.add_cell("s1", "e2", "c1", rows("sequential", [3.0]))
    wh.begin_sweep("s2", started_at=T0, harness_version="0", inventory="i", profile="quick",
                   plan={})
    wh.add_cell("s2", "e1", "c1", rows("sequential", [4.0]))
    root = wh.root
    code = (
        "import sys, pandas, pyarrow.dataset as ds, duckdb\n"
        "assert 'harness' not in sys.modules\n"
        f"root = {str(root)!r}\n"
        "df = pandas.read_parquet(root + '/measurements')\n"
        "print(len(df), sorted(df['sweep_id'].astype(str).unique()))\n"
        "t = ds.dataset(root + '/measurements', partitioning='hive').to_table()\n"
        "print(t.num_rows, t.schema.names.count('sweep_id'))\n"
        "r = duckdb.sql(\"SELECT sweep_id, count(*) FROM read_parquet('\" + root + "
        "\"/measurements/*/*.parquet', hive_partitioning=true) GROUP BY ALL ORDER BY 1\")"
        ".fetchall()\n"
        "print(r)\n"
        "print(len(pandas.read_parquet(root + '/environments')), "
        "len(pandas.read_parquet(root + '/sweeps')))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], cwd="/", capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out == ["4 ['s1', 's2']", "4 1", "[('s1', 3), ('s2', 1)]", "2 2"]
    # and in-process through pyarrow.dataset with the partition column
    t = ds.dataset(root / "environments", partitioning="hive").to_table()
    assert sorted(t.column("env_id").to_pylist()) == ["e1", "e2"]


def test_views_sql_runs_by_hand_from_the_project_root(wh: Warehouse, monkeypatch: Any) -> None:
    wh.add_cell("s1", "e1", "c1", rows("sequential", [1.0, 2.0, 3.0]))
    monkeypatch.chdir(wh.root.parent)  # 'results/...' relative to the cwd, as in the shell
    sql = (Path(__file__).resolve().parents[2] / "analysis" / "views.sql").read_text()
    con = duckdb.connect()
    con.execute(sql)
    assert con.execute("SELECT workload, n, speedup FROM matrix").fetchall() == [
        ("cpu_bound", 3, 1.0)]
    # and the rewrite only touches the readers
    rewritten = view_sql(wh.root)
    assert "'results/" not in rewritten.split("-- Distribution-free")[1]
    assert str(wh.root) in rewritten


def test_resolve_sweep_id(tmp_path: Path) -> None:
    w = Warehouse(tmp_path / "r")
    with pytest.raises(WarehouseInputError, match="no sweep"):
        w.resolve_sweep_id("latest")
    for i, sid in enumerate(["20261126T160000Z-aaaaaa", "20261126T170000Z-bbbbbb",
                             "20261126T170000Z-bbbccc"]):
        w.begin_sweep(sid, started_at=T0 + timedelta(hours=i), harness_version="0",
                      inventory="i", profile="quick", plan={})
    assert w.resolve_sweep_id(None) == w.resolve_sweep_id("latest") == "20261126T170000Z-bbbccc"
    assert w.resolve_sweep_id("20261126T160000Z-aaaaaa") == "20261126T160000Z-aaaaaa"
    assert w.resolve_sweep_id("20261126T16") == "20261126T160000Z-aaaaaa"
    with pytest.raises(WarehouseInputError, match="ambiguous"):
        w.resolve_sweep_id("20261126T170000Z-bbb")
    with pytest.raises(WarehouseInputError, match="unknown sweep id"):
        w.resolve_sweep_id("nope")
    with pytest.raises(WarehouseInputError, match="invalid sweep id"):
        w.begin_sweep("20261126", started_at=T0, harness_version="0", inventory="i",
                      profile="quick", plan={})


def test_environment_with_extra_fingerprint_facts(wh: Warehouse) -> None:
    assert wh.has_environment("s1", "e1") and not wh.has_environment("s1", "e2")
    probe = {"cpu_model": "Test CPU", "loadavg": [0.1, 0.2, 0.3], "start_methods": ["fork"]}
    wh.add_environment("s1", env(env_id="e2", host="h2", loadavg=[0.1, 0.2, 0.3],
                                 start_methods=["fork"], probe=probe,
                                 numa_cpus=json.dumps(["0-3"])))
    assert wh.has_environment("s1", "e2")
    df = wh.query("SELECT numa_cpus, probe->>'$.loadavg[1]' AS load1 FROM environments "
                  "WHERE env_id = 'e2'")
    assert json.loads(df.loc[0, "numa_cpus"]) == ["0-3"]
    assert float(df.loc[0, "load1"]) == 0.2
