"""Paired speedups from interleaved blocks (analysis/views.sql block_ratios, paired_cells,
matrix, profile_matrix; analysis/dimensions.sql dimension_cells) on fixed samples with
known answers, and against plain DuckDB over the raw Parquet files (real DuckDB, real
files)."""

from __future__ import annotations

import math
import random
import re
import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from harness.warehouse import Warehouse

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "views.md"
SLOW = 1.7  # the VM's slow mode: every wall time 1.7x longer


def env(env_id: str, host: str, profile_id: str = "p1") -> dict[str, Any]:
    return {"host": host, "python": "python3.13", "env_id": env_id, "profile_id": profile_id,
            "cpu_model": "Test CPU", "usable_cpus": 4, "numa_nodes": 1,
            "python_version": "3.13.1", "free_threaded": False, "gil_enabled": True,
            "status": "ok"}


def group(times: Mapping[str, Sequence[float | None]], *, group_id: str,
          workload: str = "cpu_bound", params: Mapping[str, Any] | None = None,
          workers: Mapping[str, int] | None = None,
          headline: bool = True) -> dict[str, list[dict[str, Any]]]:
    """The rows of the cells of one block group, as the agent stores them: ``times[name]``
    is cell ``name``'s wall time in block 0, 1, ... (None: that repeat failed). A cell's
    model is ``name`` up to a ``@`` (``processes@2``: a second processes cell); its workers
    come from ``workers`` (default 1 for sequential, 4 otherwise). One warmup per cell
    (block NULL), then one timed row per block; block_pos rotates with the block."""
    params = dict(params or {"n": 1})
    names = list(times)
    out: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        model = name.split("@")[0]
        n_workers = (workers or {}).get(name, 1 if model == "sequential" else 4)
        base = {"cell_key": f"{workload}-{name}-{group_id}", "workload": workload,
                "params": params, "model": model, "workers": n_workers,
                "headline": headline, "block_group": group_id}
        first = next(x for x in times[name] if x is not None)
        cell = [{**base, "repeat": 0, "warmup": True, "wall_s": first, "ok": True,
                 "status": "ok"}]
        for b, x in enumerate(times[name]):
            row = {**base, "repeat": b, "warmup": False, "block": b,
                   "block_pos": (names.index(name) + b) % len(names), "probe_s": 0.001}
            if x is None:
                row.update(wall_s=None, ok=False, status="ok", error="BrokenProcessPool")
            else:
                row.update(wall_s=x, ok=True, status="ok")
            cell.append(row)
        out[name] = cell
    return out


def add_group(w: Warehouse, rows: Mapping[str, list[dict[str, Any]]], *, sweep: str = "s1",
              env_id: str = "e1", prefix: str = "") -> None:
    for name, cell in rows.items():
        w.add_cell(sweep, env_id, f"{prefix}{cell[0]['workload']}-{name}", cell)


def unblocked(model: str, xs: Sequence[float], workload: str = "cpu_bound") -> list[dict]:
    """Timed rows without blocks, as in a version-1 file."""
    return [{"cell_key": f"{workload}-{model}", "workload": workload, "params": {"n": 1},
             "model": model, "workers": 1 if model == "sequential" else 4,
             "headline": True, "repeat": i, "warmup": False, "wall_s": x, "ok": True,
             "status": "ok"} for i, x in enumerate(xs)]


@pytest.fixture()
def wh(tmp_path: Path) -> Warehouse:
    w = Warehouse(tmp_path / "results")
    w.begin_sweep("s1", started_at=T0, harness_version="0.1.0", inventory="local.ini",
                  profile="quick", plan={})
    w.add_environment("s1", env("e1", "h1"))
    return w


def matrix(w: Warehouse, view: str = "matrix") -> dict[str, dict[str, Any]]:
    df = w.query(f"SELECT * FROM {view} ORDER BY model")
    assert df["model"].is_unique, df
    return {r["model"]: r for r in df.to_dict("records")}


