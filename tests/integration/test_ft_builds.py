"""A standard and a free-threaded build of one version on one host (3.13 and 3.13t, as
scripts/test builds them): a real sweep of both, then the views that separate the
free-threaded build's single-thread cost (ft_overhead) from its parallel gain
(ft_parallel_gain: threads by workers on both builds, PYTHON_GIL=0/1), and the report's
section that shows them side by side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

STANDARD = Path("/var/cache/harness/cpython-3.13/bin/python3.13")
FREE_THREADED = Path("/var/cache/harness/cpython-3.13t/bin/python3.13t")

pytestmark = pytest.mark.slow


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=900, cwd=cwd)


def test_two_builds_of_one_version_side_by_side(tmp_path: Path) -> None:
    for path in (STANDARD, FREE_THREADED):
        if not path.exists():
            pytest.skip(f"{path} is not built here (scripts/test builds it)")
    inventory = tmp_path / "both.ini"
    inventory.write_text(f'localhost ansible_connection=local '
                         f'harness_pythons="{STANDARD} {FREE_THREADED}"\n')
    proc = harness("sweep", "-i", str(inventory), "--profile", "quick", "-w", "cpu_bound",
                   "-m", "threads", "--dimension", "gil", "--results", "R", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    proc = harness("sql", "SELECT * FROM ft_parallel_gain ORDER BY workers", "--results", "R",
                   "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout)
    assert rows and {r["std_python"] for r in rows} == {str(STANDARD)}
    assert {r["ft_python"] for r in rows} == {str(FREE_THREADED)}
    both = [r for r in rows if r["std_speedup"] is not None and r["ft_speedup"] is not None]
    assert both, rows  # the headline threads cell on both builds, at one worker count
    gil = [r for r in rows if r["gil_off_speedup"] is not None
           and r["gil_on_speedup"] is not None]
    assert gil, rows  # the gil dimension ran on the free-threaded build
    for r in both + gil:  # every speedup inside its own interval
        for side in ("std", "ft") if r in both else ("gil_off", "gil_on"):
            low, high = r[f"{side}_ci_low"], r[f"{side}_ci_high"]
            assert low <= r[f"{side}_speedup"] <= high, (side, r)

    proc = harness("sql", "SELECT count(*) AS n FROM ft_overhead WHERE basis IS NOT NULL",
                   "--results", "R", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout)[0]["n"] >= 1, proc.stderr

    proc = harness("report", "--out", "r.md", "--results", "R", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (tmp_path / "r.md").read_text()
    assert "ft_parallel_gain" in text and "ft_overhead" in text
    assert f"{STANDARD} (3.13" in text  # the pair of builds compared, named
