"""The first read after a sweep: the sweep that wrote the files leaves the file index and
the view caches up to date, so the next command rebuilds neither (tested by what is
stored, not by time); concurrent sweeps leave an index that is whole, and a stale one is
still caught up by readers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.warehouse import INDEX_NAME, TABLES, VIEW_CACHE_PREFIX
from harness.warehouse.index import stat_key, table_files

HARNESS = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "harness"


def harness(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HARNESS), *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, COLUMNS="200"))


def sweep(results: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([str(HARNESS), "sweep", "--profile", "quick", "-w", "empty",
                             "-m", "threads", "--dimension", "overhead", "--results",
                             str(results)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> None:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]


def stored_index(results: Path) -> dict[str, list]:
    data = json.loads((results / INDEX_NAME).read_text(encoding="utf-8"))
    return data["files"]


def missing_from_index(results: Path) -> list[str]:
    """The data files whose entry in the stored index is absent or of another version
    of the file (a reader would open their footers)."""
    files = stored_index(results)
    missing = []
    for table in TABLES:
        for rel, st in table_files(results / table):
            entry = files.get(f"{table}/{rel}")
            if entry is None or tuple(entry[:3]) != stat_key(st):
                missing.append(f"{table}/{rel}")
    return missing


def caches(results: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns
            for p in results.glob(f"{VIEW_CACHE_PREFIX}*.duckdb")}


def sweep_ids(results: Path) -> list[str]:
    return sorted(p.name.removeprefix("sweep_id=") for p in (results / "sweeps").iterdir()
                  if p.name.startswith("sweep_id="))


@pytest.mark.slow
def test_the_sweep_leaves_the_index_and_view_caches_for_the_next_reader(
        tmp_path: Path) -> None:
    results = tmp_path / "results"
    finish(sweep(results))
    (first,) = sweep_ids(results)
    finish(sweep(results))
    (second,) = set(sweep_ids(results)) - {first}
    assert missing_from_index(results) == []
    index_stat = (results / INDEX_NAME).stat()
    before = caches(results)
    assert before  # built by the sweep, not by a reader

    for sql in (f"SELECT count(*) AS n FROM cells WHERE sweep_id = '{second}'",
                "SELECT count(DISTINCT sweep_id) AS n FROM cells"):
        proc = harness("sql", sql, "--results", str(results), "--format", "csv")
        assert proc.returncode == 0, proc.stderr
        assert int(proc.stdout.split()[-1]) > 0  # the new sweep is seen
    proc = harness("compare", "--by", "host", "--results", str(results))
    assert proc.returncode == 0, proc.stderr

    # the readers found everything they need: nothing rewritten, nothing new
    after = (results / INDEX_NAME).stat()
    assert (after.st_ino, after.st_mtime_ns) == (index_stat.st_ino, index_stat.st_mtime_ns)
    assert caches(results) == before


@pytest.mark.slow
def test_concurrent_sweeps_leave_a_whole_index_and_a_stale_one_is_caught_up(
        tmp_path: Path) -> None:
    results = tmp_path / "results"
    finish(sweep(results))  # the warehouse exists before the two race
    procs = [sweep(results), sweep(results)]
    for p in procs:
        finish(p)
    ids = sweep_ids(results)
    assert len(ids) == 3
    stored_index(results)  # whole JSON, whichever sweep wrote it last

    # a stale index (an entry dropped, as by a writer that listed the files before
    # another sweep's compaction) is found out and fixed by the next reader
    files = stored_index(results)
    dropped = sorted(n for n in files if n.startswith("measurements/"))[0]
    del files[dropped]
    (results / INDEX_NAME).write_text(json.dumps({"format": 1, "files": files}))
    proc = harness("sql", "SELECT count(DISTINCT sweep_id) AS n FROM cells",
                   "--results", str(results), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "3"
    assert missing_from_index(results) == []
