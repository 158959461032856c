"""`harness sweep` on this machine, end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from harness.warehouse import Warehouse

HARNESS = [sys.executable, "-m", "harness"]
GUIDE_ROWS = ("CPU-bound (compute)", "I/O-bound (network, low latency)",
              "I/O-bound (network, high latency)", "I/O-bound (disk)")


Proc = subprocess.CompletedProcess


def harness(*args: str, cwd: Path | None = None, timeout: float = 300) -> Proc:
    env = dict(os.environ, COLUMNS="250")
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env)


@pytest.fixture(scope="module")
def quick_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Proc]:
    results = tmp_path_factory.mktemp("results")
    proc = harness("sweep", "--profile", "quick", "--results", str(results), timeout=600)
    return results, proc


@pytest.mark.slow
def test_quick_sweep_prints_the_guides_matrix(quick_sweep) -> None:
    results, proc = quick_sweep
    assert proc.returncode == 0, proc.stderr[-2000:]
    for row in GUIDE_ROWS:
        assert row in proc.stdout
    for column in ("sequential", "threads", "processes", "mp_pool", "asyncio",
                   "asyncio_to_thread"):
        assert column in proc.stdout
    assert "Traceback" not in proc.stderr
    # progress lines go to stderr when it is not a terminal
    assert "cpu_bound/threads" in proc.stderr


@pytest.mark.slow
def test_quick_sweep_matrix_is_complete_and_honest(quick_sweep) -> None:
    results, proc = quick_sweep
    wh = Warehouse(results)
    matrix = wh.query("SELECT * FROM matrix")
    assert set(matrix.workload) == {"cpu_bound", "net_low_latency", "net_high_latency",
                                    "disk_io"}
    ok = matrix[matrix.status == "ok"]
    # every measured cell has an interval containing its point estimate
    assert (ok.speedup_ci_low <= ok.speedup).all() and (ok.speedup <= ok.speedup_ci_high).all()
    assert len(ok) >= 4 * 6
    # a model that cannot run here is recorded as not applicable, with its reason
    if sys.version_info < (3, 14):
        interp = matrix[matrix.model == "interpreters"]
        assert len(interp) == 4 and (interp.status == "not_applicable").all()
        assert interp.reason.str.contains("3.14").all()
    # a direction that cannot flake: 16+ concurrent 100 ms waits beat doing them one by one
    high = ok[(ok.workload == "net_high_latency") & (ok.model == "asyncio")]
    assert float(high.speedup.iloc[0]) > 2.0
    # the repeats of every ok cell are stored, warmups flagged
    counts = wh.query("SELECT cell_id, count(*) FILTER (WHERE NOT warmup) AS n, "
                      "count(*) FILTER (WHERE warmup) AS w FROM measurements "
                      "WHERE status = 'ok' GROUP BY cell_id")
    assert (counts.n >= 3).all() and (counts.w >= 1).all()
    sweeps = wh.query("SELECT status, finished_at FROM sweeps")
    assert list(sweeps.status) == ["complete"]


@pytest.mark.slow
def test_matrix_and_sql_answer_from_the_warehouse(quick_sweep) -> None:
    results, proc = quick_sweep
    again = harness("matrix", "--results", str(results))
    assert again.returncode == 0, again.stderr
    for row in GUIDE_ROWS:
        assert row in again.stdout
    sql = harness("sql", "SELECT workload, model, speedup FROM matrix ORDER BY 1,2",
                  "--results", str(results), "--format", "json")
    assert sql.returncode == 0, sql.stderr
    rows = json.loads(sql.stdout)
    assert {r["model"] for r in rows} >= {"sequential", "threads", "processes", "asyncio"}
    seq = [r for r in rows if r["model"] == "sequential"]
    assert all(r["speedup"] == pytest.approx(1.0) for r in seq)


@pytest.mark.slow
def test_files_are_read_without_harness(quick_sweep, tmp_path: Path) -> None:
    """DuckDB, pandas and pyarrow read results/ with nothing from this project imported."""
    results, _ = quick_sweep
    script = textwrap.dedent(f"""
        import sys
        import duckdb, pandas as pd, pyarrow.dataset as ds
        root = {str(results)!r}
        n = duckdb.sql("SELECT count(*) FROM read_parquet('" + root +
                       "/measurements/**/*.parquet', hive_partitioning=true)").fetchall()[0][0]
        frame = pd.read_parquet(root + "/measurements")
        table = ds.dataset(root + "/environments", format="parquet", partitioning="hive").to_table()
        sweeps = pd.read_parquet(root + "/sweeps")
        assert "harness" not in sys.modules
        print(n, len(frame), table.num_rows, len(sweeps), frame["sweep_id"].nunique())
    """)
    proc = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    n, frame_rows, envs, sweeps, sweep_ids = map(int, proc.stdout.split())
    assert n == frame_rows > 0
    assert envs == 1 and sweeps == 1 and sweep_ids == 1
    # and the DuckDB file holds the views, rebuilt when the sweep ended
    con = duckdb.connect(str(results / "warehouse.duckdb"), read_only=True)
    views = {r[0] for r in con.sql("SELECT view_name FROM duckdb_views() "
                                   "WHERE NOT internal").fetchall()}
    con.close()
    assert {"sweeps", "environments", "measurements", "cells", "matrix"} <= views


@pytest.mark.slow
def test_resume_runs_nothing_twice(quick_sweep) -> None:
    results, _ = quick_sweep
    wh = Warehouse(results)
    before = wh.query("SELECT count(*) AS n FROM measurements").n[0]
    proc = harness("sweep", "--profile", "quick", "--results", str(results),
                   "--resume", "latest")
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = Warehouse(results).query("SELECT count(*) AS n FROM measurements").n[0]
    assert after == before
    assert "resumed" in proc.stderr


@pytest.mark.slow
def test_a_second_sweep_reuses_the_cpu_calibration(tmp_path: Path) -> None:
    """Sweep 2 runs the loop sizes sweep 1 measured (same n: medians comparable);
    --recalibrate measures again."""
    results = tmp_path / "results"
    args = ("sweep", "--profile", "quick", "-w", "cpu_bound", "-m", "sequential",
            "--no-dimensions", "--results", str(results))
    query = ("SELECT DISTINCT m.sweep_id, m.params->>'calibration' AS calibration, "
             "(m.params->>'n')::BIGINT AS n, (m.params->>'cpu_rate')::DOUBLE AS rate "
             "FROM measurements m WHERE m.workload = 'cpu_bound' AND m.ok")
    runs = []
    for extra in ((), (), ("--recalibrate",)):
        proc = harness(*args, *extra)
        assert proc.returncode == 0, proc.stderr[-2000:]
        wh = Warehouse(results)
        sid = wh.latest_sweep_id()
        rows = wh.query(query + " AND m.sweep_id = ?", [sid])
        assert len(rows) == 1, rows  # one loop size within a sweep
        runs.append(rows.iloc[0])
    first, second, third = runs
    assert first.calibration == "measured" and second.calibration == "reused"
    assert second.n == first.n and second.rate == first.rate
    assert third.calibration == "measured"
    stored = json.loads(next((results / "calibration").glob("*.json")).read_text())
    assert stored["hints"]["cpu_rate"] == third.rate and stored["sweep_id"] == third.sweep_id


@pytest.mark.slow
def test_standard_spreads_each_cell_over_three_agent_runs(tmp_path: Path) -> None:
    """Each cell's repeats come from 3 agent processes (a warmup in each); the cell is
    stored once, with all of them, numbered 0..n-1."""
    results = tmp_path / "results"
    proc = harness("sweep", "--profile", "standard", "-w", "empty", "-m", "threads",
                   "--dimension", "overhead", "--results", str(results))
    assert proc.returncode == 0, proc.stderr[-2000:]
    wh = Warehouse(results)
    rows = wh.query("SELECT cell_id, repeat, warmup, (extra->>'run')::INT AS run, "
                    "(extra->>'calib_repeats')::INT AS calib, wall_s FROM measurements")
    assert rows.cell_id.nunique() == 2  # threads and its sequential baseline
    cells = wh.query("SELECT cell_id, n FROM cells")
    for cell_id, group in rows.groupby("cell_id"):
        assert sorted(group.repeat) == list(range(len(group)))
        assert set(group.run) == {1, 2, 3}
        assert sorted(group[group.warmup].run) == [1, 2, 3]  # a warmup per process
        timed = group[~group.warmup]  # dimension cells: 8 to 10 blocks (MIN_BLOCKS)
        assert 8 <= len(timed) <= 10
        assert timed[timed.run < 3].shape[0] == 6  # 3 + 3, then the last run goes on
        assert timed.calib.dropna().iloc[-1] == len(timed)
        assert int(cells[cells.cell_id == cell_id].n.iloc[0]) == len(timed)


def test_samples_of_unfinished_runs_are_kept_as_attempts(tmp_path: Path) -> None:
    """A host lost between the runs of a cell: what its first runs measured is stored
    as an attempt (not a result; --resume runs the cell again), nothing is dropped."""
    from harness.plan.cells import PROFILES
    from harness.sweep.context import Sweep
    from harness.sweep.options import SweepOptions

    class Quiet:
        def __getattr__(self, name: str):
            return lambda *args, **kwargs: None

    sweep = Sweep(SweepOptions(inventory=Path("inventories/local.ini").resolve(),
                               results=tmp_path / "r", profile="standard"), Quiet())
    sweep.warehouse.begin_sweep(sweep.sweep_id, started_at=sweep.started_at,
                                harness_version="t", inventory="i", profile="standard",
                                plan={})
    env = {"usable_cpus": 2, "python_version": "3.11.7"}
    host = sweep.hosts[0]
    recorder = sweep.prepare_env(host, "python3", env)
    assert recorder is not None and recorder.runs == PROFILES["standard"].runs == 3
    cell = recorder.cells[0]
    sample = {"type": "sample", "cell_id": cell.cell_id, "wall_s": 0.01, "cpu_user_s": 0.0,
              "cpu_sys_s": 0.0, "peak_rss_bytes": 1, "ok": True, "error": None,
              "params": {}, "extra": {}}
    recorder.begin_run(1)
    recorder.feed({"type": "cell_start", "cell_id": cell.cell_id})
    for i, warm in enumerate([True, False, False, False]):
        recorder.feed(dict(sample, repeat=i, warmup=warm))
    recorder.feed({"type": "cell_done", "cell_id": cell.cell_id, "status": "ok",
                   "reason": None, "params": {}})
    assert cell not in recorder.remaining() and recorder.has_stash  # not committed yet
    assert (recorder.eid, cell.cell_id) not in sweep.warehouse.done_cells(sweep.sweep_id)
    recorder.give_up("host lost")
    attempts = sweep.warehouse.query(
        "SELECT repeat, warmup, (extra->>'run')::INT AS run, status, ok, error FROM attempts "
        "WHERE cell_id = ?", [cell.cell_id])
    assert sorted(attempts.repeat) == [0, 1, 2, 3] and set(attempts.run) == {1}
    assert set(attempts.status) == {"failed"} and not recorder.has_stash
    # as any attempt: not ok, with the reason (the samples' times are kept)
    assert not attempts.ok.any() and set(attempts.error) == {"host lost"}
    assert (recorder.eid, cell.cell_id) not in sweep.warehouse.done_cells(sweep.sweep_id)
