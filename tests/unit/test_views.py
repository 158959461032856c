"""The SQL views on fixed samples with known answers (real DuckDB, real files)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.warehouse import Warehouse

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def env(env_id: str, host: str, profile_id: str = "p1") -> dict:
    return {"host": host, "python": "python3.13", "env_id": env_id, "profile_id": profile_id,
            "cpu_model": "Test CPU", "usable_cpus": 4, "numa_nodes": 1,
            "python_version": "3.13.1", "free_threaded": False, "gil_enabled": True,
            "status": "ok"}


def rows(model: str, xs: list[float], *, workload: str = "cpu_bound", headline: bool = True,
         warmups: list[float] = (), bad: list[tuple[str, str]] = ()) -> list[dict]:
    base = {"cell_key": f"{workload}-{model}", "workload": workload, "params": {"n": 1},
            "model": model, "workers": 1 if model == "sequential" else 4, "headline": headline}
    out = [{**base, "repeat": i, "warmup": True, "wall_s": x, "ok": True, "status": "ok"}
           for i, x in enumerate(warmups)]
    out += [{**base, "repeat": i, "warmup": False, "wall_s": x, "ok": True, "status": "ok"}
            for i, x in enumerate(xs)]
    out += [{**base, "repeat": len(xs) + i, "warmup": False, "wall_s": None, "ok": False,
             "status": status, "error": reason} for i, (status, reason) in enumerate(bad)]
    return out


@pytest.fixture()
def wh(tmp_path: Path) -> Warehouse:
    w = Warehouse(tmp_path / "results")
    w.begin_sweep("s1", started_at=T0, harness_version="0.1.0", inventory="local.ini",
                  profile="quick", plan={})
    w.add_environment("s1", env("e1", "h1"))
    return w


def one(w: Warehouse, sql: str, params: list[Any] | None = None) -> dict:
    df = w.query(sql, params)
    assert len(df) == 1, df
    return df.iloc[0].to_dict()


# ----------------------------------------------------------------------------- cells


def test_cell_statistics_known_answer_n5(wh: Warehouse) -> None:
    wh.add_cell("s1", "e1", "c", rows("sequential", [5.0, 1.0, 4.0, 2.0, 3.0],
                                      warmups=[100.0]))
    c = one(wh, "SELECT * FROM cells")
    assert (c["n"], c["n_failed"], c["status"]) == (5, 0, "ok")
    assert (c["median_s"], c["q1_s"], c["q3_s"], c["iqr_s"]) == (3.0, 2.0, 4.0, 2.0)
    assert c["mean_s"] == 3.0  # the 100 s warmup is excluded
    assert c["stdev_s"] == pytest.approx(math.sqrt(2.5))
    assert c["cv"] == pytest.approx(math.sqrt(2.5) / 3)
    # n=5: ranks clamp to 1 and 5, i.e. [min, max], which covers with 1 - 2/32
    assert (c["ci_low_s"], c["ci_high_s"]) == (1.0, 5.0)
    assert c["ci_level"] == pytest.approx(0.9375)
    assert (c["min_s"], c["max_s"]) == (1.0, 5.0)
    assert c["reason"] is None or c["reason"] != c["reason"]


def test_median_interval_ranks_known_answer_n20(wh: Warehouse) -> None:
    xs = [float(i) for i in range(1, 21)]
    random.Random(1).shuffle(xs)
    wh.add_cell("s1", "e1", "c", rows("sequential", xs))
    c = one(wh, "SELECT * FROM cells")
    # j = floor((20 - 1.96*sqrt(20))/2) = 5, k = ceil(1 + (20 + 1.96*sqrt(20))/2) = 16
    assert (c["ci_low_s"], c["ci_high_s"]) == (5.0, 16.0)
    # coverage P(5 <= B <= 15), B ~ Bin(20, 1/2) = 1 - 2 * (1+20+190+1140+4845) / 2^20
    assert c["ci_level"] == pytest.approx(1 - 2 * 6196 / 2**20)
    # 97.5%: z = 2.241 gives j = 4, k = 17
    assert (c["ci975_low_s"], c["ci975_high_s"]) == (4.0, 17.0)
    assert c["median_s"] == 10.5


def test_median_interval_n100(wh: Warehouse) -> None:
    wh.add_cell("s1", "e1", "c", rows("sequential", [float(i) for i in range(100, 0, -1)]))
    c = one(wh, "SELECT ci_low_s, ci_high_s, ci_level FROM cells")
    assert (c["ci_low_s"], c["ci_high_s"]) == (40.0, 61.0)  # j = 40, k = ceil(60.8) = 61
    assert 0.95 <= c["ci_level"] < 0.97


@pytest.mark.parametrize(("n", "level"), [(1, 0.0), (2, 0.5), (3, 0.75), (4, 0.875)])
def test_small_n_states_its_real_confidence(wh: Warehouse, n: int, level: float) -> None:
    wh.add_cell("s1", "e1", "c", rows("sequential", [float(i) for i in range(1, n + 1)]))
    c = one(wh, "SELECT * FROM cells")
    assert (c["ci_low_s"], c["ci_high_s"]) == (1.0, float(n))
    assert c["ci_level"] == pytest.approx(level)


def test_not_applicable_failed_and_partial_cells(wh: Warehouse) -> None:
    wh.add_cell("s1", "e1", "na", rows("interpreters", [],
                                       bad=[("not_applicable", "needs Python 3.14")]))
    wh.add_cell("s1", "e1", "f", rows("processes", [], bad=[("failed", "BrokenProcessPool")]))
    wh.add_cell("s1", "e1", "p", rows("threads", [1.0, 2.0, 3.0],
                                      bad=[("timeout", "timed out after 60 s")]))
    df = wh.query("SELECT * FROM cells ORDER BY cell_id").set_index("cell_id")
    assert df.loc["na", "status"] == "not_applicable"
    assert df.loc["na", "n"] == 0 and math.isnan(df.loc["na", "median_s"])
    assert df.loc["na", "reason"] == "needs Python 3.14"
    assert df.loc["f", "status"] == "failed" and df.loc["f", "reason"] == "BrokenProcessPool"
    assert df.loc["p", "status"] == "partial"
    assert (df.loc["p", "n"], df.loc["p", "n_failed"], df.loc["p", "median_s"]) == (3, 1, 2.0)
    assert df.loc["p", "reason"] == "timed out after 60 s"


# ----------------------------------------------------------------------------- matrix


def test_speedup_and_interval_known_answer(wh: Warehouse) -> None:
    seq = [4.0 * i for i in range(1, 21)]  # median 42, 97.5% interval [16, 68]
    par = [float(i) for i in range(1, 21)]  # median 10.5, 97.5% interval [4, 17]
    wh.add_cell("s1", "e1", "seq", rows("sequential", seq))
    wh.add_cell("s1", "e1", "par", rows("processes", par))
    m = one(wh, "SELECT * FROM matrix WHERE model = 'processes'")
    assert m["seq_median_s"] == 42.0 and m["median_s"] == 10.5
    assert m["speedup"] == pytest.approx(4.0)
    assert m["speedup_ci_low"] == pytest.approx(16 / 17)
    assert m["speedup_ci_high"] == pytest.approx(68 / 4)
    # each 97.5% interval [x_(4), x_(17)] of 20 covers with 1 - 2*(1+20+190+1140)/2^20;
    # Bonferroni: the ratio's interval covers with at least 2 * that - 1
    level = 1 - 2 * 1351 / 2**20
    assert m["speedup_ci_level"] == pytest.approx(2 * level - 1)
    assert (m["host"], m["profile_id"], m["python"], m["workers"]) == ("h1", "p1",
                                                                       "python3.13", 4)
    s = one(wh, "SELECT * FROM matrix WHERE model = 'sequential'")
    assert (s["speedup"], s["speedup_ci_low"], s["speedup_ci_high"]) == (1.0, 1.0, 1.0)
    assert s["speedup_ci_level"] is None or s["speedup_ci_level"] != s["speedup_ci_level"]


def test_speedup_confidence_with_few_repeats(wh: Warehouse) -> None:
    wh.add_cell("s1", "e1", "seq", rows("sequential", [2.0, 2.1, 1.9, 2.2, 2.0]))
    wh.add_cell("s1", "e1", "thr", rows("threads", [1.0, 1.1, 0.9, 1.2, 1.0]))
    m = one(wh, "SELECT * FROM matrix WHERE model = 'threads'")
    assert m["speedup_ci_level"] == pytest.approx(0.875)  # 2 * (1 - 2/32) - 1
    assert (m["speedup_ci_low"], m["speedup_ci_high"]) == (1.9 / 1.2, 2.2 / 0.9)


def test_matrix_interval_contains_its_estimate(wh: Warehouse) -> None:
    rng = random.Random(20261126)
    workloads = [f"w{n}" for n in range(1, 31)]
    for n, workload in enumerate(workloads, start=1):
        seq = [rng.lognormvariate(0.0, 0.3) for _ in range(n)]
        par = [rng.lognormvariate(-0.7, 0.5) for _ in range(max(1, 31 - n))]
        wh.add_cell("s1", "e1", f"{workload}-s", rows("sequential", seq, workload=workload))
        wh.add_cell("s1", "e1", f"{workload}-p", rows("threads", par, workload=workload))
    df = wh.query("SELECT * FROM matrix")
    assert len(df) == 60
    assert (df["speedup_ci_low"] <= df["speedup"]).all()
    assert (df["speedup"] <= df["speedup_ci_high"]).all()
    cells = wh.query("SELECT * FROM cells")
    assert (cells["ci_low_s"] <= cells["median_s"]).all()
    assert (cells["median_s"] <= cells["ci_high_s"]).all()
    assert (cells["ci975_low_s"] <= cells["ci_low_s"]).all()
    assert (cells["ci_high_s"] <= cells["ci975_high_s"]).all()


def test_matrix_only_headline_cells_and_missing_baseline(wh: Warehouse) -> None:
    wh.add_cell("s1", "e1", "seq", rows("sequential", [2.0]))
    wh.add_cell("s1", "e1", "thr", rows("threads", [1.0]))
    wh.add_cell("s1", "e1", "thr8", rows("threads", [0.5], headline=False))
    wh.add_cell("s1", "e1", "disk", rows("threads", [1.0], workload="disk_io"))
    wh.add_cell("s1", "e1", "net-seq", rows("sequential", [], workload="net_low_latency",
                                            bad=[("failed", "server died")]))
    wh.add_cell("s1", "e1", "net-thr", rows("threads", [1.0], workload="net_low_latency"))
    df = wh.query("SELECT * FROM matrix ORDER BY workload, model").set_index("cell_id")
    assert "thr8" not in df.index
    assert df.loc["thr", "speedup"] == 2.0
    assert math.isnan(df.loc["disk", "speedup"])
    assert df.loc["disk", "reason"] == "no sequential baseline"
    assert df.loc["disk", "status"] == "ok"
    assert math.isnan(df.loc["net-thr", "speedup"])
    assert df.loc["net-thr", "reason"] == "sequential baseline failed"
    assert df.loc["net-seq", "status"] == "failed"


def test_profile_matrix_pools_hosts_of_a_profile(wh: Warehouse) -> None:
    wh.add_environment("s1", env("e2", "h2"))
    wh.add_environment("s1", env("e3", "h3", profile_id="p2"))
    wh.add_cell("s1", "e1", "seq", rows("sequential", [4.0, 4.0, 4.0]))
    wh.add_cell("s1", "e2", "seq", rows("sequential", [8.0, 8.0, 8.0]))
    wh.add_cell("s1", "e1", "thr", rows("threads", [1.0, 1.0, 1.0]))
    wh.add_cell("s1", "e2", "thr", rows("threads", [2.0, 2.0, 2.0]))
    wh.add_cell("s1", "e3", "seq", rows("sequential", [1.0]))
    wh.add_cell("s1", "e3", "thr", rows("threads", [1.0]))
    df = wh.query("SELECT * FROM profile_matrix ORDER BY profile_id, model")
    p1 = df[df["profile_id"] == "p1"].set_index("model")
    assert p1.loc["threads", "n"] == 6 and p1.loc["threads", "n_envs"] == 2
    assert p1.loc["threads", "hosts"] == "h1, h2"
    assert p1.loc["threads", "median_s"] == 1.5 and p1.loc["sequential", "median_s"] == 6.0
    assert p1.loc["threads", "speedup"] == pytest.approx(4.0)
    # pooled 97.5% intervals for n=6 are [min, max]: [4/2, 8/1]
    assert p1.loc["threads", "speedup_ci_low"] == pytest.approx(2.0)
    assert p1.loc["threads", "speedup_ci_high"] == pytest.approx(8.0)
    assert p1.loc["threads", "cpu_model"] == "Test CPU"
    assert p1.loc["threads", "profile_hosts"] == "h1, h2"
    p2 = df[df["profile_id"] == "p2"]
    assert p2["hosts"].tolist() == ["h3", "h3"]
    assert (df["speedup_ci_low"] <= df["speedup"]).all()
    assert (df["speedup"] <= df["speedup_ci_high"]).all()


def test_views_separate_sweeps(wh: Warehouse) -> None:
    wh.begin_sweep("s2", started_at=T0, harness_version="0.1.0", inventory="i",
                   profile="quick", plan={})
    wh.add_environment("s2", env("e1", "h1"))
    wh.add_cell("s1", "e1", "seq", rows("sequential", [2.0]))
    wh.add_cell("s1", "e1", "thr", rows("threads", [1.0]))
    wh.add_cell("s2", "e1", "seq", rows("sequential", [3.0]))
    wh.add_cell("s2", "e1", "thr", rows("threads", [1.0]))
    df = wh.query("SELECT sweep_id, speedup FROM matrix WHERE model = 'threads' ORDER BY 1")
    assert df.values.tolist() == [["s1", 2.0], ["s2", 3.0]]


def test_cell_status_carried_on_every_row(wh: Warehouse) -> None:
    # as the sweep stores them: the agent's cell_done status on each row of the cell
    good = rows("threads", [1.0, 2.0])
    for r in good:
        r["status"] = "timeout"
    wh.add_cell("s1", "e1", "t", good)
    c = one(wh, "SELECT * FROM cells")
    assert (c["status"], c["n"], c["n_failed"], c["median_s"]) == ("partial", 2, 0, 1.5)
    assert c["reason"] == "cell ended timeout"


def test_compare_cells_across_profiles(wh: Warehouse) -> None:
    wh.add_environment("s1", env("e2", "h2", profile_id="p2"))
    wh.add_cell("s1", "e1", "thr", rows("threads", [float(i) for i in range(1, 21)]))
    wh.add_cell("s1", "e2", "thr", rows("threads", [4.0 * i for i in range(1, 21)]))
    wh.add_cell("s1", "e1", "seq", rows("sequential", [1.0, 2.0]))
    wh.add_cell("s1", "e2", "seq", rows("sequential", [1.5, 2.5]))
    df = wh.query("SELECT * FROM compare_cells WHERE a_profile_id = 'p1' ORDER BY model")
    assert df["b_profile_id"].tolist() == ["p2", "p2"]
    thr = df[df["model"] == "threads"].iloc[0]
    assert thr["time_ratio"] == pytest.approx(10.5 / 42)
    assert thr["time_ratio_ci_low"] == pytest.approx(4 / 68)
    assert thr["time_ratio_ci_high"] == pytest.approx(17 / 16)
    assert not thr["significant"]  # [0.06, 1.06] includes 1
    assert thr["time_ratio_ci_low"] <= thr["time_ratio"] <= thr["time_ratio_ci_high"]
    assert len(wh.query("SELECT * FROM compare_cells")) == 4  # ordered pairs


def test_compare_cells_significant_difference(wh: Warehouse) -> None:
    wh.begin_sweep("s2", started_at=T0, harness_version="0.1.0", inventory="i",
                   profile="quick", plan={})
    wh.add_environment("s2", env("e1", "h1"))
    wh.add_cell("s1", "e1", "thr", rows("threads", [1.0 + i / 100 for i in range(10)]))
    wh.add_cell("s2", "e1", "thr", rows("threads", [2.0 + i / 100 for i in range(10)]))
    c = one(wh, "SELECT * FROM compare_cells WHERE a_sweep_id = 's1'")
    assert c["b_sweep_id"] == "s2" and bool(c["significant"])
    assert c["time_ratio_ci_high"] < 1
