"""analysis/claims.sql and the decision guide (report.sql) on fixed samples with known
verdicts (real DuckDB, real Parquet files)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas
import pytest

from harness.report_sql import connect, query
from harness.warehouse import Warehouse

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
REPEATS = 7  # >= 7 repeats per cell: every speedup interval has >= 95% confidence


def env(env_id: str, host: str, profile_id: str, cpus: int = 8,
        free_threaded: bool = False) -> dict:
    return {"host": host, "python": "python3.13", "env_id": env_id, "profile_id": profile_id,
            "cpu_model": "Test CPU", "usable_cpus": cpus, "numa_nodes": 1,
            "python_version": "3.13.1", "free_threaded": free_threaded,
            "gil_enabled": not free_threaded, "status": "ok"}


def cell(model: str, seconds: float | None, *, workload: str = "cpu_bound",
         spread: float = 0.01, status: str = "ok", reason: str | None = None) -> list[dict]:
    """REPEATS timed rows around ``seconds`` (None: one not-run row with ``status``)."""
    base = {"cell_key": f"{workload}-{model}", "workload": workload, "params": {"n": 1},
            "model": model, "workers": 1 if model == "sequential" else 8, "headline": True}
    if seconds is None:
        return [{**base, "repeat": 0, "warmup": False, "wall_s": None, "ok": False,
                 "status": status, "error": reason}]
    return [{**base, "repeat": i, "warmup": False, "ok": True, "status": "ok",
             "wall_s": seconds * (1 + spread * (i - REPEATS // 2))} for i in range(REPEATS)]


def make(root: Path, cells: dict[str, list[dict]], cpus: int = 8) -> Warehouse:
    w = Warehouse(root)
    w.begin_sweep("s1", started_at=T0, harness_version="0.1.0", inventory="lab.ini",
                  profile="quick", plan={})
    w.add_environment("s1", env("e1", "h1", "p1", cpus=cpus))
    for cell_id, rows in cells.items():
        w.add_cell("s1", "e1", cell_id, rows)
    return w


def claims(w: Warehouse) -> pandas.DataFrame:
    con = connect(w)
    try:
        return query(con, "SELECT * FROM claims").set_index(["workload", "model"])
    finally:
        con.close()


BASE = {
    "seq": cell("sequential", 8.0),
    "proc": cell("processes", 1.07),          # 7.5x: inside 7-8x
    "thr": cell("threads", 4.0),              # 2.0x: outside 1.0x (GIL)
    "mp": cell("mp_pool", None, status="failed", reason="BrokenProcessPool"),
}


def test_confirmed_refuted_and_not_measurable(tmp_path: Path) -> None:
    c = claims(make(tmp_path / "r", BASE))
    assert c.loc[("cpu_bound", "processes"), "verdict"] == "confirmed"
    assert c.loc[("cpu_bound", "processes"), "speedup"] == pytest.approx(8.0 / 1.07)
    assert c.loc[("cpu_bound", "processes"), "ci_level"] >= 0.95
    assert c.loc[("cpu_bound", "threads"), "verdict"] == "refuted"
    assert c.loc[("cpu_bound", "threads"), "median_vs_claim"] == "above"
    # a cell that failed: not measurable, with its reason
    assert c.loc[("cpu_bound", "mp_pool"), "verdict"] == "not measurable"
    assert c.loc[("cpu_bound", "mp_pool"), "note"] == "BrokenProcessPool"
    # a cell the sweep never ran (asyncio) and a workload it never ran (disk)
    assert c.loc[("cpu_bound", "asyncio"), "verdict"] == "not measurable"
    assert c.loc[("cpu_bound", "asyncio"), "note"] == "not in these sweeps"
    assert c.loc[("disk_io", "threads"), "verdict"] == "not measurable"
    # every claim of the guide but the sequential baseline, once per profile
    assert len(c) == 16 and "sequential" not in c.index.get_level_values("model")


def test_changing_a_sample_changes_the_verdict(tmp_path: Path) -> None:
    cells = dict(BASE, thr=cell("threads", 8.1))   # threads now ~1.0x, as the guide says
    c = claims(make(tmp_path / "r", cells))
    assert c.loc[("cpu_bound", "threads"), "verdict"] == "confirmed"
    cells = dict(BASE, proc=cell("processes", 2.0))  # processes now 4x: refuted
    c = claims(make(tmp_path / "r2", cells))
    assert c.loc[("cpu_bound", "processes"), "verdict"] == "refuted"
    assert c.loc[("cpu_bound", "processes"), "median_vs_claim"] == "below"


def test_a_wide_interval_that_overlaps_the_claim_confirms(tmp_path: Path) -> None:
    # processes noisy: [min, max] spans 4x..16x around a 6x median -> overlaps 7-8x
    cells = dict(BASE, proc=cell("processes", 1.33, spread=0.25))
    c = claims(make(tmp_path / "r", cells))
    row = c.loc[("cpu_bound", "processes")]
    assert row["speedup"] < 7 and row["speedup_ci_high"] >= 7
    assert row["verdict"] == "confirmed" and row["median_vs_claim"] == "below"


def test_small_machine_refutation_says_why(tmp_path: Path) -> None:
    cells = dict(BASE, proc=cell("processes", 4.2))  # 1.9x on 2 CPUs
    c = claims(make(tmp_path / "r", cells, cpus=2))
    row = c.loc[("cpu_bound", "processes")]
    assert row["verdict"] == "refuted"
    assert row["note"] == "needs at least 7 CPUs; this profile has 2"


def test_claims_summary_names_the_measurements(tmp_path: Path) -> None:
    w = make(tmp_path / "r", BASE, cpus=2)
    con = connect(w)
    try:
        s = query(con, "SELECT * FROM claims_summary_of(['s1'])").set_index(["workload", "model"])
        none = query(con, "SELECT * FROM claims_summary_of(['other'])")
    finally:
        con.close()
    row = s.loc[("cpu_bound", "threads")]
    assert (row["n_confirmed"], row["n_refuted"], row["n_not_measurable"]) == (0, 1, 0)
    assert row["measured"].startswith("2.00x [") and "on 2 usable CPUs (refuted)" in row["measured"]
    assert none.empty


# ----------------------------------------------------------------------------- decisions


def decisions(w: Warehouse) -> pandas.DataFrame:
    con = connect(w)
    try:
        return query(con, "SELECT * FROM decisions").set_index("workload")
    finally:
        con.close()


def test_decision_significant_lead(tmp_path: Path) -> None:
    d = decisions(make(tmp_path / "r", BASE)).loc["cpu_bound"]
    assert d["recommendation"] == "processes" and bool(d["significant_lead"])
    assert d["next_model"] == "threads"
    assert d["next_slowdown"] == pytest.approx(4.0 / 1.07)
    assert d["guide_choice"] == "ProcessPool" and d["guide_claim"] == "7-8x"


def test_decision_any_of_when_not_significantly_different(tmp_path: Path) -> None:
    cells = dict(BASE, thr=cell("threads", 1.08))  # as fast as processes within noise
    d = decisions(make(tmp_path / "r", cells)).loc["cpu_bound"]
    assert not d["significant_lead"]
    assert d["recommendation"] == "any of processes, threads"
    assert list(d["choices"]) == ["processes", "threads"]
    assert d["next_model"] == "sequential"


def test_decision_sequential_when_nothing_helps(tmp_path: Path) -> None:
    cells = {"seq": cell("sequential", 1.0), "thr": cell("threads", 1.3),
             "proc": cell("processes", 1.6)}
    d = decisions(make(tmp_path / "r", cells)).loc["cpu_bound"]
    assert d["recommendation"] == "sequential" and bool(d["significant_lead"])