def order_statistic_interval(ratios: Sequence[float]) -> tuple[float, float, float]:
    """(low, high, coverage) of the 95% interval of the median, by hand."""
    xs, n = sorted(ratios), len(ratios)
    j = max(1, math.floor((n - 1.96 * math.sqrt(n)) / 2))
    k = min(n, math.ceil(1 + (n + 1.96 * math.sqrt(n)) / 2))
    coverage = sum(math.comb(n, i) for i in range(j, k)) / 2**n
    return xs[j - 1], xs[k - 1], coverage


def isnull(x: object) -> bool:
    return x is None or x != x


# ------------------------------------------------------------------------ matrix


def test_speed_switch_moves_the_unpaired_speedup_not_the_paired_one(wh: Warehouse) -> None:
    # blocks 0-4 at full speed, 5-9 at 1.7x slower; threads is twice as fast as
    # sequential in every block. Sequential failed in blocks 0-1 (fast) and threads in
    # 8-9 (slow): sequential's good repeats lie mostly in slow blocks, threads' in fast
    # ones, so median(seq) / median(threads) = 3.4 / 1.0, while every shared block says 2.
    speed = [1.0] * 5 + [SLOW] * 5
    seq = [None, None] + [2.0 * s for s in speed[2:]]
    thr = [1.0 * s for s in speed[:8]] + [None, None]
    add_group(wh, group({"sequential": seq, "threads": thr}, group_id="g1"))
    m = matrix(wh)
    t = m["threads"]
    assert (t["speedup_method"], t["n_blocks"]) == ("paired", 6)
    assert t["speedup"] == pytest.approx(2.0)
    assert (t["speedup_ci_low"], t["speedup_ci_high"]) == (pytest.approx(2.0),
                                                           pytest.approx(2.0))
    assert t["speedup_ci_level"] == pytest.approx(1 - 2 / 2**6)  # 6 blocks: [min, max]
    assert t["seq_median_s"] == pytest.approx(2.0 * SLOW) and t["median_s"] == 1.0
    assert t["speedup_unpaired"] == pytest.approx(2.0 * SLOW / 1.0)
    assert t["speedup_unpaired_ci_low"] <= t["speedup_unpaired"]
    assert t["speedup_unpaired"] <= t["speedup_unpaired_ci_high"]
    assert t["status"] == "partial"  # two failed repeats, counted as before
    s = m["sequential"]
    assert (s["speedup"], s["speedup_ci_low"], s["speedup_ci_high"]) == (1.0, 1.0, 1.0)
    assert isnull(s["speedup_ci_level"])
    assert (s["speedup_method"], s["n_blocks"]) == ("paired", 8)
    ratios = wh.query("SELECT block, ratio, seq_cell_id, seq_wall_s, wall_s FROM block_ratios "
                      "WHERE model = 'threads' ORDER BY block")
    assert ratios["block"].tolist() == [2, 3, 4, 5, 6, 7]
    assert ratios["ratio"].tolist() == pytest.approx([2.0] * 6)
    assert set(ratios["seq_cell_id"]) == {"cpu_bound-sequential"}


@pytest.mark.parametrize("n", [5, 7, 20, 31])
def test_paired_interval_is_the_order_statistic_interval_of_the_block_ratios(
        wh: Warehouse, n: int) -> None:
    rng = random.Random(n)
    want = [1.5 + 0.1 * i for i in range(n)]
    rng.shuffle(want)
    thr = [0.5 * rng.choice([1.0, SLOW]) for _ in range(n)]
    seq = [r * t for r, t in zip(want, thr, strict=True)]
    add_group(wh, group({"sequential": seq, "threads": thr}, group_id="g1"))
    ratios = [s / t for s, t in zip(seq, thr, strict=True)]  # as DuckDB divides them
    low, high, coverage = order_statistic_interval(ratios)
    t = matrix(wh)["threads"]
    assert t["n_blocks"] == n
    assert t["speedup"] == pytest.approx(statistics.median(ratios))
    assert (t["speedup_ci_low"], t["speedup_ci_high"]) == (low, high)
    assert t["speedup_ci_level"] == pytest.approx(coverage)
    p = wh.query("SELECT * FROM paired_cells WHERE cell_id = 'cpu_bound-threads'")
    assert p["ratios"].iloc[0].tolist() == sorted(ratios)
    if n == 20:  # the ranks of test_views' n=20 case: x_(5), x_(16)
        assert (low, high) == (sorted(ratios)[4], sorted(ratios)[15])
        assert coverage == pytest.approx(1 - 2 * 6196 / 2**20)


