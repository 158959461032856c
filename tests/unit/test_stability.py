"""Host stability: the verdict on synthetic probe series, the same in Python
(harness/stability.py) and SQL (analysis/noise.sql, host_noise), and the built-in
control (control_checks) on fixed matrix data. Real DuckDB, real files."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas
import pytest

from harness import render
from harness.agent import speed
from harness.stability import (
    THRESHOLDS,
    assess,
    control_failed,
    host_stability,
    quantile,
    split_ratio,
    verdict_line,
)
from harness.warehouse import Warehouse

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MS = 0.001


def _series(n: int, seed: int, sd: float, slow_share: float = 0.0, slow: float = 1.7,
            outliers: int = 0) -> list[float]:
    """n probe times around 1 ms (gaussian, relative sd), a share of them ``slow`` times
    slower, and ``outliers`` of them 5x (a preempted probe)."""
    rng = random.Random(seed)
    xs = [MS * (slow if rng.random() < slow_share else 1.0) * (1 + rng.gauss(0, sd))
          for _ in range(n - outliers)]
    xs += [5 * MS * (1 + rng.random() / 10) for _ in range(outliers)]
    rng.shuffle(xs)
    return xs


# name -> (probes, steal % of every repeat, the expected verdict, a reason it must give)
SERIES: dict[str, tuple[list[float], float | None, str, str | None]] = {
    "steady": (_series(200, 1, 0.01), 0.2, "stable", None),
    "steady_preempted": (_series(200, 2, 0.01, outliers=6), None, "stable", None),
    "spread": (_series(200, 3, 0.05), 0.0, "noisy", "probe p90/p10"),
    "stolen": (_series(200, 4, 0.01), 3.0, "noisy", "steal 3.0% (>= 2%)"),
    "preempted": (_series(200, 5, 0.01, outliers=12), 0.0, "unstable", "outliers"),
    "two_speeds": (_series(200, 6, 0.01, slow_share=0.3), 0.0, "unstable", "two speeds"),
    "very_stolen": (_series(200, 7, 0.01), 12.5, "unstable", "steal 12.5% (>= 10%)"),
    "few": (_series(6, 8, 0.01), 0.0, "unknown", "6 speed probes (< 10)"),
    "none": ([], None, "unknown", "no speed probes"),
}


def _rows(probes: list[float], steal: float | None) -> list[dict]:
    base = {"cell_key": "k", "workload": "cpu_bound", "params": {"n": 1},
            "model": "sequential", "workers": 1, "headline": True, "ok": True,
            "status": "ok", "wall_s": 1.0}
    rows = [{**base, "repeat": i, "warmup": i == 0, "probe_s": x,
             "extra": {"steal_pct": steal, "loadavg_1m": 0.5}} for i, x in enumerate(probes)]
    # a row without a probe (as every row before schema 2) counts for nothing
    rows.append({**base, "repeat": len(probes), "warmup": False, "probe_s": None,
                 "extra": {}})
    return rows


@pytest.fixture(scope="module")
def noise_wh(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    w = Warehouse(tmp_path_factory.mktemp("noise") / "results")
    w.begin_sweep("s1", started_at=T0, harness_version="0", inventory="i", profile="quick",
                  plan={})
    for name, (probes, steal, _, _) in SERIES.items():
        w.add_environment("s1", {"host": name, "python": "python3", "env_id": name,
                                 "profile_id": "p1", "status": "ok"})
        if probes:
            w.add_cell("s1", name, "c1", _rows(probes, steal))
    return w


def _python_verdict(name: str):
    probes, steal, _, _ = SERIES[name]
    steals = [steal] * len(probes) if probes else []
    return assess(probes + [None], steals, [0.5] * len(probes))  # type: ignore[list-item]


def test_thresholds_are_the_sql_ones(noise_wh: Warehouse) -> None:
    sql = noise_wh.query("SELECT noise_thresholds() AS t").iloc[0]["t"]
    assert {k: float(v) for k, v in sql.items()} == {k: float(v) for k, v in THRESHOLDS.items()}


@pytest.mark.parametrize("name", list(SERIES))
def test_python_and_sql_give_the_same_verdict(noise_wh: Warehouse, name: str) -> None:
    _, _, expected, reason = SERIES[name]
    mine = _python_verdict(name)
    row = noise_wh.query("SELECT * FROM host_noise WHERE env_id = ?", [name]).iloc[0]
    assert mine.verdict == row["verdict"] == expected, (mine, row.to_dict())
    sql_reasons = None if pandas.isna(row["reasons"]) else row["reasons"]
    assert mine.reasons_text == sql_reasons
    if reason:
        assert reason in sql_reasons
    else:
        assert sql_reasons is None
    st = mine.stats
    assert row["n_probes"] == st.n_probes == len(SERIES[name][0])
    for col in ("probe_median_s", "p90_p10", "split_ratio", "inlier_cv", "outlier_pct",
                "inlier_min_dev", "inlier_max_dev", "steal_mean_pct", "probe_cv"):
        value = getattr(st, col)
        if value is None:
            assert pandas.isna(row[col]), col
        else:
            assert row[col] == pytest.approx(value, rel=1e-9), col
    assert bool(row["bimodal"]) == bool(st.bimodal) if st.bimodal is not None else True


def test_two_speeds_is_found_where_the_speeds_split() -> None:
    # 70 probes at 1 ms, 30 at 1.7 ms: the best split is between them, factor 1.7
    xs = sorted([1.0] * 70 + [1.7] * 30)
    assert split_ratio(xs, 10) == pytest.approx(1.7)
    # a slow mode too small for a tenth on each side to hold it mostly: not two speeds
    assert split_ratio(sorted([1.0] * 97 + [1.7] * 3), 10) == pytest.approx(1.0)
    assert split_ratio([1.0], 10) is None


def test_quantile_interpolates_like_quantile_cont(noise_wh: Warehouse) -> None:
    xs = [1.0, 2.0, 4.0, 8.0, 16.0]
    got = noise_wh.query("SELECT sorted_quantile([1.0, 2.0, 4.0, 8.0, 16.0], 0.9) AS q, "
                         "quantile_cont(x, 0.9) AS qc FROM unnest([1.0, 2.0, 4.0, 8.0, "
                         "16.0]) t(x)").iloc[0]
    assert quantile(xs, 0.9) == pytest.approx(got["q"]) == pytest.approx(got["qc"])
    assert quantile(xs, 0.9) == pytest.approx(12.8)


def test_verdict_line() -> None:
    assert verdict_line("h1", "python3.13", "stable", None) == "h1 python3.13: stable"
    assert (verdict_line("h1", "py", "noisy", "steal 3.0% (>= 2%)")
            == "h1 py: noisy (steal 3.0% (>= 2%))")


# ----------------------------------------------------------------------------- control


def _cell(model: str, xs: list[float]) -> list[dict]:
    return [{"cell_key": f"cpu_bound-{model}", "workload": "cpu_bound", "params": {"n": 1},
             "model": model, "workers": 1 if model == "sequential" else 4, "headline": True,
             "repeat": i, "warmup": False, "wall_s": x, "ok": True, "status": "ok",
             "probe_s": MS, "extra": {}} for i, x in enumerate(xs)]


def _env(env_id: str, host: str, *, free_threaded: bool = False,
         gil_enabled: bool = True) -> dict:
    return {"host": host, "python": "python3.13", "env_id": env_id,
            "profile_id": "p-ft" if free_threaded else "p1",
            "cpu_model": "Test CPU", "usable_cpus": 4, "numa_nodes": 1,
            "python_version": "3.13.1", "free_threaded": free_threaded,
            "gil_enabled": gil_enabled, "status": "ok"}


@pytest.fixture()
def control_wh(tmp_path: Path) -> Warehouse:
    w = Warehouse(tmp_path / "results")
    w.begin_sweep("s1", started_at=T0, harness_version="0", inventory="i", profile="quick",
                  plan={})
    seq = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0]
    # good: GIL build, threads and asyncio ~1.0x with tight intervals
    w.add_environment("s1", _env("good", "h-good"))
    w.add_cell("s1", "good", "seq", _cell("sequential", seq))
    w.add_cell("s1", "good", "thr", _cell("threads", [x * 1.02 for x in seq]))
    w.add_cell("s1", "good", "aio", _cell("asyncio", [x * 0.99 for x in seq]))
    # bad: GIL build, threads at ~0.7x (the host slowed down under it)
    w.add_environment("s1", _env("bad", "h-bad"))
    w.add_cell("s1", "bad", "seq", _cell("sequential", seq))
    w.add_cell("s1", "bad", "thr", _cell("threads", [x * 1.4 for x in seq]))
    w.add_cell("s1", "bad", "aio", _cell("asyncio", seq))
    # free-threaded (GIL off): threads really scale; no control
    w.add_environment("s1", _env("ft", "h-ft", free_threaded=True, gil_enabled=False))
    w.add_cell("s1", "ft", "seq", _cell("sequential", seq))
    w.add_cell("s1", "ft", "thr", _cell("threads", [x / 3.5 for x in seq]))
    return w


def test_control_checks_flag_a_gil_build_off_one(control_wh: Warehouse) -> None:
    df = control_wh.query("SELECT * FROM control_checks ORDER BY env_id").set_index("env_id")
    assert set(df.index) == {"bad", "good"}  # no control on the free-threaded build
    assert not df.loc["good", "control_failed"] and df.loc["good", "n_checked"] == 2
    assert df.loc["bad", "control_failed"] and df.loc["bad", "n_failed"] == 1
    assert df.loc["bad", "detail"].startswith("threads 0.71x [")
    assert df.loc["bad", "message"].startswith(
        "control failed on h-bad: its CPU-bound ratios are not to be trusted")
    m = control_wh.query("SELECT env_id, model, speedup_ci_low, speedup_ci_high FROM matrix "
                         "WHERE model IN ('threads', 'asyncio')")
    for r in m.to_dict("records"):
        expect = r["env_id"] == "bad" and r["model"] == "threads"
        if r["env_id"] != "ft":
            assert control_failed(r["speedup_ci_low"], r["speedup_ci_high"]) == expect


def test_matrix_text_prints_verdicts_and_the_failed_control(control_wh: Warehouse) -> None:
    frame = control_wh.query("SELECT * FROM profile_matrix")
    text = render.matrix_text(frame, host_stability(control_wh, ["s1"]))
    lines = text.splitlines()
    # 21 probes each, all alike
    assert "h-good python3.13: stable" in lines and "h-bad python3.13: stable" in lines
    assert "h-ft python3.13: stable" in lines  # under its own profile's matrix
    failed = [ln for ln in lines if ln.startswith("control failed on ")]
    assert len(failed) == 1
    assert failed[0].startswith("control failed on h-bad: its CPU-bound ratios are not to "
                                "be trusted (threads 0.71x")
    # without the stability frame, the matrix is as before
    assert "control failed" not in render.matrix_text(frame)


# ------------------------------------------------------------------- the agent's loop


def _fake_clock(step: float) -> Callable[[], float]:
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


def test_probe_series_is_bounded_by_time_and_count() -> None:
    # each clock read advances 1 ms: 1 s holds a few hundred probes, fewer than the cap
    by_time = speed.probe_series(1.0, max_probes=10_000, clock=_fake_clock(0.001),
                                 probe_once=lambda: 0.001)
    assert 100 < len(by_time) < 1000
    # the cap binds first: at most max_probes, spread over the time (spinning between)
    kept: list[int] = []
    by_count = speed.probe_series(1.0, max_probes=20, clock=_fake_clock(0.0001),
                                  probe_once=lambda: 0.001,
                                  keepalive=lambda: kept.append(1))
    assert len(by_count) == 20


@pytest.mark.parametrize("bad", ["0", "-1", "601", "nan", "x"])
def test_agent_refuses_bad_seconds(bad: str) -> None:
    with pytest.raises(ValueError):
        speed.parse_seconds(bad)
    assert speed.parse_seconds("600") == 600.0


def test_report_fleet_section_shows_stability(control_wh: Warehouse, tmp_path: Path) -> None:
    from harness.report.write import write_report

    (md, *_) = write_report(control_wh, tmp_path / "r.md", ("s1",))
    text = md.read_text()
    fleet = text[text.index("## Fleet"):text.index("## Sweeps")]
    assert "host stability |" in fleet
    assert "h-bad stable (control failed), h-good stable" in fleet
    assert "### Host stability" in fleet
    table = fleet[fleet.index("### Host stability"):]  # not the hosts and interpreters
    bad = next(ln for ln in table.splitlines() if ln.startswith("| s1 | h-bad |"))
    assert "| failed: threads 0.71x [" in bad
    assert "| 21 | 1 ms | 1.00 |" in bad
    ft = next(ln for ln in table.splitlines() if ln.startswith("| s1 | h-ft |"))
    assert ft.endswith("| — |")  # no control on a free-threaded build
    method = text[text.index("## Method"):]
    assert "Host stability (analysis/noise.sql" in method and "[0.85, 1.15]" in method
    (html,) = write_report(control_wh, tmp_path / "r.html", ("s1",))
    page = html.read_text()
    assert '<h3 id="stability">Host stability</h3>' in page
    assert "failed: threads 0.71x" in page
