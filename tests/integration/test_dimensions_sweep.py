"""A dimension sweep as a user runs it: ``harness sweep --profile quick --dimensions`` on
this machine, restricted with ``-w``/``--dimension`` to the dimensions that feed the views
of issue 4, then every view answers rows with the structure it documents.

The checks are structural (which rows exist, how columns relate), never a speed: other
work shares this machine.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas
import pytest

from harness.errors import OptionError
from harness.plan.catalog import load_catalog
from harness.plan.cells import PROFILES, check_dimensions, plan_cells, select_workloads
from harness.report.sql import connect, query
from harness.warehouse import Warehouse

WORKLOADS = ["cpu_bound", "transfer", "empty", "memory_bound", "net_low_latency"]
DIMENSIONS = ["workers", "task_duration", "payload", "payload_shm", "spawn_fork",
              "spawn_spawn", "spawn_forkserver", "pinning", "placement", "gil",
              "concurrency"]
VIEWS = ["scaling", "crossover", "transfer_cost", "spawn_cost", "worker_memory", "numa",
         "gil_effect", "io_latency"]


def test_dimension_option_selects_dimensions() -> None:
    """--dimension NAME plans only those dimensions (plus the headline cells)."""
    catalog = load_catalog()
    ws = select_workloads(catalog, ["cpu_bound"])
    names = check_dimensions(ws, ["workers", "workers"])
    assert names == ("workers",)
    cells = plan_cells(ws, PROFILES["quick"], host="h", python="p", usable_cpus=2,
                       dimensions=True, dimension_names=names)
    assert {c.params.get("dimension") for c in cells} == {None, "workers"}
    assert [c for c in cells if c.headline] == [
        c for c in plan_cells(ws, PROFILES["quick"], host="h", python="p", usable_cpus=2)]
    with pytest.raises(OptionError, match="'payload' is not a dimension"):
        check_dimensions(ws, ["payload"])


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("dims") / "results"
    args = [sys.executable, "-m", "harness", "sweep", "--profile", "quick", "--dimensions",
            "--results", str(results)]
    for w in WORKLOADS:
        args += ["-w", w]
    for d in DIMENSIONS:
        args += ["--dimension", d]
    p = subprocess.run(args, capture_output=True, text=True, timeout=900,
                       env={**os.environ, "COLUMNS": "200"})
    assert p.returncode == 0, p.stderr[-3000:]
    assert "cells stored" in p.stdout + p.stderr
    return results


@pytest.fixture(scope="module")
def views(swept: Path) -> dict[str, pandas.DataFrame]:
    con = connect(Warehouse(swept))
    try:
        return {v: query(con, f"SELECT * FROM {v}") for v in [*VIEWS, "crossover_points",
                                                              "thresholds"]}
    finally:
        con.close()


@pytest.mark.slow
def test_every_dimension_view_has_rows(views: dict[str, pandas.DataFrame]) -> None:
    for v in VIEWS:
        assert not views[v].empty, f"view {v} has no rows"


@pytest.mark.slow
def test_numa_is_not_applicable_on_one_node(views: dict[str, pandas.DataFrame]) -> None:
    numa = views["numa"]
    if (numa["numa_nodes"] > 1).any():
        pytest.skip("this machine has several NUMA nodes")
    pinned = numa[(numa["pinning"] != "none") | numa["memory"].notna()]
    assert not pinned.empty
    assert (pinned["status"] == "not_applicable").all()
    assert pinned["reason"].str.contains("1 NUMA node").all()
    # the unpinned cell runs everywhere
    assert (numa[(numa["pinning"] == "none") & numa["memory"].isna()]["status"] == "ok").any()


@pytest.mark.slow
def test_scaling_structure(views: dict[str, pandas.DataFrame]) -> None:
    s = views["scaling"]
    assert {"threads", "processes", "mp_pool"} <= set(s["model"])
    cpus = int(s["usable_cpus"].iloc[0])
    assert sorted(s["workers"].unique()) == sorted({1, 2, 2 * cpus})  # quick: 1, 2, 2cpus
    # the ideal line: speedup = workers, up to the usable CPUs
    assert (s["ideal_speedup"] == s["workers"].clip(upper=s["usable_cpus"])).all()
    ran = s[s["speedup"].notna()]
    assert not ran.empty
    assert (ran["efficiency"] - ran["speedup"] / ran["workers"]).abs().max() < 1e-9
    assert (ran["oversubscribed"] == (ran["workers"] > ran["usable_cpus"])).all()
    # the knee is one of the measured worker counts and reaches 95% of the best
    for (_, model), g in ran.groupby(["env_id", "model"]):
        knee = g["knee_workers"].iloc[0]
        assert knee in set(g["workers"]), model
        assert g[g["workers"] == knee]["speedup"].iloc[0] >= 0.95 * g["speedup"].max() - 1e-9
        assert (g["speedup_ci_low"] <= g["speedup"]).all()
        assert (g["speedup"] <= g["speedup_ci_high"]).all()


@pytest.mark.slow
def test_crossover_structure(views: dict[str, pandas.DataFrame]) -> None:
    c = views["crossover"]
    assert {"threads", "processes", "mp_pool"} <= set(c["model"])
    points = views["crossover_points"]
    for r in c.to_dict("records"):
        assert r["points"] == 4 and r["min_task_s"] < r["max_task_s"]
        lo, hi = r["crossover_low_s"], r["crossover_task_s"]
        if not pandas.isna(lo) and not pandas.isna(hi):
            assert lo < hi  # the crossover lies in (low, task]
        if not pandas.isna(hi):  # from there on the model beats sequential at every point
            p = points[(points["model"] == r["model"]) & (points["task_s"] >= hi)]
            assert p["beats"].all()
        if pandas.isna(hi):
            assert lo == r["max_task_s"]  # it never did, up to the largest point


@pytest.mark.slow
def test_transfer_cost_structure(views: dict[str, pandas.DataFrame]) -> None:
    t = views["transfer_cost"]
    assert set(t["transport"]) == {"pickle", "shared_memory"}
    for transport, g in t.groupby("transport"):
        assert {"threads", "processes"} <= set(g["model"]), transport
        assert sorted(g["payload_bytes"].unique()) == [1024, 1 << 20, 16 << 20]
        thr = g[g["model"] == "threads"]
        assert (thr["vs_threads"].dropna().round(12) == 1).all()
        assert thr["loses_to_threads"].isna().all() and thr["lose_from_bytes"].isna().all()
        proc = g[g["model"] == "processes"]
        lose = proc["lose_from_bytes"].dropna().unique()
        assert len(lose) <= 1
        if len(lose):  # loses at that payload and every larger one
            assert proc[proc["payload_bytes"] >= lose[0]]["loses_to_threads"].all()
        ran = g[g["n"] > 0]
        assert (ran["per_task_s"] - ran["median_s"] / ran["tasks"]).abs().max() < 1e-12


@pytest.mark.slow
def test_spawn_cost_has_every_start_method(views: dict[str, pandas.DataFrame]) -> None:
    s = views["spawn_cost"]
    methods = set(multiprocessing.get_all_start_methods())
    assert set(s["start_method"]) == methods & {"fork", "spawn", "forkserver"}
    ok = s[s["status"] == "ok"]
    assert set(ok["start_method"]) == set(s["start_method"])
    assert (ok["startup_s"] > 0).all()
    assert (ok["per_worker_s"] - ok["startup_s"] / ok["workers"]).abs().max() < 1e-12
    assert (ok["startup_min_s"] <= ok["startup_s"]).all()


@pytest.mark.slow
def test_worker_memory_io_and_gil(views: dict[str, pandas.DataFrame]) -> None:
    m = views["worker_memory"]
    assert set(m["model"]) <= {"processes", "mp_pool"}
    assert (m["worker_peak_rss_bytes"].dropna() > 0).all()
    both = m.dropna(subset=["worker_peak_rss_bytes"])
    assert (both["workers_x_worker_bytes"] == both["workers"] * both["worker_peak_rss_bytes"]).all()
    io = views["io_latency"]
    conc = io[io["dimension"] == "concurrency"]
    assert {"threads", "asyncio"} <= set(conc["model"])
    ran = conc[conc["n"] > 0]
    assert (ran["latency_p50_s"] <= ran["latency_p99_s"]).all()
    g = views["gil_effect"]
    std = g[~g["free_threaded"].astype(bool)]
    assert not std.empty  # this sweep ran on the standard build only
    assert (std["status"] == "not_applicable").all()
    assert std["reason"].str.contains("free-threaded build").all()


@pytest.mark.slow
def test_thresholds_and_report(swept: Path, views: dict[str, pandas.DataFrame],
                               tmp_path: Path) -> None:
    t = views["thresholds"]
    assert {"cpu_crossover", "transfer_lose_from", "scaling_knee", "spawn_per_worker",
            "asyncio_over_threads"} <= set(t["threshold"])
    out = tmp_path / "dims.md"
    p = subprocess.run([sys.executable, "-m", "harness", "report", "--results", str(swept),
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    text = out.read_text()
    assert "Thresholds measured here" in text
    for image in ("scaling0", "crossover_points0", "transfer_cost0", "worker_memory0"):
        assert (tmp_path / "dims_files" / f"{image}.svg").exists(), image
    assert "Budget for pool start-up per worker" in text


@pytest.mark.slow
def test_docs_dimension_examples_run(swept: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every SQL example of the dimension section of docs/views.md, as a user runs it in
    the DuckDB shell from the project root: `.read analysis/views.sql`, `.read
    analysis/dimensions.sql` (and claims/report for thresholds), then the query."""
    import duckdb

    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "views.md").read_text()
    section = text[text.index("## Dimension views"):text.index("## Example queries")]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.S)
    assert len(blocks) == 9
    monkeypatch.chdir(swept.parent)  # the files read 'results/...' relative to the cwd
    con = duckdb.connect()
    try:
        for name in ("views.sql", "dimensions.sql", "claims.sql", "report.sql"):
            con.execute((root / "analysis" / name).read_text())
        for sql in blocks:
            assert len(con.execute(sql).fetchall()) > 0, sql
    finally:
        con.close()