def test_rows_without_blocks_keep_the_unpaired_speedup(wh: Warehouse) -> None:
    wh.add_cell("s1", "e1", "seq", unblocked("sequential", [2.0, 2.1, 1.9, 2.2, 2.0]))
    wh.add_cell("s1", "e1", "thr", unblocked("threads", [1.0, 1.1, 0.9, 1.2, 1.0]))
    # a blocked group without a sequential cell: no baseline, no speedup
    add_group(wh, group({"threads": [1.0, 1.0, 1.0]}, group_id="g2", workload="disk_io"))
    df = wh.query("SELECT * FROM matrix").set_index("cell_id")
    t = df.loc["thr"]
    assert (t["speedup_method"], t["n_blocks"]) == ("unpaired", 0)
    assert t["speedup"] == t["speedup_unpaired"] == 2.0
    assert (t["speedup_ci_low"], t["speedup_ci_high"]) == (1.9 / 1.2, 2.2 / 0.9)
    assert t["speedup_ci_level"] == t["speedup_unpaired_ci_level"] == pytest.approx(0.875)
    assert df.loc["seq", "speedup_method"] == "unpaired" and df.loc["seq", "speedup"] == 1.0
    d = df.loc["disk_io-threads"]
    assert isnull(d["speedup"]) and isnull(d["speedup_method"]) and d["n_blocks"] == 0
    assert d["reason"] == "no sequential baseline"
    assert len(wh.query("SELECT * FROM block_ratios")) == 0


def test_matrix_keeps_its_columns_and_adds_the_new_ones_after_them(wh: Warehouse) -> None:
    add_group(wh, group({"sequential": [2.0, 2.0], "threads": [1.0, 1.0]}, group_id="g1"))
    cols = wh.query("SELECT * FROM matrix").columns.tolist()
    assert cols[:cols.index("gil_enabled") + 1] == [
        "sweep_id", "env_id", "profile_id", "host", "python", "workload", "model", "workers",
        "cell_id", "params", "n", "median_s", "ci_low_s", "ci_high_s", "seq_n",
        "seq_median_s", "speedup", "speedup_ci_low", "speedup_ci_high", "speedup_ci_level",
        "status", "reason", "hostname", "cpu_model", "usable_cpus", "numa_nodes",
        "mem_total_bytes", "python_version", "implementation", "free_threaded",
        "gil_enabled"]
    assert cols[cols.index("gil_enabled") + 1:] == [
        "speedup_method", "n_blocks", "speedup_unpaired", "speedup_unpaired_ci_low",
        "speedup_unpaired_ci_high", "speedup_unpaired_ci_level"]


# ------------------------------------------------------------------------ profile_matrix


