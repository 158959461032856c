"""analysis/claims.sql and the decision guide (report.sql) on fixed samples with known
verdicts (real DuckDB, real Parquet files)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas
import pytest

from harness.report.sql import connect, query
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
         spread: float = 0.01, status: str = "ok", reason: str | None = None,
         workers: int | None = None, params: dict | None = None) -> list[dict]:
    """REPEATS timed rows around ``seconds`` (None: one not-run row with ``status``)."""
    base = {"cell_key": f"{workload}-{model}", "workload": workload,
            "params": params or {"n": 1}, "model": model,
            "workers": workers or (1 if model == "sequential" else 8), "headline": True}
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
    proc = c.loc[("cpu_bound", "processes")]
    # 7.48x [7.04-7.94]: inside 7-8x widened by 10%, [6.36, 8.8]
    assert proc["verdict"] == "confirmed"
    assert proc["speedup"] == pytest.approx(8.0 / 1.07)
    assert proc["ci_level"] >= 0.95
    assert (proc["accept_low"], proc["accept_high"]) == (pytest.approx(7 / 1.1),
                                                         pytest.approx(8 * 1.1))
    assert proc["cap"] == 8 and pandas.isna(proc["needed_rel_width"])
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


def test_a_wide_interval_is_inconclusive_not_confirmed(tmp_path: Path) -> None:
    # processes noisy: [min, max] spans 3.5x..10x around a 6x median. It overlaps 7-8x,
    # which once confirmed the claim; it is far too wide to confirm or refute it.
    cells = dict(BASE, proc=cell("processes", 1.33, spread=0.25))
    row = claims(make(tmp_path / "r", cells)).loc[("cpu_bound", "processes")]
    s = row["speedup"]
    assert s < 7 / 1.1 and row["speedup_ci_high"] >= 7 and row["speedup_ci_low"] < 7 / 1.1
    assert row["verdict"] == "inconclusive" and row["median_vs_claim"] == "below"
    # the median lies outside the widened range: a narrower interval would refute; one
    # centred on it must clear 7x, so at most 2 * (7 - s) / s wide
    assert row["needed_for"] == "refute"
    assert row["needed_rel_width"] == pytest.approx(2 * (7 - s) / s)
    assert row["rel_width"] == pytest.approx(
        (row["speedup_ci_high"] - row["speedup_ci_low"]) / s)
    assert row["note"] == (f"interval width {100 * row['rel_width']:.0f}% of the median; "
                           f"refuting needs at most {100 * 2 * (7 - s) / s:.0f}%")


def test_a_wide_interval_around_a_median_inside_the_claim(tmp_path: Path) -> None:
    # 7.48x, but +-30% repeats: the interval covers 4x..14x. Confirming needs an interval
    # that fits in [6.36, 8.8] around 7.48x.
    cells = dict(BASE, proc=cell("processes", 1.07, spread=0.1))
    row = claims(make(tmp_path / "r", cells)).loc[("cpu_bound", "processes")]
    s = row["speedup"]
    assert row["verdict"] == "inconclusive" and row["median_vs_claim"] == "within"
    assert row["needed_for"] == "confirm"
    assert row["needed_rel_width"] == pytest.approx(2 * min(s - 7 / 1.1, 8.8 - s) / s)
    assert "confirming needs at most 30%" in row["note"]


def test_the_tolerance_band_confirms_and_outside_the_range_refutes(tmp_path: Path) -> None:
    # 6.6x [6.52-6.68]: below the literal 7-8x but within 10% of it -> confirmed, said so
    cells = dict(BASE, proc=cell("processes", 8.0 / 6.6, spread=0.002))
    row = claims(make(tmp_path / "r", cells)).loc[("cpu_bound", "processes")]
    assert row["speedup_ci_high"] < 7 and row["speedup_ci_low"] > 7 / 1.1
    assert row["verdict"] == "confirmed"
    assert row["note"] == "within the 10% tolerance, not the literal range"
    # 5.5x [5.43-5.57]: wholly below 7x -> refuted
    cells = dict(BASE, proc=cell("processes", 8.0 / 5.5, spread=0.002))
    row = claims(make(tmp_path / "r2", cells)).loc[("cpu_bound", "processes")]
    assert row["verdict"] == "refuted" and pandas.isna(row["note"])
    # 6.3x with a narrow interval straddling 6.36 (inside [claim_low/1.1, ...] only in
    # part) and wholly below 7x: refuted, not confirmed
    cells = dict(BASE, proc=cell("processes", 8.0 / 6.3, spread=0.005))
    row = claims(make(tmp_path / "r3", cells)).loc[("cpu_bound", "processes")]
    assert row["speedup_ci_low"] < 7 / 1.1 < row["speedup_ci_high"] < 7
    assert row["verdict"] == "refuted"


def test_small_machine_is_not_testable_and_says_why(tmp_path: Path) -> None:
    # 1.9x on 2 CPUs: was "refuted"; 2 CPUs cannot reach 7x, so the claim is not tested
    cells = dict(BASE, proc=cell("processes", 4.2))
    row = claims(make(tmp_path / "r", cells, cpus=2)).loc[("cpu_bound", "processes")]
    assert row["verdict"] == "not testable here" and row["cap"] == 2
    assert row["note"] == ("cap 2x = min(8 workers, 2 usable CPUs) < 7-8x; "
                           "needs >= 7 usable CPUs (this profile has 2)")


NET = {"delay_s": 0.1, "tasks": 16}


def net_cells(**models: tuple[float, int, dict]) -> dict[str, list[dict]]:
    """A sequential baseline of 1.6 s (16 tasks of 100 ms) and each model's
    (seconds, workers, params) on net_high_latency."""
    out = {"seq": cell("sequential", 1.6, workload="net_high_latency", params=NET,
                       spread=0.002)}
    for model, (seconds, workers, params) in models.items():
        out[model] = cell(model, seconds, workload="net_high_latency", workers=workers,
                          params=params, spread=0.002)
    return out


def test_network_caps_from_workers_and_tasks(tmp_path: Path) -> None:
    cells = net_cells(processes=(1.6 / 1.8, 2, NET),       # 1.8x with 2 workers
                      threads=(1.6 / 12, 16, NET),         # 12x with 16 workers, 16 tasks
                      asyncio=(1.6 / 13.6, 16, NET),       # 13.6x with 16 tasks
                      mp_pool=(1.6 / 1.9, 2, {**NET, "tasks": 64}))
    c = claims(make(tmp_path / "r", cells))
    proc = c.loc[("net_high_latency", "processes")]
    assert proc["verdict"] == "not testable here" and proc["cap"] == 2
    assert proc["note"] == "cap 2x = min(2 workers, 16 tasks) < 6-12x; needs >= 6 workers"
    # the cap counts the params of the cell: mp_pool's 64 tasks do not lift 2 workers
    mp = c.loc[("net_high_latency", "mp_pool")]
    assert mp["verdict"] == "not testable here" and mp["tasks"] == 64
    assert mp["note"].endswith("needs >= 6 workers")
    thr = c.loc[("net_high_latency", "threads")]
    assert thr["verdict"] == "confirmed" and thr["cap"] == 16 and pandas.isna(thr["note"])
    # asyncio with 16 tasks can reach 15-16x of 15-50x: testable (a refutation here
    # is real), with a note on what would test the whole range
    aio = c.loc[("net_high_latency", "asyncio")]
    assert aio["cap"] == 16 and aio["verdict"] == "refuted"
    assert aio["note"] == ("cap 16x = min(16 workers, 16 tasks): only up to 16x of the "
                           "claim is reachable; >= 50 workers, >= 50 tasks would test "
                           "all of it")


def test_too_few_tasks_is_not_testable(tmp_path: Path) -> None:
    few = {**NET, "tasks": 8}
    cells = net_cells(asyncio=(0.8 / 7.5, 8, few))
    cells["seq"] = cell("sequential", 0.8, workload="net_high_latency", params=few)
    row = claims(make(tmp_path / "r", cells)).loc[("net_high_latency", "asyncio")]
    assert row["verdict"] == "not testable here" and row["cap"] == 8
    assert row["note"] == ("cap 8x = min(8 workers, 8 tasks) < 15-50x; "
                           "needs >= 15 workers, >= 15 tasks")


def test_claims_summary_names_the_measurements(tmp_path: Path) -> None:
    cells = dict(BASE, proc=cell("processes", 4.2),            # not testable on 2 CPUs
                 aio=cell("asyncio", 8.0, spread=0.2))         # ~1.0x, wide: inconclusive
    w = make(tmp_path / "r", cells, cpus=2)
    con = connect(w)
    try:
        s = query(con, "SELECT * FROM claims_summary_of(['s1'])").set_index(["workload", "model"])
        none = query(con, "SELECT * FROM claims_summary_of(['other'])")
    finally:
        con.close()
    counts = ["n_confirmed", "n_refuted", "n_inconclusive", "n_not_testable",
              "n_not_measurable"]
    assert list(s.loc[("cpu_bound", "threads"), counts]) == [0, 1, 0, 0, 0]
    assert list(s.loc[("cpu_bound", "processes"), counts]) == [0, 0, 0, 1, 0]
    assert list(s.loc[("cpu_bound", "asyncio"), counts]) == [0, 0, 1, 0, 0]
    assert list(s.loc[("cpu_bound", "mp_pool"), counts]) == [0, 0, 0, 0, 1]
    row = s.loc[("cpu_bound", "threads")]
    assert row["measured"].startswith("2.00x [") and "on 2 usable CPUs (refuted)" in row["measured"]
    assert "(not testable here)" in s.loc[("cpu_bound", "processes"), "measured"]
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


# Per-block drift: the machine's speed in each of 9 blocks (cloud VMs change speed for
# seconds at a time). Every cell of a block is slowed alike.
DRIFT = [0.7, 1.3, 0.9, 1.1, 1.0, 0.8, 1.2, 0.95, 1.05]


def blocked(model: str, seconds: float, *, blocks: bool = True,
            noise: list[float] | None = None) -> list[dict]:
    """One timed row per block: ``seconds`` x the block's drift (x 1 + noise[b]); with
    ``blocks`` False the same wall times without block columns (data from before)."""
    base = {"cell_key": f"cpu_bound-{model}", "workload": "cpu_bound", "params": {"n": 1},
            "model": model, "workers": 1 if model == "sequential" else 8, "headline": True}
    out = []
    for b, f in enumerate(DRIFT):
        row = {**base, "repeat": b, "warmup": False, "ok": True, "status": "ok",
               "wall_s": seconds * f * (1 + (noise[b] if noise else 0.0))}
        if blocks:
            row.update(block=b, block_pos=0, block_group="g-cpu_bound")
        out.append(row)
    return out


def test_paired_blocks_separate_models_whose_intervals_overlap(tmp_path: Path) -> None:
    wiggle = [0.004 * (i % 3 - 1) for i in range(len(DRIFT))]
    cells = {"seq": blocked("sequential", 8.0), "proc": blocked("processes", 1.0),
             "thr": blocked("threads", 1.1, noise=wiggle)}
    w = make(tmp_path / "r", cells)
    con = connect(w)
    try:
        pairs = query(con, "SELECT * FROM decision_pairs").set_index("model")
        cellsq = query(con, "SELECT model, ci975_low_s, ci975_high_s FROM profile_cells"
                       ).set_index("model")
    finally:
        con.close()
    # unpaired, the two 97.5% median intervals overlap (each spans the drift) ...
    assert cellsq.loc["threads", "ci975_low_s"] < cellsq.loc["processes", "ci975_high_s"]
    # ... but in every block threads took 1.1x as long as processes
    thr = pairs.loc["threads"]
    assert (thr["method"], thr["n_blocks"], bool(thr["tied"])) == ("paired", 9, False)
    assert thr["ratio"] == pytest.approx(1.1, rel=0.01)
    assert 1.09 < thr["ratio_ci_low"] <= thr["ratio_ci_high"] < 1.11
    assert thr["pair_level"] == pytest.approx(1 - 2 / 2**9)  # [min, max] of 9
    d = decisions(w).loc["cpu_bound"]
    assert d["recommendation"] == "processes" and bool(d["significant_lead"])
    assert (d["comparison"], d["min_blocks"]) == ("paired", 9)
    assert d["next_model"] == "threads" and d["next_slowdown"] == pytest.approx(1.1, rel=0.01)


def test_paired_ratio_containing_one_ties(tmp_path: Path) -> None:
    # threads within +-5% of processes block by block, either side: no significant lead
    wobble = [0.05 * (-1) ** b for b in range(len(DRIFT))]
    cells = {"seq": blocked("sequential", 8.0), "proc": blocked("processes", 1.0),
             "thr": blocked("threads", 1.0, noise=wobble)}
    d = decisions(make(tmp_path / "r", cells)).loc["cpu_bound"]
    assert not d["significant_lead"] and d["comparison"] == "paired"
    assert set(d["choices"]) == {"processes", "threads"}
    assert d["next_model"] == "sequential"


def test_without_blocks_the_unpaired_rule_applies(tmp_path: Path) -> None:
    # the same wall times as above, recorded without blocks (before interleaving): the
    # pooled 97.5% intervals overlap, so threads and processes tie
    cells = {"seq": blocked("sequential", 8.0, blocks=False),
             "proc": blocked("processes", 1.0, blocks=False),
             "thr": blocked("threads", 1.1, blocks=False)}
    w = make(tmp_path / "r", cells)
    d = decisions(w).loc["cpu_bound"]
    assert d["recommendation"] == "any of processes, threads"
    assert d["comparison"] == "unpaired" and pandas.isna(d["min_blocks"])
    con = connect(w)
    try:
        pairs = query(con, "SELECT * FROM decision_pairs").set_index("model")
    finally:
        con.close()
    assert (pairs.loc["threads", "method"], pairs.loc["threads", "n_blocks"]) == ("unpaired", 0)


def test_claims_judge_the_paired_interval(tmp_path: Path) -> None:
    # processes 7.5x in every block while the machine's speed drifts +-30% between blocks:
    # the unpaired interval (two medians' intervals, each spanning the drift) would be
    # inconclusive; the paired one is the median of the block ratios, and confirms 7-8x
    cells = {"seq": blocked("sequential", 8.0), "proc": blocked("processes", 8.0 / 7.5)}
    row = claims(make(tmp_path / "r", cells)).loc[("cpu_bound", "processes")]
    assert (row["speedup_method"], row["n_blocks"]) == ("paired", 9)
    assert row["speedup"] == pytest.approx(7.5)
    assert row["verdict"] == "confirmed"
    unpaired = claims(make(tmp_path / "u", {
        "seq": blocked("sequential", 8.0, blocks=False),
        "proc": blocked("processes", 8.0 / 7.5, blocks=False)})).loc[("cpu_bound", "processes")]
    assert unpaired["speedup_method"] == "unpaired" and unpaired["verdict"] == "inconclusive"
