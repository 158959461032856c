"""A damaged warehouse: a truncated or foreign Parquet file, a deleted partition, a file
index that does not match the files. Every command still answers (the bad file named in
one warning line, left out); ``harness check`` lists the problems (exit 1) and
``--repair`` moves the bad files to quarantine/ and rebuilds the index and views (exit 0).
The warehouse is made by a real quick sweep; the CLI is the installed command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from small_warehouse import two_sweeps  # noqa: E402

HARNESS = str(Path(sys.executable).parent / "harness")  # the installed command
READERS = [["sql", "SELECT count(*) AS n FROM measurements", "--format", "csv"],
           ["matrix"], ["sweeps"], ["compare"]]

pytestmark = pytest.mark.slow


def harness(*args: str, results: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HARNESS, *args, "--results", str(results)], capture_output=True,
                          text=True, timeout=300, cwd=results.parent)


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse of one real quick sweep (sequential and threads on cpu_bound)."""
    results = tmp_path_factory.mktemp("swept") / "results"
    proc = harness("sweep", "--profile", "quick", "-w", "cpu_bound", "-m", "threads",
                   "--parallel-same-machine", results=results)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results


@pytest.fixture
def results(swept: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "results"
    shutil.copytree(swept, copy)
    return copy


def only(pattern: str, results: Path) -> Path:
    (path,) = results.glob(pattern)
    return path


def assert_readers_warn_about(results: Path, rel: str) -> None:
    """Every reading command answers (exit 0), naming the bad file in a warning line."""
    for args in READERS:
        proc = harness(*args, results=results)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr
        warned = [line for line in proc.stderr.splitlines()
                  if line.startswith("harness: warning:")]
        assert any(rel in line and "left out" in line for line in warned), (args, proc.stderr)


def check_then_repair(results: Path, rel: str) -> None:
    """check: exit 1 naming ``rel``; check --repair: ``rel`` moved to quarantine, exit 0;
    check again: exit 0; the readers then answer without a warning."""
    found = harness("check", results=results)
    assert found.returncode == 1, (found.stdout, found.stderr)
    assert any(line.startswith(rel) for line in found.stdout.splitlines()), found.stdout
    assert "Traceback" not in found.stderr
    repaired = harness("check", "--repair", results=results)
    assert repaired.returncode == 0, (repaired.stdout, repaired.stderr)
    assert f"moved {rel} to quarantine/{rel}" in repaired.stdout, repaired.stdout
    assert (results / "quarantine" / rel).is_file()
    again = harness("check", results=results)
    assert again.returncode == 0, (again.stdout, again.stderr)
    for args in READERS:
        proc = harness(*args, results=results)
        assert proc.returncode == 0 and "warning" not in proc.stderr, (args, proc.stderr)


def test_a_truncated_file_is_left_out_then_quarantined_and_measured_again(
        results: Path) -> None:
    part = only("measurements/sweep_id=*/*.parquet", results)
    rel = str(part.relative_to(results))
    data = part.read_bytes()
    part.write_bytes(data[:len(data) // 2])
    assert_readers_warn_about(results, rel)
    check_then_repair(results, rel)
    assert not part.exists()
    # the cells moved aside are missing from their sweep: --resume measures them again
    resumed = harness("sweep", "--profile", "quick", "-w", "cpu_bound", "-m", "threads",
                      "--parallel-same-machine", "--resume", "latest", results=results)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    n = harness("sql", "SELECT count(DISTINCT cell_id) AS n FROM measurements",
                "--format", "csv", results=results)
    assert n.stdout.split() == ["n", "2"], n.stdout


def test_a_corrupt_data_page_under_a_sound_footer(results: Path) -> None:
    """DuckDB fails the whole query on it: sql and matrix read the files again, leave it
    out with a warning and answer; check finds it from its rows."""
    part = only("measurements/sweep_id=*/*.parquet", results)
    rel = str(part.relative_to(results))
    data = bytearray(part.read_bytes())
    data[200:len(data) // 2] = b"\x55" * (len(data) // 2 - 200)
    part.write_bytes(bytes(data))
    for args in (READERS[0], ["matrix"]):
        proc = harness(*args, results=results)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert any(rel in line and "left out" in line for line in proc.stderr.splitlines()
                   if line.startswith("harness: warning:")), (args, proc.stderr)
    user_error = harness("sql", "SELECT nope FROM measurements", results=results)
    assert user_error.returncode == 2 and "Binder Error" in user_error.stderr
    found = harness("check", results=results)
    assert any(line.startswith(f"{rel}: cannot read") for line in found.stdout.splitlines())
    check_then_repair(results, rel)


def test_a_foreign_parquet_file_is_left_out_then_quarantined(results: Path) -> None:
    env_dir = only("environments/sweep_id=*", results)
    foreign = env_dir / "env-foreign.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), foreign)
    rel = str(foreign.relative_to(results))
    assert_readers_warn_about(results, rel)
    found = harness("check", results=results)
    assert f"{rel}: not a harness environments file" in found.stdout
    check_then_repair(results, rel)


def test_a_deleted_partition_fails_no_command(results: Path) -> None:
    env_dir = only("environments/sweep_id=*", results)
    shutil.rmtree(env_dir)
    for args in READERS:
        proc = harness(*args, results=results)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr
    part = only("measurements/sweep_id=*/*.parquet", results)
    found = harness("check", results=results)
    assert found.returncode == 1
    assert "which its sweep does not have" in found.stdout
    check_then_repair(results, str(part.relative_to(results)))


def test_a_file_index_that_does_not_match_the_files(tmp_path: Path) -> None:
    results = tmp_path / "results"
    two_sweeps(results)
    harness("sql", "SELECT 1", results=results)  # writes the index
    index = results / ".file-index.json"
    data = json.loads(index.read_text())
    sweep_file = "sweeps/sweep_id=s1/sweep.parquet"
    data["files"][sweep_file][3] = 7  # rows, for a file of the same inode, size and mtime
    data["files"]["measurements/sweep_id=s9/cell-x-y.parquet"] = [1, 2, 3, 4, "a", 2, 2, None]
    index.write_text(json.dumps(data))
    found = harness("check", results=results)
    assert found.returncode == 1
    lines = found.stdout.splitlines()
    assert any(f"says {sweep_file} holds 7 rows" in line for line in lines), lines
    assert any("cell-x-y.parquet, which is not there" in line for line in lines), lines
    repaired = harness("check", "--repair", results=results)
    assert repaired.returncode == 0, repaired.stdout
    assert not (results / "quarantine").exists()  # no data file was bad
    assert json.loads(index.read_text())["files"][sweep_file][3] == 1


def test_check_of_a_sound_warehouse_and_of_none(results: Path, tmp_path: Path) -> None:
    sound = harness("check", results=results)
    assert sound.returncode == 0 and "every file is sound" in sound.stdout
    missing = harness("check", results=tmp_path / "nothing")
    assert missing.returncode == 2
    assert missing.stderr.startswith("harness: error: no warehouse at")