def test_profile_matrix_pools_the_block_ratios_of_its_envs(wh: Warehouse) -> None:
    wh.add_environment("s1", env("e2", "h2"))
    # e1: ratios 2.0, 2.2, 2.4 (threads 1 s); e2: 3.0, 3.2, 3.4 on a 4x slower host
    add_group(wh, group({"sequential": [2.0, 2.2, 2.4], "threads": [1.0, 1.0, 1.0]},
                        group_id="g1"))
    add_group(wh, group({"sequential": [12.0, 12.8, 13.6], "threads": [4.0, 4.0, 4.0]},
                        group_id="g1"), env_id="e2")
    t = matrix(wh, "profile_matrix")["threads"]
    assert (t["speedup_method"], t["n_blocks"], t["n_block_envs"]) == ("paired", 6, 2)
    pooled = [2.0, 2.2, 2.4, 3.0, 3.2, 3.4]
    assert t["speedup"] == pytest.approx(statistics.median(pooled))  # 2.7
    low, high, coverage = order_statistic_interval(pooled)
    assert (t["speedup_ci_low"], t["speedup_ci_high"]) == (pytest.approx(low),
                                                           pytest.approx(high))
    assert t["speedup_ci_level"] == pytest.approx(coverage)
    # unpaired: pooled medians 7.2 / 2.5, moved by the slow host's share of each cell
    assert t["speedup_unpaired"] == pytest.approx(7.2 / 2.5)
    s = matrix(wh, "profile_matrix")["sequential"]
    assert (s["speedup"], s["speedup_ci_low"], s["speedup_ci_high"]) == (1.0, 1.0, 1.0)
    # each env's own matrix row: its own blocks only
    per_env = wh.query("SELECT env_id, speedup FROM matrix WHERE model = 'threads' "
                       "ORDER BY env_id")
    assert per_env["speedup"].tolist() == pytest.approx([2.2, 3.2])


def test_profile_matrix_without_blocks_is_unpaired(wh: Warehouse) -> None:
    wh.add_environment("s1", env("e2", "h2"))
    for e, scale in (("e1", 1.0), ("e2", 2.0)):
        wh.add_cell("s1", e, "seq", unblocked("sequential", [4.0 * scale] * 3))
        wh.add_cell("s1", e, "thr", unblocked("threads", [1.0 * scale] * 3))
    t = matrix(wh, "profile_matrix")["threads"]
    assert (t["speedup_method"], t["n_blocks"], t["n_block_envs"]) == ("unpaired", 0, 0)
    assert t["speedup"] == t["speedup_unpaired"] == pytest.approx(4.0)


# ------------------------------------------------------------------------ dimensions


def test_dimension_cells_are_paired_against_their_points_sequential(wh: Warehouse) -> None:
    speed = [1.0, 1.0, SLOW, SLOW, 1.0, SLOW, 1.0]
    # task_duration: two points, each its own group; processes loses at 1 ms and wins
    # at 100 ms. Failures put sequential's good repeats in slow blocks again.
    for task_s, proc_ratio in ((0.001, 0.5), (0.1, 3.0)):
        params = {"task_s": task_s, "tasks": 4, "dimension": "task_duration"}
        seq = [4 * task_s * s for s in speed]
        proc = [4 * task_s * s / proc_ratio for s in speed]
        seq[0] = seq[1] = None
        proc[2] = proc[3] = None
        add_group(wh, group({"sequential": seq, "processes": proc}, group_id=f"td{task_s}",
                            params=params, headline=False), prefix=f"{task_s}-")
    # workers: one group, one sequential for every worker count
    params = {"task_s": 0.1, "tasks": 8, "dimension": "workers"}
    times: dict[str, list[float | None]] = {"sequential": [1.0 * s for s in speed]}
    for n_workers, ratio in ((1, 1.0), (2, 1.8), (4, 3.2)):
        times[f"processes@{n_workers}"] = [1.0 * s / ratio for s in speed]
    add_group(wh, group(times, group_id="workers", params=params, headline=False,
                        workers={"processes@1": 1, "processes@2": 2, "processes@4": 4}))

    d = wh.query("SELECT * FROM dimension_cells WHERE model = 'processes' "
                 "ORDER BY dimension, task_s, workers")
    td = d[d["dimension"] == "task_duration"]
    assert td["seq_cell_id"].tolist() == ["0.001-cpu_bound-sequential",
                                          "0.1-cpu_bound-sequential"]
    assert td["speedup_method"].tolist() == ["paired", "paired"]
    assert td["n_blocks"].tolist() == [3, 3]  # blocks 4, 5, 6
    assert td["speedup"].tolist() == pytest.approx([0.5, 3.0])
    # sequential's good repeats: 3 slow of 5; processes': 4 fast of 5
    assert td["speedup_unpaired"].tolist() == pytest.approx([0.5 * SLOW, 3.0 * SLOW])
    wk = d[d["dimension"] == "workers"]
    assert wk["workers"].tolist() == [1, 2, 4]
    assert set(wk["seq_cell_id"]) == {"cpu_bound-sequential"}
    assert wk["speedup"].tolist() == pytest.approx([1.0, 1.8, 3.2])
    assert wk["n_blocks"].tolist() == [7, 7, 7]
    scaling = wh.query("SELECT workers, speedup, knee_workers FROM scaling ORDER BY workers")
    assert scaling["speedup"].tolist() == pytest.approx([1.0, 1.8, 3.2])
    crossover = wh.query("SELECT crossover_task_s, crossover_low_s FROM crossover")
    assert crossover.iloc[0].tolist() == [0.1, 0.001]
    seq = wh.query("SELECT speedup, speedup_method FROM dimension_cells "
                   "WHERE model = 'sequential'")
    assert seq["speedup"].tolist() == [1.0, 1.0, 1.0]
    assert set(seq["speedup_method"]) == {"paired"}


