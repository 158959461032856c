"""The measured thresholds of the decision guide (analysis/report.sql, thresholds) and
their text in the report, on fixed dimension cells (real DuckDB, real Parquet files):
changing the data changes the threshold."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas
import pytest

from harness.plan.cells import digest
from harness.report.plots import NOT_MEASURED
from harness.report.sql import connect, query
from harness.report.text import threshold_rows
from harness.warehouse import Warehouse

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
REPEATS = 7
MIB = 1 << 20


def env() -> dict[str, Any]:
    return {"host": "h1", "python": "python3.13", "env_id": "e1", "profile_id": "p1",
            "cpu_model": "Test CPU", "usable_cpus": 4, "numa_nodes": 1,
            "python_version": "3.13.1", "free_threaded": False, "gil_enabled": True,
            "status": "ok"}


def rows(workload: str, model: str, workers: int, params: dict[str, Any], seconds: float,
         extra: dict[str, Any] | None = None,
         spread: float = 0.01) -> tuple[str, list[dict[str, Any]]]:
    """(cell_id, REPEATS timed rows around ``seconds``, ``spread`` (1%) apart)."""
    key = digest(workload, params, model, workers)
    return key, [{"cell_key": key, "workload": workload, "params": params, "model": model,
                  "workers": workers, "headline": False, "repeat": i, "warmup": False,
                  "ok": True, "status": "ok", "extra": extra or {},
                  "wall_s": seconds * (1 + spread * (i - REPEATS // 2))}
                 for i in range(REPEATS)]


def dimension_data(*, proc_at_10ms: float = 0.5, lose_at_1mib: bool = False,
                   proc_at_2: float = 1.5, async_at_16: float = 1.0,
                   fork_startup: float = 0.02,
                   scaling_spread: float = 0.01) -> list[tuple[str, list[dict[str, Any]]]]:
    """Cells of every dimension the thresholds read. The keywords move one threshold:
    processes' speedup at 10 ms tasks, whether processes lose to threads at 1 MiB,
    processes' speedup at 2 workers, asyncio's time (s) at concurrency 16 (threads: 1 s),
    pool start-up (s) with fork, the spread of processes' repeats at 4 workers."""
    out = []
    # crossover: sequential 4 tasks of task_s; processes 4x faster at 100 ms only
    for task_s, proc_speedup in ((0.001, 0.2), (0.01, proc_at_10ms), (0.1, 3.0)):
        p = {"task_s": task_s, "tasks": 4, "dimension": "task_duration"}
        seq = 4 * task_s
        out.append(rows("cpu_bound", "sequential", 1, p, seq))
        out.append(rows("cpu_bound", "processes", 4, p, seq / proc_speedup))
    # transfer: threads 10 ms per task everywhere; processes slower at 16 MiB
    for payload in (1024, MIB, 16 * MIB):
        p = {"payload_bytes": payload, "tasks": 4, "task_s": 0.01, "shm": False,
             "dimension": "payload"}
        out.append(rows("transfer", "sequential", 1, p, 0.04))
        out.append(rows("transfer", "threads", 4, p, 0.04))
        slow = payload == 16 * MIB or (lose_at_1mib and payload == MIB)
        out.append(rows("transfer", "processes", 4, p, 0.2 if slow else 0.04))
    # scaling: sequential 1 s; processes at 1, 2, 4 workers
    p = {"task_s": 0.1, "tasks": 8, "dimension": "workers"}
    out.append(rows("cpu_bound", "sequential", 1, p, 1.0))
    for workers, speedup in ((1, 1.0), (2, proc_at_2), (4, 2.0)):
        out.append(rows("cpu_bound", "processes", workers, p, 1.0 / speedup,
                        spread=scaling_spread if workers == 4 else 0.01))
    # spawn: start-up in extra.startup_s, 1 and 2 workers, fork and spawn
    for method, per_worker in (("fork", fork_startup), ("spawn", 0.08)):
        p = {"tasks": 1, "start_method": method, "dimension": f"spawn_{method}"}
        out.append(rows("empty", "sequential", 1, p, 0.001))
        for workers in (1, 2):
            out.append(rows("empty", "processes", workers, p, 0.1,
                            {"startup_s": per_worker * workers, "tasks_s": 0.001}))
    # io: threads 1 s at every concurrency; asyncio 2 s at 4, async_at_16 at 16, 0.5 at 64
    for conc, asyncio_s in ((4, 2.0), (16, async_at_16), (64, 0.5)):
        p = {"delay_s": 0.005, "tasks": 128, "dimension": "concurrency"}
        out.append(rows("net_low_latency", "sequential", 1, p, 3.0))
        out.append(rows("net_low_latency", "threads", conc, p, 1.0))
        out.append(rows("net_low_latency", "asyncio", conc, p, asyncio_s))
    return out


def make(root: Path, cells: list[tuple[str, list[dict[str, Any]]]]) -> Warehouse:
    w = Warehouse(root)
    w.begin_sweep("s1", started_at=T0, harness_version="0.1.0", inventory="lab.ini",
                  profile="quick", plan={})
    w.add_environment("s1", env())
    for cell_id, cell_rows in cells:
        w.add_cell("s1", "e1", cell_id, cell_rows)
    return w


def thresholds(w: Warehouse) -> pandas.DataFrame:
    con = connect(w)
    try:
        return query(con, "SELECT * FROM thresholds ORDER BY threshold, model, variant")
    finally:
        con.close()


def one(t: pandas.DataFrame, threshold: str, model: str, variant: str | None = None) -> dict:
    hit = t[(t["threshold"] == threshold) & (t["model"] == model)]
    if variant is not None:
        hit = hit[hit["variant"] == variant]
    assert len(hit) == 1, hit
    return hit.iloc[0].to_dict()


