"""Resume at block granularity: a sweep interrupted inside a group keeps the group's
complete blocks, measures the cut block again whole and never re-runs a finished one."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.warehouse import Warehouse

HARNESS = [sys.executable, "-m", "harness"]


@pytest.mark.slow
def test_an_interrupted_group_keeps_its_complete_blocks(tmp_path: Path) -> None:
    results = tmp_path / "results"
    args = [*HARNESS, "sweep", "--results", str(results), "-w", "net_high_latency",
            "-m", "threads", "-m", "asyncio"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # agent start + warmups take a few seconds; a block about a second here
        time.sleep(8)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-2000:]
    wh = Warehouse(results)
    (sid,) = wh.sweep_ids()
    (eid,) = wh.query("SELECT env_id FROM environments").env_id
    attempts = wh.latest_attempts(sid, eid)
    assert len(attempts) == 3, "the group's three cells were in flight"
    before = {cid: {r["block"]: r["wall_s"] for r in rows
                    if r["block"] is not None and r["wall_s"] is not None}
              for cid, rows in attempts.items()}
    kept = set.intersection(*(set(b) for b in before.values()))
    assert kept, f"no complete block before the interrupt: {before}"

    again = subprocess.run([*args, "--resume", "latest"], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    rows = Warehouse(results).query(
        "SELECT cell_id, repeat, warmup, block, wall_s FROM measurements "
        "WHERE NOT warmup ORDER BY cell_id, block")
    for cid, own in rows.groupby("cell_id"):
        blocks = list(own.block)
        assert len(blocks) == len(set(blocks)), "a block stored twice"
        stored = dict(zip(own.block, own.wall_s, strict=True))
        # the finished blocks are the attempt's own timings, not measured again
        assert all(stored[b] == before[cid][b] for b in kept)
        # the resumed agent numbered its blocks on after them
        assert min(b for b in blocks if b not in kept) > max(kept)
    dup = Warehouse(results).query(
        "SELECT cell_id, repeat, warmup FROM measurements GROUP BY ALL HAVING count(*) > 1")
    assert dup.empty
    # every block of the group holds every cell: the pairs are complete
    per_block = rows.groupby("block").cell_id.nunique()
    assert (per_block == 3).all(), per_block
