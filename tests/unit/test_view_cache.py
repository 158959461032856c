"""The view cache (ROOT/.views-<digest>.duckdb) and Warehouse.fetch (answers without pandas)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import harness.warehouse.views as warehouse_module
from harness.errors import WarehouseInputError
from harness.warehouse import VIEW_CACHE_PREFIX, Warehouse
from tests.unit.small_warehouse import rows, sweep, two_sweeps


@pytest.fixture()
def wh(tmp_path: Path) -> Warehouse:
    return two_sweeps(tmp_path / "results")


def caches(w: Warehouse) -> list[Path]:
    return sorted(w.root.glob(f"{VIEW_CACHE_PREFIX}*.duckdb"))


def test_views_are_created_once_and_then_attached(wh: Warehouse) -> None:
    assert caches(wh) == []
    assert wh.query("SELECT count(*) AS n FROM matrix").n.tolist() == [2]
    (cache,) = caches(wh)
    stamp = cache.stat().st_mtime_ns
    # a new sweep is new files, read through the variables: the same cache answers
    sweep(wh, "s3", 2, 3.0)
    got = wh.query("SELECT sweep_id, median_s FROM cells ORDER BY 1")
    assert got.values.tolist() == [["s1", 1.0], ["s2", 2.0], ["s3", 3.0]]
    assert caches(wh) == [cache] and cache.stat().st_mtime_ns == stamp
    # every analysis view is in it (compare, claims, report, dimensions)
    for name in ("compare_pairs", "claims", "thresholds", "scaling"):
        wh.query(f"SELECT * FROM {name} LIMIT 0")
    assert caches(wh) == [cache]
    # no temp file is left behind
    assert not list(wh.root.glob(".*.part"))


def test_a_changed_analysis_file_is_a_new_cache(wh: Warehouse, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    wh.query("SELECT 1")
    (old,) = caches(wh)
    extra = tmp_path / "zz_extra.sql"
    extra.write_text("CREATE OR REPLACE VIEW extra AS SELECT count(*) AS n FROM cells;")
    real = warehouse_module.analysis_files
    monkeypatch.setattr(warehouse_module, "analysis_files", lambda: [*real(), extra])
    assert wh.query("SELECT n FROM extra").n.tolist() == [2]
    assert len(caches(wh)) == 2 and old in caches(wh)
    extra.write_text("CREATE OR REPLACE VIEW extra AS SELECT 42 AS n;")
    assert wh.query("SELECT n FROM extra").n.tolist() == [42]


def test_a_table_getting_its_first_rows_is_a_new_cache(wh: Warehouse) -> None:
    assert wh.query("SELECT count(*) AS n FROM attempts").n.tolist() == [0]
    wh.add_attempt("s1", "e1", "c2", rows("threads", [0.5]))
    assert wh.query("SELECT count(*) AS n FROM attempts").n.tolist() == [1]
    assert len(caches(wh)) == 2


def test_a_corrupt_cache_is_not_used(wh: Warehouse) -> None:
    wh.query("SELECT 1")
    (cache,) = caches(wh)
    cache.write_bytes(b"not a duckdb file" * 100)
    assert wh.query("SELECT count(*) AS n FROM cells").n.tolist() == [2]


def test_sweep_scoped_connections_share_the_views(wh: Warehouse) -> None:
    con = wh.connect(["s2"])
    try:
        assert con.execute("SELECT DISTINCT sweep_id FROM cells").fetchall() == [("s2",)]
        # a table the user creates lives in the connection, not in the cache file
        con.execute("CREATE TABLE mine AS SELECT 1 AS x")
        assert con.execute("SELECT x FROM mine").fetchall() == [(1,)]
    finally:
        con.close()
    assert wh.query("SELECT count(*) AS n FROM cells").n.tolist() == [2]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_a_read_only_warehouse_answers_without_a_cache(wh: Warehouse) -> None:
    os.chmod(wh.root, 0o555)
    try:
        assert wh.query("SELECT count(*) AS n FROM cells").n.tolist() == [2]
        assert caches(wh) == []
    finally:
        os.chmod(wh.root, 0o755)


def test_fetch_answers_python_rows_and_caps(wh: Warehouse) -> None:
    answer = wh.fetch("SELECT sweep_id, repeat, wall_s FROM measurements ORDER BY 1, 2")
    assert answer.columns == ["sweep_id", "repeat", "wall_s"]
    assert answer.types == ["VARCHAR", "BIGINT", "DOUBLE"]
    assert answer.rows[0] == ("s1", 0, 1.0) and answer.total == 6 and not answer.capped
    capped = wh.fetch("SELECT * FROM measurements ORDER BY sweep_id, repeat;", max_rows=4)
    assert len(capped.rows) == 4 and capped.total == 6 and capped.capped
    exact = wh.fetch("SELECT * FROM measurements", max_rows=6)
    assert len(exact.rows) == 6 and exact.total == 6 and not exact.capped
    # a statement that cannot be counted as a subquery: capped, total unknown
    shown = wh.fetch("SHOW TABLES", max_rows=1)
    assert len(shown.rows) == 1 and shown.capped
    with pytest.raises(WarehouseInputError, match="SQL error"):
        wh.fetch("SELEKT 1")
