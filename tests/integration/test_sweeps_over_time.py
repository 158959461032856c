"""Before and after on real sweeps: three quick sweeps of cpu_bound x threads on this
machine, then `harness compare --by sweep`, `harness history`, the views and the report,
all through the installed command as users run them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = str(Path(sys.executable).parent / "harness")  # the installed command

pytestmark = pytest.mark.slow


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HARNESS, *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("over_time")
    for _ in range(3):
        p = harness("sweep", "--profile", "quick", "-w", "cpu_bound", "-m", "threads",
                    "--results", str(work / "results"), cwd=work)
        assert p.returncode in (0, 1), p.stderr  # 1: a noisy machine's verdict, not a failure
    return work / "results"


def sweep_ids(results: Path) -> list[str]:
    p = harness("sql", "SELECT sweep_id FROM sweeps ORDER BY started_at", "--results",
                str(results), "-f", "json", cwd=results.parent)
    assert p.returncode == 0, p.stderr
    return [r["sweep_id"] for r in json.loads(p.stdout)]


def test_compare_by_sweep_on_real_sweeps(results: Path) -> None:
    first, _, last = sweep_ids(results)
    p = harness("compare", "--by", "sweep", "--baseline", first[:18], "--results",
                str(results), "-f", "json", cwd=results.parent)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert (data["baseline"], data["sweep"]) == (first, last)
    (env,) = data["comparisons"]
    models = sorted(c["model"] for c in env["cells"])
    assert models == ["sequential", "threads"]
    for c in env["cells"]:
        assert c["a_median_s"] > 0 and c["b_median_s"] > 0 and c["speed_ratio"] > 0
        assert c["ratio_ci_low"] <= c["speed_ratio"] <= c["ratio_ci_high"]
        assert c["time_change"] in ("faster", "slower", "unchanged")
    counts = env["counts"]["time"]
    assert sum(counts.values()) == 2
    table = harness("compare", "--by", "sweep", "--baseline", first, "--results",
                    str(results), cwd=results.parent)
    assert table.returncode == 0 and "time: " in table.stdout and "unchanged" in table.stdout


def test_history_views_and_report(results: Path) -> None:
    ids = sweep_ids(results)
    p = harness("history", "--results", str(results), "-f", "json", cwd=results.parent)
    assert p.returncode == 0, p.stderr
    (env,) = json.loads(p.stdout)["environments"]
    assert env["sweeps"] == ids
    assert all(len(c["points"]) == 3 for c in env["cells"])
    p = harness("sql", "SELECT count(*) AS n, count(DISTINCT sweep_id) AS s FROM history",
                "--results", str(results), "-f", "json", cwd=results.parent)
    assert p.returncode == 0 and json.loads(p.stdout) == [{"n": 6, "s": 3}], p.stderr
    p = harness("sql", "SELECT metric, ratio FROM changes", "--results", str(results),
                "-f", "json", cwd=results.parent)
    assert p.returncode == 0, p.stderr
    assert all(r["metric"] in ("time", "speedup") for r in json.loads(p.stdout))
    out = results.parent / "report.html"
    p = harness("report", "--all-sweeps", "--out", str(out), "--results", str(results),
                cwd=results.parent)
    assert p.returncode == 0, p.stderr
    html = out.read_text(encoding="utf-8")
    assert "Over time" in html and ids[0] in html
