"""compare --by sweep, history and the changes table on fixed samples written through
the warehouse's own writer: one cell made 2x slower in the third sweep must be found."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness.errors import OptionError, WarehouseInputError
from harness.history import format_history, history
from harness.sweep_compare import compare_sweeps, format_sweeps, summary
from harness.warehouse import Warehouse

HARNESS = str(Path(sys.executable).parent / "harness")  # the installed command
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
REPEATS = 7


def cell(workload: str, model: str, seconds: float, spread: float = 0.01) -> list[dict]:
    """REPEATS timed repeats in blocks 0..6 of the workload's group (paired speedups)."""
    base = {"cell_key": f"{workload}-{model}", "workload": workload,
            "params": {"n": 1}, "model": model,
            "workers": 1 if model == "sequential" else 2, "headline": True,
            "block_group": workload}
    return [{**base, "repeat": i, "warmup": False, "ok": True, "status": "ok",
             "block": i, "block_pos": 0 if model == "sequential" else 1,
             "wall_s": seconds * (1 + spread * (i - REPEATS // 2))} for i in range(REPEATS)]


def env(sweep: str, host: str = "h1", profile: str = "big") -> dict:
    return {"host": host, "python": "python3.13", "env_id": f"{sweep}-{host}",
            "profile_id": profile, "cpu_model": "Test CPU", "usable_cpus": 2,
            "numa_nodes": 1, "python_version": "3.13.1", "free_threaded": False,
            "gil_enabled": True, "status": "ok"}


def add_sweep(w: Warehouse, sid: str, hours: int, times: dict[tuple[str, str], float],
              hosts: tuple[str, ...] = ("h1",)) -> None:
    w.begin_sweep(sid, started_at=T0 + timedelta(hours=hours), harness_version="0.1.0",
                  inventory="lab.ini", profile="quick", plan={})
    for host in hosts:
        e = env(sid, host)
        w.add_environment(sid, e)
        for (workload, model), seconds in times.items():
            w.add_cell(sid, e["env_id"], f"{host}-{workload}-{model}",
                       cell(workload, model, seconds))


BEFORE = {("cpu_bound", "sequential"): 1.0, ("cpu_bound", "threads"): 0.5,
          ("net_low_latency", "sequential"): 0.2, ("net_low_latency", "asyncio"): 0.05}
AFTER = {**BEFORE, ("cpu_bound", "threads"): 1.0,   # threads 2x slower: speedup 2 -> 1
         ("disk_io", "sequential"): 0.3}             # a cell s3 alone planned


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    w = Warehouse(tmp_path_factory.mktemp("sweeps") / "results")
    add_sweep(w, "s1", 0, BEFORE, hosts=("h1", "h2"))  # h2 only in s1
    add_sweep(w, "s2", 1, BEFORE)
    add_sweep(w, "s3", 2, AFTER)
    return w


def rows_by_model(answer, workload: str = "cpu_bound") -> dict[str, dict]:
    (c,) = answer.comparisons
    return {r["model"]: r for r in c.rows if r["workload"] == workload}


def test_compare_by_sweep_finds_the_slower_cell(wh: Warehouse) -> None:
    answer = compare_sweeps(wh, "s2", "s3")
    assert (answer.baseline, answer.sweep) == ("s2", "s3")
    thr = rows_by_model(answer)["threads"]
    assert thr["speed_ratio"] == pytest.approx(0.5)            # B takes twice as long
    assert thr["ratio_ci_high"] < 1 and thr["ratio_ci_level"] >= 0.95
    assert thr["time_change"] == "slower"
    assert thr["speedup_change"] == pytest.approx(0.5)         # paired 2.0 -> 1.0
    assert thr["a_speedup_method"] == "paired" and thr["speedup_change_kind"] == "lower"
    seq = rows_by_model(answer)["sequential"]
    assert seq["time_change"] == "unchanged" and seq["speedup_change_kind"] is None
    c = answer.comparisons[0]
    assert c.counts()["slower"] == 1 and c.counts()["unchanged"] == 3
    assert summary(c).startswith("time: 0 faster, 1 slower, 3 unchanged (4 of 4 at >= 95%")
    assert (c.only_baseline, c.only_sweep) == ((), ("disk_io/sequential/workers=1",))
    # h2 ran only in s1: said, not compared
    old = compare_sweeps(wh, "s1", "s3")
    assert [e.host for e in old.only_baseline] == ["h2"] and len(old.comparisons) == 1
    # the other way round it is faster
    back = rows_by_model(compare_sweeps(wh, "s3", "s2"))["threads"]
    assert back["time_change"] == "faster" and back["speed_ratio"] == pytest.approx(2.0)


def test_compare_by_sweep_nothing_changed(wh: Warehouse) -> None:
    c = compare_sweeps(wh, "s1", "s2").comparisons[0]
    assert c.counts("time_change") == {"unchanged": 4}
    assert "0 faster, 0 slower, 4 unchanged" in summary(c)


def test_compare_by_sweep_resolution_and_errors(wh: Warehouse) -> None:
    assert compare_sweeps(wh, "s1").sweep == "s3"  # default: the latest
    with pytest.raises(OptionError):
        compare_sweeps(wh, "latest")               # the latest against itself
    with pytest.raises(WarehouseInputError):
        compare_sweeps(wh, "nope")


def test_formats(wh: Warehouse) -> None:
    answer = compare_sweeps(wh, "s2", "s3")
    table = format_sweeps(answer, "table")
    assert "0.50x [" in table and "slower (" in table and "1 slower" in table
    assert "only in B (not compared" in table and "disk_io/sequential" in table
    assert "| workload | model | A time | B time |" in format_sweeps(answer, "markdown")
    data = json.loads(format_sweeps(answer, "json"))
    assert data["comparisons"][0]["counts"]["time"]["slower"] == 1
    with pytest.raises(OptionError):
        format_sweeps(answer, "csv")


def test_history_marks_the_step(wh: Warehouse) -> None:
    (h,) = history(wh, host="h1")
    assert h.sweeps == ("s1", "s2", "s3")
    series = {(s.workload, s.model): s for s in h.series}
    thr = series[("cpu_bound", "threads")]
    assert [(c.metric, c.sweep_before, c.sweep_after) for c in thr.changes] == [
        ("time", "s2", "s3"), ("speedup", "s2", "s3")]
    assert thr.changes[0].ratio == pytest.approx(2.0)
    assert all(not s.changes for k, s in series.items() if k != ("cpu_bound", "threads"))
    table = format_history([h], "table")
    assert "^- 1s 1.00x" in table and "between #2 and #3" in table
    assert history(wh, host="h2")[0].sweeps == ("s1",)
    assert history(wh, workload="cpu_bound", model="threads")[0].series[0].model == "threads"
    assert history(wh, host="nope") == []


def test_history_and_changes_views(wh: Warehouse) -> None:
    rows = wh.fetch("SELECT sweep_no, n_sweeps, median_s FROM history WHERE host = 'h1' "
                    "AND cell_key = 'cpu_bound-threads' ORDER BY sweep_no").rows
    assert [(r[0], r[1]) for r in rows] == [(1, 3), (2, 3), (3, 3)]
    changes = wh.fetch("SELECT host, cell_key, metric, sweep_before, sweep_after, ratio, "
                       "change, method FROM changes ORDER BY metric").rows
    assert [r[:5] + (round(r[5], 3), r[6]) for r in changes] == [
        ("h1", "cpu_bound-threads", "speedup", "s2", "s3", 0.5, "lower"),
        ("h1", "cpu_bound-threads", "time", "s2", "s3", 2.0, "slower")]
    assert "binary segmentation" in changes[0][7]


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HARNESS, *args], capture_output=True, text=True, timeout=120)


def test_cli(wh: Warehouse) -> None:
    root = str(wh.root)
    p = harness("compare", "--by", "sweep", "--baseline", "s2", "--sweep", "s3",
                "--results", root, "--format", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["comparisons"][0]["counts"]["time"] == {"slower": 1,
                                                                      "unchanged": 3}
    p = harness("history", "--results", root, "-w", "cpu_bound")
    assert p.returncode == 0, p.stderr
    assert "time 0.5s -> 1s (2.00x, slower) between #2 and #3" in p.stdout
    assert "CPU-bound" in p.stdout and "latency" not in p.stdout  # -w filters
    p = harness("sql", "SELECT count(*) AS n FROM changes", "--results", root, "-f", "csv")
    assert p.returncode == 0 and p.stdout.split() == ["n", "2"], p.stderr


@pytest.mark.parametrize("args", [["--by", "sweep"], ["--by", "sweep", "--baseline", "s3"],
                                  ["--by", "sweep", "--baseline", "s1", "-s", "s2", "-s", "s3"],
                                  ["--by", "sweep", "--baseline", "nope"]])
def test_cli_bad_input_exits_2(wh: Warehouse, args: list[str]) -> None:
    p = harness("compare", "--results", str(wh.root), *args)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("harness: error: ") and "Traceback" not in p.stderr


def test_report_over_time(wh: Warehouse, tmp_path: Path) -> None:
    from harness.report.write import write_report

    written = write_report(wh, tmp_path / "r.md", (), all_sweeps=True)
    text = (tmp_path / "r.md").read_text(encoding="utf-8")
    part = text[text.index("## Over time"):]
    part = part[:part.index("\n## ", 1)]
    assert "### h1 python3.13" in part and "h2" not in part  # h2: one sweep only
    assert "time 0.5s -> 1s (2.00x, slower) between #2 and #3" in part
    assert "| CPU-bound (compute) | threads ×2 | 0.5s 2.00x | 0.5s 2.00x | ^- 1s 1.00x |" in part
    svg = [p for p in written if p.name.startswith("history")]
    assert len(svg) == 1 and "<svg" in svg[0].read_text(encoding="utf-8")
    one = write_report(wh, tmp_path / "one.md", ("s3",))
    assert "## Over time" not in (tmp_path / "one.md").read_text(encoding="utf-8")
    assert one
