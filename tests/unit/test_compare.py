"""harness compare on fixed samples: which pairs, the ratio, and significant vs not."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas
import pytest

from harness.compare import compare, format_comparisons
from harness.errors import OptionError, WarehouseInputError
from harness.warehouse import Warehouse

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
REPEATS = 7


def env(env_id: str, host: str, python: str, profile_id: str, cpus: int,
        free_threaded: bool = False, version: str = "3.13.1") -> dict:
    return {"host": host, "python": python, "env_id": env_id, "profile_id": profile_id,
            "cpu_model": "Test CPU", "usable_cpus": cpus, "numa_nodes": 1,
            "python_version": version, "free_threaded": free_threaded,
            "gil_enabled": not free_threaded, "status": "ok"}


def cell(model: str, seconds: float, *, workload: str = "net_low_latency",
         params: dict | None = None, spread: float = 0.01) -> list[dict]:
    base = {"cell_key": f"{workload}-{model}", "workload": workload,
            "params": params or {"delay_s": 0.005}, "model": model,
            "workers": 1 if model == "sequential" else 4, "headline": True}
    return [{**base, "repeat": i, "warmup": False, "ok": True, "status": "ok",
             "wall_s": seconds * (1 + spread * (i - REPEATS // 2))} for i in range(REPEATS)]


def add_env(w: Warehouse, sweep: str, e: dict, times: dict[str, float],
            cpu_n: int | None = None) -> None:
    w.add_environment(sweep, e)
    for model, seconds in times.items():
        w.add_cell(sweep, e["env_id"], f"net-{model}", cell(model, seconds))
    if cpu_n is not None:  # cpu_bound is calibrated per interpreter: params differ
        w.add_cell(sweep, e["env_id"], "cpu-seq",
                   cell("sequential", 1.0, workload="cpu_bound", params={"n": cpu_n}))
        w.add_cell(sweep, e["env_id"], "cpu-thr",
                   cell("threads", 1.0 if cpu_n == 100 else 0.5, workload="cpu_bound",
                        params={"n": cpu_n}))


@pytest.fixture()
def wh(tmp_path: Path) -> Warehouse:
    w = Warehouse(tmp_path / "results")
    w.begin_sweep("s1", started_at=T0, harness_version="0.1.0", inventory="lab.ini",
                  profile="quick", plan={})
    # h2 (1 CPU) vs h1 (2 CPUs), same build: threads differs clearly, asyncio does not
    add_env(w, "s1", env("a", "h1", "python3.13", "big", 2),
            {"sequential": 1.0, "threads": 0.25, "asyncio": 0.100}, cpu_n=100)
    add_env(w, "s1", env("b", "h2", "python3.13", "small", 1),
            {"sequential": 1.0, "threads": 0.5, "asyncio": 0.101})
    # the free-threaded build on h1
    add_env(w, "s1", env("t", "h1", "python3.13t", "big-ft", 2, free_threaded=True),
            {"sequential": 1.0, "threads": 0.2, "asyncio": 0.1}, cpu_n=80)
    w.begin_sweep("s2", started_at=T0 + timedelta(hours=1), harness_version="0.1.0",
                  inventory="lab.ini", profile="quick", plan={})
    add_env(w, "s2", env("a2", "h1", "python3.13", "big", 2),
            {"sequential": 1.0, "threads": 0.125, "asyncio": 0.1})
    return w


def cells_of(c, model: str, workload: str = "net_low_latency") -> dict:
    df = c.cells
    return df[(df["model"] == model) & (df["workload"] == workload)].iloc[0].to_dict()


def test_by_host_pairs_same_build_and_orders_by_cpus(wh: Warehouse) -> None:
    found = compare(wh, "host", ["s1"])
    assert [(c.a.hosts, c.b.hosts) for c in found] == [("h2", "h1")]
    c = found[0]
    thr = cells_of(c, "threads")
    assert thr["basis"] == "time"
    assert thr["speed_ratio"] == pytest.approx(2.0)       # h1 twice as fast
    assert bool(thr["significant"]) and thr["ratio_ci_low"] > 1
    assert thr["ratio_ci_level"] >= 0.95
    asy = cells_of(c, "asyncio")
    assert asy["speed_ratio"] == pytest.approx(1.01)
    assert not asy["significant"] and asy["ratio_ci_low"] < 1 < asy["ratio_ci_high"]


def test_by_python_compares_builds_on_one_host(wh: Warehouse) -> None:
    found = compare(wh, "python", ["s1"])
    assert len(found) == 1
    c = found[0]
    assert (c.a.free_threaded, c.b.free_threaded) == (False, True)
    # cpu_bound params differ (calibrated n): the speedups are compared instead
    thr = cells_of(c, "threads", "cpu_bound")
    assert thr["basis"] == "speedup" and not thr["same_params"]
    assert thr["speed_ratio"] == pytest.approx(2.0)
    seq = cells_of(c, "sequential", "cpu_bound")
    assert seq["speed_ratio"] == pytest.approx(1.0)
    assert pandas.isna(seq["significant"])  # the baseline is 1 by definition: not tested


def test_by_profile_and_across_sweeps(wh: Warehouse) -> None:
    assert len(compare(wh, "profile", ["s1"])) == 3  # every two of three profiles
    across = compare(wh, "profile", ["s1", "s2"])
    assert [(c.a.sweep_id, c.b.sweep_id, c.a.unit_id) for c in across] == [("s1", "s2", "big")]
    thr = cells_of(across[0], "threads")
    assert thr["speed_ratio"] == pytest.approx(2.0) and bool(thr["significant"])
    hosts = compare(wh, "host", ["s1", "s2"])
    assert [(c.a.hosts, c.a.pythons, c.b.sweep_id) for c in hosts] == [("h1", "python3.13",
                                                                        "s2")]


def test_baseline_chooses_side_a(wh: Warehouse) -> None:
    found = compare(wh, "host", ["s1"], baseline="h1")
    assert [(c.a.hosts, c.b.hosts) for c in found] == [("h1", "h2")]
    assert cells_of(found[0], "threads")["speed_ratio"] == pytest.approx(0.5)


def test_formats(wh: Warehouse) -> None:
    found = compare(wh, "host", ["s1"])
    table = format_comparisons(found, "table")
    assert "2.00x [" in table and "B faster (" in table and "no (" in table
    md = format_comparisons(found, "markdown")
    assert "| workload | model | A speedup | B speedup | B/A speed |" in md
    data = json.loads(format_comparisons(found, "json"))
    assert data["comparisons"][0]["a"]["hosts"] == "h2" and "method" in data
    with pytest.raises(OptionError):
        format_comparisons(found, "csv")


def test_bad_input(wh: Warehouse) -> None:
    with pytest.raises(OptionError):
        compare(wh, "rack", ["s1"])
    with pytest.raises(WarehouseInputError):
        compare(wh, "host", ["nope"])


@pytest.mark.parametrize("args", [["--by", "rack"], ["--sweep", "nope"],
                                  ["--format", "csv"]])
def test_cli_bad_input_exits_2_with_one_line(wh: Warehouse, args: list[str]) -> None:
    p = subprocess.run([sys.executable, "-m", "harness", "compare", "--results", str(wh.root),
                        *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("harness: error: ") and "Traceback" not in p.stderr


def test_cli_compare_json(wh: Warehouse) -> None:
    p = subprocess.run([sys.executable, "-m", "harness", "compare", "--by", "python",
                        "--sweep", "s1", "--results", str(wh.root), "--format", "json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["comparisons"][0]["b"]["free_threaded"] is True
