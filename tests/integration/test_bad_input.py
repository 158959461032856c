"""The bad-input corpus (tests/data/bad_input/cases.toml): inventories Ansible rejects,
--limit matching nothing, unknown option values, invalid workload files, unusable or
newer results dirs, sweep ids that do not exist.

Each case: exit 2, one line `harness: error: ...` naming the file, line or value
(the case's ``expect``), no traceback, and nothing written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
CORPUS = DATA / "bad_input"
CASES: list[dict[str, Any]] = tomllib.loads((CORPUS / "cases.toml").read_text())["case"]
RESULTS_COMMANDS = ("sweep", "sql", "sweeps", "matrix", "compare")


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c["id"] for c in CASES}) == len(CASES)


def make_results(kind: str, tmp: Path) -> Path | None:
    root = tmp / "results"
    if kind == "empty":
        return root
    if kind == "none":
        return None
    shutil.copytree(DATA / "warehouse_v1", root)
    if kind == "newer":
        path = next((root / "measurements").rglob("*.parquet"))
        table = pq.read_table(path)
        col = table.schema.get_field_index("schema_version")
        table = table.set_column(col, "schema_version", pa.array([99] * len(table), pa.int32()))
        pq.write_table(table, path)
    return root


def snapshot(root: Path | None) -> dict[str, int]:
    if root is None or not root.exists():
        return {}
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_case(case: dict[str, Any], tmp_path: Path) -> None:
    results = make_results(case["results"], tmp_path)
    args = [a.replace("{data}", str(CORPUS)) for a in case["args"]]
    if args[0] in RESULTS_COMMANDS and "--results" not in args:
        assert results is not None
        args += ["--results", str(results)]
    before = snapshot(results)
    proc = subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=180, cwd=tmp_path,
                          env=dict(os.environ, COLUMNS="200"))
    assert proc.returncode == 2, (proc.stdout[-1000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("harness: error: "), proc.stderr
    assert case["expect"] in lines[0], lines[0]
    # at most the one error line and one hint line
    assert len(lines) <= 2 and all(ln.startswith("hint: ") for ln in lines[1:]), lines
    # nothing written: the results dir is as it was (and no parquet appeared anywhere)
    after = snapshot(results)
    created = {k for k in after if k not in before or after[k] != before[k]}
    assert not {k for k in created if k.endswith(".parquet")}, created
    assert not list(tmp_path.glob("results/**/*.parquet")) or case["results"] != "empty"
