"""Missing and too-old interpreters are that host's recorded failures, not bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.warehouse import Warehouse

PY27 = Path("/root/.pyenv/versions/2.7.18/bin/python2.7")
PY38 = Path("/root/.pyenv/versions/3.8.18/bin/python3.8")


@pytest.mark.slow
def test_too_old_and_missing_interpreters_are_recorded(tmp_path: Path) -> None:
    old = [p for p in (PY27, PY38) if p.exists()]
    if not old:
        pytest.skip("no Python 2.7 or 3.8 on this machine")
    missing = "/nonexistent/bin/python3.99"
    pythons = " ".join([*map(str, old), missing, sys.executable])
    inventory = tmp_path / "local.ini"
    inventory.write_text(f'localhost ansible_connection=local harness_pythons="{pythons}"\n')
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "sweep", "-i", str(inventory), "--results",
         str(results), "-w", "cpu_bound", "-m", "threads", "--profile", "quick"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    envs = Warehouse(results).query("SELECT python, status, error FROM environments")
    by_python = {r.python: r for r in envs.itertuples()}
    for path in old:
        row = by_python[str(path)]
        assert row.status == "failed"
        assert "too old" in row.error and "localhost" in row.error and str(path) in row.error
    assert by_python[missing].status == "failed"
    assert "not found" in by_python[missing].error
    assert by_python[sys.executable].status == "ok"
    cells = Warehouse(results).query("SELECT model, status FROM cells")
    assert sorted(cells.model) == ["sequential", "threads"]
    assert (cells.status == "ok").all()