# ------------------------------------------------------------------------ raw Parquet


def documented_query(root: Path) -> str:
    """The paste-able query of docs/views.md, pointed at ``root``."""
    blocks = re.findall(r"```sql\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    [sql] = [b for b in blocks if "paired speedups from the raw Parquet files" in b]
    return sql.replace("'results/", f"'{root}/")


def test_plain_duckdb_over_the_raw_parquet_gives_the_matrix_speedups(
        tmp_path: Path, wh: Warehouse) -> None:
    rng = random.Random(20261126)
    wh.add_environment("s1", env("e2", "h2"))
    wh.begin_sweep("s2", started_at=T0, harness_version="0.1.0", inventory="local.ini",
                   profile="quick", plan={})
    wh.add_environment("s2", env("e1", "h1"))
    models = ["sequential", "threads", "processes", "asyncio"]
    for sweep, env_id in (("s1", "e1"), ("s1", "e2"), ("s2", "e1")):
        for workload in ("cpu_bound", "net_low_latency"):
            n = rng.randint(4, 11)  # odd and even block counts
            speed = [rng.choice([1.0, SLOW]) * rng.uniform(0.95, 1.05) for _ in range(n)]
            times = {m: [rng.uniform(0.5, 2.0) * s if rng.random() > 0.1 else None
                         for s in speed] for m in models}
            add_group(wh, group(times, group_id=f"{workload}-h", workload=workload),
                      sweep=sweep, env_id=env_id)
        params = {"task_s": 0.01, "tasks": 4, "dimension": "task_duration"}
        speed = [rng.choice([1.0, SLOW]) for _ in range(6)]
        times = {m: [rng.uniform(0.5, 2.0) * s for s in speed] for m in models[:3]}
        add_group(wh, group(times, group_id="td", params=params, headline=False),
                  sweep=sweep, env_id=env_id, prefix="td-")

    con = duckdb.connect()
    try:
        raw = con.sql(documented_query(tmp_path / "results")).df()
    finally:
        con.close()
    assert len(raw) == 3 * (2 * 4 + 3)  # every cell had at least one shared block
    views = wh.query(
        "SELECT sweep_id, env_id, cell_id, speedup, n_blocks, speedup_method FROM matrix "
        "UNION ALL SELECT sweep_id, env_id, cell_id, speedup, n_blocks, speedup_method "
        "FROM dimension_cells")
    assert set(views["speedup_method"]) == {"paired"}
    key = ["sweep_id", "env_id", "cell_id"]
    joined = raw.merge(views, on=key, how="outer", suffixes=("_raw", "_view"),
                       indicator=True)
    assert (joined["_merge"] == "both").all(), joined[joined["_merge"] != "both"]
    assert (joined["n_blocks_raw"] == joined["n_blocks_view"]).all()
    assert joined["speedup_view"].tolist() == pytest.approx(joined["speedup_raw"].tolist(),
                                                            rel=1e-12)