def test_thresholds_from_fixed_cells(tmp_path: Path) -> None:
    t = thresholds(make(tmp_path / "r", dimension_data()))
    cx = one(t, "cpu_crossover", "processes")
    assert (cx["status"], cx["value"], cx["low"]) == ("found", 0.1, 0.01)
    assert cx["speedup"] == pytest.approx(3.0)
    tc = one(t, "transfer_lose_from", "processes", "pickle")
    assert (tc["status"], tc["value"], tc["low"]) == ("found", 16 * MIB, MIB)
    kn = one(t, "scaling_knee", "processes")
    assert (kn["status"], kn["value"]) == ("found", 4)
    assert kn["speedup"] == pytest.approx(2.0)
    fork = one(t, "spawn_per_worker", "processes", "fork")
    assert fork["value"] == pytest.approx(0.02)
    assert one(t, "spawn_per_worker", "processes", "spawn")["value"] == pytest.approx(0.08)
    io = one(t, "asyncio_over_threads", "asyncio")
    assert (io["status"], io["value"], io["low"]) == ("found", 64, 16)
    assert set(t["profile_id"]) == {"p1"}


def test_changing_the_data_changes_the_thresholds(tmp_path: Path) -> None:
    t = thresholds(make(tmp_path / "r", dimension_data(
        proc_at_10ms=2.0, lose_at_1mib=True, proc_at_2=2.0, async_at_16=0.5,
        fork_startup=0.005)))
    cx = one(t, "cpu_crossover", "processes")
    assert (cx["value"], cx["low"]) == (0.01, 0.001)
    tc = one(t, "transfer_lose_from", "processes", "pickle")
    assert (tc["value"], tc["low"]) == (MIB, 1024)
    assert one(t, "scaling_knee", "processes")["value"] == 2
    assert one(t, "spawn_per_worker", "processes", "fork")["value"] == pytest.approx(0.005)
    io = one(t, "asyncio_over_threads", "asyncio")
    assert (io["value"], io["low"]) == (16, 4)


def test_never_and_below_range(tmp_path: Path) -> None:
    # processes never beat sequential (3x slower at 100 ms too): status never, no value
    cells = [c for c in dimension_data(proc_at_10ms=5.0)
             if not (c[1][0]["workload"] == "cpu_bound" and c[1][0]["model"] == "processes"
                     and c[1][0]["params"].get("task_s") == 0.1
                     and c[1][0]["params"]["dimension"] == "task_duration")]
    cells.append(rows("cpu_bound", "processes", 4,
                      {"task_s": 0.1, "tasks": 4, "dimension": "task_duration"}, 1.2))
    t = thresholds(make(tmp_path / "r", cells))
    cx = one(t, "cpu_crossover", "processes")
    assert cx["status"] == "never" and pandas.isna(cx["value"]) and cx["low"] == 0.1
    text = dict((r[0], r[1]) for r in threshold_rows(t))
    crossover_rule = next(k for k in text if k.startswith("CPU-bound"))
    assert "Run CPU tasks of up to 100 ms sequentially" in text[crossover_rule]


def test_no_knee_from_an_inconclusive_best_speedup(tmp_path: Path) -> None:
    # processes at 4 workers: median 2x, but repeats +-96%: the best speedup's interval
    # reaches below 1, so no knee is drawn from it (it was "knee at 4 workers")
    t = thresholds(make(tmp_path / "r", dimension_data(scaling_spread=0.32)))
    kn = one(t, "scaling_knee", "processes")
    assert kn["status"] == "inconclusive" and pandas.isna(kn["value"])
    assert kn["speedup"] == pytest.approx(2.0) and kn["speedup_ci_low"] <= 1
    text = {rule: (summary, details) for rule, summary, details, _ in threshold_rows(t)}
    summary, details = next(v for k, v in text.items() if k.startswith("Workers"))
    assert summary.startswith("More process workers did not help significantly here")
    assert "no knee drawn" in summary and "Use up to" not in summary
    assert details[0].startswith("processes: no knee drawn: the best speedup 2.00x [")


def test_report_text_uses_the_measured_numbers(tmp_path: Path) -> None:
    t = thresholds(make(tmp_path / "a", dimension_data()))
    a = {rule: (summary, details) for rule, summary, details, _ in threshold_rows(t)}
    summaries = " ".join(s for s, _ in a.values())
    assert "Run CPU tasks shorter than 100 ms sequentially: measured crossover for " \
           "processes is 100 ms [10 ms, 100 ms]" in summaries
    assert "loses to threads from 16 MiB [1 MiB, 16 MiB]" in summaries
    assert "knee of processes at 4 workers" in summaries
    assert "fork: 20 ms" in summaries and "spawn: 80 ms" in summaries
    assert "Use asyncio from 64 concurrent operations" in summaries
    t2 = thresholds(make(tmp_path / "b", dimension_data(proc_at_10ms=2.0, lose_at_1mib=True)))
    b = " ".join(s for _, s, _, _ in threshold_rows(t2))
    assert "shorter than 10 ms sequentially" in b and "from 1 MiB [1 KiB, 1 MiB]" in b


def test_no_dimension_cells_say_not_measured(tmp_path: Path) -> None:
    headline_only = [rows("cpu_bound", "sequential", 1, {"task_s": 0.1, "tasks": 8}, 1.0)]
    for _, r in headline_only:
        for x in r:
            x["headline"] = True
    t = thresholds(make(tmp_path / "r", headline_only))
    assert t.empty
    out = threshold_rows(t)
    assert len(out) == 5
    assert all(summary == NOT_MEASURED.capitalize() + "." and not details
               for _, summary, details, _ in out)
