"""Warehouse.compact: a sweep's cell and environment files merged into one, atomically."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from harness.warehouse import Warehouse
from harness.warehouse import compact as wmod


def _sweep(wh: Warehouse, sid: str = "s1", envs: int = 3, cells: int = 4) -> None:
    wh.begin_sweep(sid, started_at=datetime(2026, 1, 1, tzinfo=UTC), harness_version="t",
                   inventory="i", profile="quick", plan={})
    for e in range(envs):
        wh.add_environment(sid, {"host": f"h{e}", "python": "py", "env_id": f"e{e}",
                                 "profile_id": "p"})
        for c in range(cells):
            rows = [{"workload": "cpu_bound", "model": "sequential", "repeat": r,
                     "warmup": r == 0, "wall_s": 1.0 + r, "ok": True, "headline": True}
                    for r in range(3)]
            assert wh.add_cell(sid, f"e{e}", f"c{c}", rows)


def _files(wh: Warehouse, table: str, sid: str = "s1") -> list[str]:
    return sorted(p.name for p in (wh.root / table / f"sweep_id={sid}").iterdir())


def _snapshot(wh: Warehouse) -> tuple:
    m = wh.query("SELECT env_id, cell_id, repeat, wall_s FROM measurements ORDER BY ALL")
    e = wh.query("SELECT env_id, host FROM environments ORDER BY ALL")
    c = wh.query("SELECT env_id, cell_id, n, median_s FROM cells ORDER BY ALL")
    return (m.to_records(index=False).tolist(), e.to_records(index=False).tolist(),
            c.to_records(index=False).tolist())


def test_compact_merges_without_changing_any_answer(tmp_path):
    wh = Warehouse(tmp_path / "r")
    _sweep(wh)
    before = _snapshot(wh)
    done = wh.done_cells("s1")
    assert wh.compact("s1") == {"measurements": 12, "environments": 3}
    assert len(_files(wh, "measurements")) == 1 and _files(wh, "measurements")[0].startswith(
        "part-")
    assert len(_files(wh, "environments")) == 1
    assert _snapshot(wh) == before
    assert wh.done_cells("s1") == done
    assert wh.has_environment("s1", "e1") and not wh.has_environment("s1", "e9")
    # a stored cell is refused as before: no row twice
    assert not wh.add_cell("s1", "e0", "c0", [{"repeat": 0, "wall_s": 9.0, "ok": True}])
    assert _snapshot(wh) == before
    # no hidden staging directory is left behind
    assert not [p for p in (wh.root / "measurements").iterdir() if p.name.startswith(".")]


def test_resume_after_compaction(tmp_path):
    wh = Warehouse(tmp_path / "r")
    _sweep(wh)
    wh.compact("s1")
    # a resumed sweep probes again (replaces the environment) and adds the missing cells
    wh.add_environment("s1", {"host": "h1", "python": "py", "env_id": "e1",
                              "profile_id": "p", "hostname": "again"})
    envs = wh.query("SELECT env_id, hostname FROM environments ORDER BY env_id")
    assert envs.env_id.tolist() == ["e0", "e1", "e2"]
    assert envs.hostname.tolist()[1] == "again"
    assert wh.add_cell("s1", "e1", "c9", [{"repeat": 0, "wall_s": 2.0, "ok": True}])
    assert ("e1", "c9") in wh.done_cells("s1") and ("e0", "c0") in wh.done_cells("s1")
    assert wh.compact("s1")["measurements"] == 2
    n = wh.query("SELECT count(*) AS n, count(DISTINCT (env_id, cell_id, repeat)) AS d "
                 "FROM measurements")
    assert n.n[0] == n.d[0] == 12 * 3 + 1


def test_set_sweep_status_compacts_every_finished_sweep_but_a_single_file(tmp_path):
    wh = Warehouse(tmp_path / "r")
    _sweep(wh, envs=1, cells=1)
    wh.set_sweep_status("s1", "complete", finished_at=datetime.now(UTC))
    assert _files(wh, "measurements") == ["cell-e0-c0.parquet"]  # nothing to merge
    _sweep(wh, "s2", envs=2, cells=2)
    wh.set_sweep_status("s2", "running", finished_at=None)
    assert len(_files(wh, "measurements", "s2")) == 4  # a running sweep is left alone
    wh.set_sweep_status("s2", "failed", finished_at=datetime.now(UTC))
    assert len(_files(wh, "measurements", "s2")) == 1
    assert len(_files(wh, "environments", "s2")) == 1
    n = wh.query("SELECT count(*) AS n FROM measurements WHERE sweep_id = 's2'").n[0]
    assert n == 2 * 2 * 3


@pytest.mark.parametrize("crash_after_swap", [False, True])
def test_a_crash_leaves_the_answer_whole(tmp_path, monkeypatch, crash_after_swap):
    """A crash before the swap leaves the cell files; after it, the merged file. The
    staging directory left behind is never read and is removed by the next compaction."""
    wh = Warehouse(tmp_path / "r")
    _sweep(wh)
    before = _snapshot(wh)
    real = wmod.exchange_dirs

    def crash(a, b):
        if crash_after_swap:
            real(a, b)
        raise KeyboardInterrupt

    monkeypatch.setattr(wmod, "exchange_dirs", crash)
    monkeypatch.setattr(wmod.shutil, "rmtree", lambda *a, **k: None)  # the crash: no cleanup
    with pytest.raises(KeyboardInterrupt):
        wh.compact("s1")
    monkeypatch.undo()
    staging = wh.root / "measurements" / ".compact-sweep_id=s1"
    assert staging.is_dir()
    assert _snapshot(wh) == before
    names = _files(wh, "measurements")
    assert (len(names) == 1) == crash_after_swap
    wh.compact("s1")
    assert not staging.exists() or not crash_after_swap
    assert _snapshot(wh) == before


def test_no_atomic_swap_changes_nothing(tmp_path, monkeypatch):
    wh = Warehouse(tmp_path / "r")
    _sweep(wh)
    names = _files(wh, "measurements")
    monkeypatch.setattr(wmod, "exchange_dirs", lambda a, b: False)
    assert wh.compact("s1") == {"measurements": 0, "environments": 0}
    assert _files(wh, "measurements") == names
    assert not (wh.root / "measurements" / ".compact-sweep_id=s1").exists()


def test_environments_replaced_at_once_in_a_compacted_partition_are_all_kept(tmp_path):
    """A resumed sweep's host threads store their environments at the same time; in a
    compacted partition each replacement swaps the partition, and none may be lost."""
    wh = Warehouse(tmp_path / "r")
    _sweep(wh, envs=8, cells=1)
    wh.set_sweep_status("s1", "failed", finished_at=datetime.now(UTC))
    assert len(_files(wh, "environments")) == 1
    start = threading.Barrier(8)

    def again(e: int) -> None:
        start.wait()
        wh.add_environment("s1", {"host": f"h{e}", "python": "py", "env_id": f"e{e}",
                                  "profile_id": "p", "hostname": "again"})

    threads = [threading.Thread(target=again, args=(e,)) for e in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    envs = wh.query("SELECT env_id, hostname FROM environments ORDER BY env_id")
    assert envs.env_id.tolist() == [f"e{e}" for e in range(8)]
    assert envs.hostname.tolist() == ["again"] * 8
