"""Bad input: one line naming what is wrong, exit 2, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = [sys.executable, "-m", "harness"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sweep", "--profile", "huge"], "--profile 'huge'"),
        (["sweep", "--workload", "nope"], "--workload 'nope'"),
        (["sweep", "--model", "fibers"], "--model 'fibers'"),
        (["sweep", "--inventory", "missing.ini"], "missing.ini"),
        (["sweep", "--limit", "nomatch*"], "nomatch*"),
        (["sweep", "--resume", "20990101T000000Z-000000"], "20990101T000000Z-000000"),
        (["sql", "SELEKT 1"], "SQL"),
        (["sql", "SELECT 1", "--format", "xml"], "--format 'xml'"),
        (["workloads", "show", "nope"], "'nope'"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    results = tmp_path / "results"
    proc = run(*args, "--results", str(results), cwd=tmp_path) if args[0] in (
        "sweep", "sql") else run(*args, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    first = proc.stderr.strip().splitlines()[0]
    assert first.startswith("harness: error:")
    assert needle in first
    assert not results.exists() or not any(results.rglob("*.parquet"))


def test_bad_workload_file_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\ntitle = "Bad"\nimplementation = "cpu"\n'
                   'models = ["sequential"]\n[params]\ntasks = -3\n')
    proc = run("workloads", "validate", str(bad), cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(bad) in proc.stderr and "tasks" in proc.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["sweep", "--bogus"], "--bogus"), (["sql"], "query"), (["nosuch"], "nosuch"),
     (["sweep", "--forks", "x"], "--forks")],
)
def test_usage_errors_exit_2_without_traceback(tmp_path: Path, args: list[str],
                                               needle: str) -> None:
    """click's usage errors, through the installed entry point (recent typer bundles click
    privately: a plain ``import click`` is not there to catch them)."""
    harness = Path(sys.executable).with_name("harness")
    proc = subprocess.run([str(harness), *args], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr
    assert "Try 'harness" in proc.stderr and "--help' for help." in proc.stderr  # the hint
    assert proc.stdout == ""
