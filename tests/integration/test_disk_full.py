"""A full disk under results/: a real small file system (tmpfs, mounted by the test)
fills up during a sweep. The sweep stops with one line naming the file and the space
it needs (exit 1), leaves no half-written file, what it committed stays readable, and
once space is freed ``--resume`` completes with no duplicate row."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.mounts import fill, tmpfs

HARNESS = str(Path(sys.executable).parent / "harness")  # the installed command
# Two groups (cpu_bound, then net_low_latency), each a few seconds: the disk is filled once the
# first group's cells are stored, while the second group runs.
SWEEP = ["sweep", "--profile", "quick", "-w", "cpu_bound", "-w", "net_low_latency", "-m", "threads",
         "--parallel-same-machine"]
CELLS = 4  # 2 workloads x (sequential, threads)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of its own, unmounted afterwards."""
    with tmpfs(tmp_path / "fs", "size=4m,mode=0755") as mount:
        yield mount


def stored_cell_files(results: Path) -> list[Path]:
    return sorted((results / "measurements").glob("sweep_id=*/*.parquet"))


def hidden_files(results: Path) -> list[Path]:
    """Temp files of writes (hidden, beside their final file): none may be left."""
    return [p for p in results.rglob(".*") if p.is_file()
            and p.name not in (".file-index.json",) and not p.name.startswith(".views-")]


@pytest.mark.slow
def test_a_sweep_stops_on_a_full_disk_and_resumes(small_fs: Path) -> None:
    results = small_fs / "results"
    proc = subprocess.Popen([HARNESS, *SWEEP, "--results", str(results)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=small_fs)
    filler = None
    try:
        deadline = time.monotonic() + 120
        while not stored_cell_files(results) and proc.poll() is None:
            assert time.monotonic() < deadline, "no cell stored in 120 s"
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before the disk was filled"
        filler = fill(small_fs)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, (out[-2000:], err[-3000:])
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    error = [line for line in lines if line.startswith("harness: error:")]
    assert len(error) == 1, err
    assert "no space left on device writing" in error[0]
    assert str(results) in error[0] and "needed" in error[0] and "free" in error[0]
    assert any(line.startswith("hint:") and "--resume" in line for line in lines), err

    # nothing half-written; what was committed stays readable
    assert hidden_files(results) == []
    kept = stored_cell_files(results)
    assert kept
    for path in results.rglob("*.parquet"):
        pq.read_metadata(path)
    committed = {(r["cell_id"], r["repeat"], r["wall_s"]) for path in kept
                 for r in pq.read_table(path, columns=["cell_id", "repeat", "wall_s"])
                 .to_pylist()}
    assert 0 < len({c for c, _, _ in committed}) < CELLS

    # space freed: the resume runs the rest and no cell is stored twice
    assert filler is not None
    filler.unlink()
    resumed = subprocess.run([HARNESS, *SWEEP, "--results", str(results), "--resume", "latest"],
                             capture_output=True, text=True, timeout=300, cwd=small_fs)
    assert resumed.returncode == 0, (resumed.stdout[-2000:], resumed.stderr[-3000:])
    assert hidden_files(results) == []
    rows = [row for path in stored_cell_files(results)
            for row in pq.read_table(path, columns=["env_id", "cell_id", "repeat", "warmup",
                                                    "wall_s"]).to_pylist()]
    keys = [(r["env_id"], r["cell_id"], r["repeat"], r["warmup"]) for r in rows]
    assert len(keys) == len(set(keys)), "a row is stored twice"
    assert len({(r["env_id"], r["cell_id"]) for r in rows}) == CELLS
    # the cells stored before the disk filled were kept, not measured again
    assert committed <= {(r["cell_id"], r["repeat"], r["wall_s"]) for r in rows}
    status = subprocess.run([HARNESS, "sql", "SELECT status FROM sweeps", "--results",
                             str(results), "--format", "csv"], capture_output=True,
                            text=True, timeout=60, cwd=small_fs)
    assert status.returncode == 0, status.stderr
    assert "complete" in status.stdout or "failed" in status.stdout
