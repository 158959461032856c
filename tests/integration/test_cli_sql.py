"""`harness sql` as a user runs it: formats, the table format's row cap, and a start that
imports neither pandas, pyarrow nor rich."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "warehouse_v1"
QUERY = "SELECT sweep_id, cell_id, repeat, wall_s FROM measurements ORDER BY cell_id, repeat"


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    shutil.copytree(DATA, root)
    return root


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=120)


def test_table_format_caps_rows_and_says_how_to_get_all(results: Path) -> None:
    p = harness("sql", QUERY, "--results", str(results), "--max-rows", "3")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0].split() == ["sweep_id", "cell_id", "repeat", "wall_s"]
    assert len(lines) == 2 + 3 + 1
    assert lines[-1].startswith("(8 rows, the first 3 shown; --max-rows 0 shows all")
    every = harness("sql", QUERY, "--results", str(results), "--max-rows", "0")
    assert every.returncode == 0 and len(every.stdout.strip().splitlines()) == 2 + 8
    assert "rows, the first" not in every.stdout


@pytest.mark.parametrize("fmt", ["csv", "json", "markdown"])
def test_other_formats_print_every_row_whatever_the_cap(results: Path, fmt: str) -> None:
    p = harness("sql", QUERY, "--results", str(results), "--format", fmt, "--max-rows", "2")
    assert p.returncode == 0, p.stderr
    if fmt == "csv":
        got = list(csv.DictReader(io.StringIO(p.stdout)))
    elif fmt == "json":
        got = json.loads(p.stdout)
    else:
        got = p.stdout.strip().splitlines()[2:]
    assert len(got) == 8


def test_negative_max_rows_is_bad_input(results: Path) -> None:
    p = harness("sql", "SELECT 1", "--results", str(results), "--max-rows", "-1")
    assert p.returncode == 2 and p.stderr.startswith("harness: error: --max-rows -1")


SNIFF = """
import sys
from harness.cli import app
sys.argv = ["harness", *sys.argv[1:]]
try:
    app(standalone_mode=False)
except SystemExit:
    pass
print("IMPORTED", sorted(m for m in ("pandas", "pyarrow", "rich", "numpy", "matplotlib")
                         if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [
    ["sql", QUERY, "--format", "csv"],
    ["sql", QUERY],
    ["compare", "--by", "host"],
    ["compare", "--by", "host", "--format", "json"],
])
def test_queries_start_without_the_heavy_imports(results: Path, args: list[str]) -> None:
    """The answer is Python rows formatted as text: importing pandas, pyarrow (numpy) or
    rich would be most of the command's wait. (The first reader of new files reads their
    footers with pyarrow, once: see FileIndex.)"""
    assert harness("sql", "SELECT 1", "--results", str(results)).returncode == 0
    p = subprocess.run([sys.executable, "-c", SNIFF, *args, "--results", str(results)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip(), p.stderr
    assert p.stderr.strip().splitlines()[-1] == "IMPORTED []", p.stderr
