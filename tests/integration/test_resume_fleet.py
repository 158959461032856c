"""Nothing lost: a host that dies and an agent killed mid-cell, then `--resume`.

One sweep over the loopback fleet: fleet3's sshd (with every session under it) is
killed, and on fleet2 the agent alone is SIGKILLed, both in the middle of a cell.
The failures are recorded with their reasons, every other cell completes, the exit
status is 1; once fleet3 is back, `--resume` runs exactly the missing cells: no
row is written twice and the warehouse holds every planned cell once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from harness.warehouse import Warehouse

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

HARNESS = [sys.executable, "-m", "harness"]


def sweep_args(fleet: Any, results: Path, *extra: str) -> list[str]:
    return [*HARNESS, "sweep", "--inventory", str(fleet.inventory), "--known-hosts",
            str(fleet.known_hosts), "--results", str(results), "--profile", "quick",
            "-w", "net_high_latency", "-m", "threads", "--parallel-same-machine", *extra]


def agent_pids(fleet_module: Any, fleet: Any, host: str) -> list[int]:
    """Agents running a plan under ``host``'s sshd (not their pool workers)."""
    sshd = fleet.host(host).pid()
    if sshd is None:
        return []
    found = []
    for pid in fleet_module._descendants(sshd):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) >= 3 and argv[1].endswith(b"agent.pyz") and argv[2] == b"run" and (
                b"python" in argv[0]):
            found.append(pid)
    return found


def in_a_group(pids: list[int]) -> list[int]:
    """The agents among ``pids`` that are running a group of cells: the group's latency
    server (its setup) is their child while its blocks run. (An agent that has only sent
    its fingerprint and waits for its plan has none: killing that one loses no cell.)"""
    busy = []
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
            kids = "".join((t / "children").read_text() for t in tasks)
        except OSError:
            continue
        if kids.split():
            busy.append(pid)
    return busy


def test_host_death_and_killed_agent_then_resume_completes(
    fleet: Any, fleet_module: Any, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    proc = subprocess.Popen(sweep_args(fleet, results), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    killed_agent = crashed = False
    busy_since: dict[int, float] = {}

    def running_a_group(host: str) -> list[int]:
        """Agents of ``host`` that have had a child for a second: inside a group's
        blocks (its teardown, when every cell is done already, takes well under that)."""
        now = time.monotonic()
        busy = in_a_group(agent_pids(fleet_module, fleet, host))
        for pid in busy:
            busy_since.setdefault(pid, now)
        return [pid for pid in busy if now - busy_since[pid] >= 1.0]

    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            stored = list(results.glob("measurements/*/*.parquet"))
            if stored:
                if not killed_agent:
                    for pid in running_a_group("fleet2")[:1]:
                        os.kill(pid, signal.SIGKILL)
                        killed_agent = True
                if not crashed and running_a_group("fleet3"):
                    fleet.crash("fleet3")
                    crashed = True
                if killed_agent and crashed:
                    break
            time.sleep(0.05)
        assert killed_agent and crashed, "no agent was running to kill"
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        fleet.start("fleet3")
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    assert "fleet3" in err and "fleet2" in err
    wh = Warehouse(results)
    (sid,) = wh.sweep_ids()
    assert wh.query("SELECT status FROM sweeps").status[0] == "failed"
    lost = wh.unfinished_cells(sid)
    assert lost, "the cells in flight are kept as attempts"
    envs = wh.query("SELECT host, status, error FROM environments")
    bad = envs[envs.status != "ok"]
    assert "fleet3" in set(bad.host) and bad.error.notna().all()
    # fleet1 finished everything
    cells = wh.query("SELECT e.host, c.status FROM cells c JOIN environments e "
                     "USING (sweep_id, env_id)")
    assert (cells[cells.host == "fleet1"].status == "ok").all()
    # the failed sweep was compacted (one file); the rows of its finished cells must come
    # through the resume as they are (an unfinished cell's attempt rows are superseded)
    assert len(list(results.glob("measurements/*/*.parquet"))) == 1
    first_rows = wh.query("SELECT env_id, cell_id, repeat, warmup, wall_s, ok "
                          "FROM measurements ORDER BY ALL")
    done = wh.done_cells(sid)
    first_rows = first_rows[[(e, c) in done for e, c in zip(first_rows.env_id,
                                                            first_rows.cell_id, strict=True)]]
    assert not first_rows.empty

    again = subprocess.run(sweep_args(fleet, results, "--resume", sid), capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed" in again.stderr
    wh = Warehouse(results)
    assert wh.unfinished_cells(sid) == set()
    assert wh.query("SELECT status FROM sweeps").status[0] == "complete"
    # no finished row was lost or changed, no file is unreadable, no row is stored twice
    kept = first_rows.merge(wh.query("SELECT env_id, cell_id, repeat, warmup, wall_s, ok "
                                     "FROM measurements"), how="left", indicator=True)
    assert (kept._merge == "both").all(), kept[kept._merge != "both"]
    for path in results.rglob("*.parquet"):
        pq.read_table(path)
    dup = wh.query("SELECT env_id, cell_id, repeat, warmup, count(*) AS n FROM measurements "
                   "GROUP BY ALL HAVING count(*) > 1")
    assert dup.empty
    cells = wh.query("SELECT e.host, e.python, c.model, c.status FROM cells c "
                     "JOIN environments e USING (sweep_id, env_id)")
    assert (cells.status == "ok").all(), cells
    envs = wh.query("SELECT host, python, status FROM environments")
    assert (envs.status == "ok").all()
    # every interpreter of every host has both planned cells, once
    assert len(cells) == 2 * len(envs)
    # the complete sweep was compacted again: one file for all its cells
    assert len(list(results.glob("measurements/*/*.parquet"))) == 1
