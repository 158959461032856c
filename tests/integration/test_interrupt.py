"""Stopping cleanly: SIGINT on the controller, and a workload that hangs.

SIGINT: the agents and everything they started are killed on every host, their
working directories removed, the sweep marked interrupted, and the command prints
how to resume; `--resume` then completes it. A hung workload is stopped at its
cell timeout with its whole process tree, recorded as a timeout, and the sweep
goes on with the next cell.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from harness.plan.catalog import load_catalog
from harness.plan.cells import Cell, Profile
from harness.sweep.context import Sweep
from harness.sweep.options import Failure, SweepOptions
from harness.sweep.run import execute
from harness.warehouse import Warehouse

HARNESS = [sys.executable, "-m", "harness"]


def processes_with(text: str) -> dict[int, str]:
    """Live processes whose command line contains ``text`` (zombies excluded)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state != "Z":
            found[int(entry.name)] = cmdline
    return found


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def interrupt_and_resume(args: list[str], results: Path, marker: str,
                         workdir_of: Any, ours: Any = None) -> tuple[str, dict[int, str]]:
    """Start a sweep, SIGINT it mid-cell; check what it left; return (stderr, victims).

    ``ours(pid)`` tells this sweep's processes from others' on the machine (other test
    runs' agents carry the same marker)."""
    # A shell starts a background job with SIGINT ignored, and the harness would inherit
    # that (Python then installs no KeyboardInterrupt handler): give it the default, as
    # a user's terminal does.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    try:
        assert wait_for(lambda: any(results.glob("measurements/*/*.parquet"))
                        and len(processes_with(marker)) >= 2, 180), "no cell ran"
        victims = {pid: cmd for pid, cmd in processes_with(marker).items()
                   if ours is None or ours(pid)}
        workdirs = {workdir_of(cmd) for cmd in victims.values()}
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    wh = Warehouse(results)
    (sid,) = wh.sweep_ids()
    assert f"harness sweep --resume {sid}" in err
    assert wh.query("SELECT status FROM sweeps").status[0] == "interrupted"
    # the agent, its pool workers and its latency server are gone; so is the workdir
    assert wait_for(lambda: not set(processes_with(marker)) & set(victims), 10), (
        processes_with(marker))
    for wd in workdirs:
        assert not Path(wd).exists(), wd
    # resume completes the sweep; nothing is stored twice
    again = subprocess.run([*args, "--resume", "latest"], capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    wh = Warehouse(results)
    assert wh.query("SELECT status FROM sweeps").status[0] == "complete"
    assert wh.unfinished_cells(sid) == set()
    assert wh.query("SELECT env_id, cell_id, repeat, warmup FROM measurements GROUP BY ALL "
                    "HAVING count(*) > 1").empty
    assert wh.query("SELECT count(*) AS n FROM cells WHERE status NOT IN "
                    "('ok', 'not_applicable')").n[0] == 0
    return err, victims


@pytest.mark.slow
def test_sigint_on_a_local_sweep_stops_cleanly_and_resume_completes(tmp_path: Path) -> None:
    workdir = tmp_path / "agent-wd"
    inventory = tmp_path / "local.ini"
    inventory.write_text(f"localhost ansible_connection=local harness_workdir={workdir}\n")
    results = tmp_path / "results"
    args = [*HARNESS, "sweep", "--inventory", str(inventory), "--results", str(results),
            "-w", "net_high_latency", "-w", "disk_io"]
    err, victims = interrupt_and_resume(args, results, str(workdir),
                                        lambda cmd: str(workdir))
    assert "interrupted" in err
    assert len(victims) >= 2  # the agent and what it started


@pytest.mark.fleet
@pytest.mark.slow
def test_sigint_on_a_fleet_sweep_kills_the_remote_agents(fleet: Any, tmp_path: Path) -> None:
    results = tmp_path / "results"
    args = [*HARNESS, "sweep", "--inventory", str(fleet.inventory), "--known-hosts",
            str(fleet.known_hosts), "--results", str(results), "--limit", "fleet1:fleet2",
            "-w", "net_high_latency", "-m", "processes", "--parallel-same-machine"]

    def workdir_of(cmd: str) -> str:
        return next(w for w in cmd.split() if w.endswith("/agent.pyz")).rsplit("/", 1)[0]

    ports = {str(h.port) for h in fleet.hosts}

    def ours(pid: int) -> bool:  # started by this fleet's sshd (its ports are unique)
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return False
        conn = next((e for e in environ if e.startswith(b"SSH_CONNECTION=")), b"")
        return conn.decode(errors="replace").split(" ")[-1] in ports

    interrupt_and_resume(args, results, "/agent.pyz run ", workdir_of, ours)


class _Watch:
    """An observer that checks, when each cell starts, what still runs in the workdir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.leftovers: dict[str, dict[int, str]] = {}
        self.statuses: dict[str, str] = {}
        self.failures: list[Failure] = []

    def host_planned(self, host: str, total: int) -> None: ...

    def cell_started(self, host: str, python: str, cell: Cell) -> None:
        # an earlier plan's processes must all be gone by now: the first run got its plan
        # on stdin (``run -``, the agent that probed), later ones read plan-1.json, ...
        live = processes_with(str(self.workdir))
        plans = [c.split("plan-")[1].split(".")[0] for c in live.values() if "plan-" in c]
        mark = f"plan-{max(plans, key=int)}." if plans else "agent.pyz run -"
        self.leftovers[f"{cell.workload}/{cell.model}"] = {
            pid: c for pid, c in live.items() if mark not in c}

    def cell_finished(self, host: str, python: str, cell: Cell, status: str) -> None:
        self.statuses[f"{cell.workload}/{cell.model}"] = status

    def failed(self, failure: Failure) -> None:
        self.failures.append(failure)

    def note(self, text: str) -> None: ...


@pytest.mark.slow
def test_a_hung_workload_is_killed_at_its_timeout_and_the_sweep_goes_on(
    tmp_path: Path
) -> None:
    workdir = tmp_path / "agent-wd"
    inventory = tmp_path / "local.ini"
    inventory.write_text(f"localhost ansible_connection=local harness_workdir={workdir}\n")
    watch = _Watch(workdir)
    sweep = Sweep(SweepOptions(inventory=inventory, results=tmp_path / "results",
                               workloads=("net_high_latency", "cpu_bound"),
                               models=("sequential", "processes")), watch)
    sweep.profile = Profile("quick", warmups=0, repeats=1, timeout_s=2.0)
    catalog = load_catalog()
    # every request waits two minutes: the cell can only end by its timeout
    hung = dataclasses.replace(catalog["net_high_latency"], profiles=MappingProxyType({}),
                               params=MappingProxyType({"delay_s": 120.0, "tasks": 2,
                                                        "body_bytes": 16}))
    sweep.workloads = (hung, catalog["cpu_bound"])
    started = time.monotonic()
    result = execute(sweep)
    assert time.monotonic() - started < 200  # nowhere near the 120 s a request takes x2
    assert result.exit_code == 1
    assert watch.statuses == {
        "net_high_latency/sequential": "timeout", "net_high_latency/processes": "timeout",
        "cpu_bound/sequential": "ok", "cpu_bound/processes": "ok"}, watch.failures
    # when the next cell started, nothing of the hung run was left: agent, server, workers
    for cell, left in watch.leftovers.items():
        assert left == {}, (cell, left)
    wh = Warehouse(tmp_path / "results")
    cells = wh.query("SELECT workload, model, status, reason FROM cells ORDER BY 1, 2")
    timed_out = cells[cells.workload == "net_high_latency"]
    assert (timed_out.status == "timeout").all()
    assert timed_out.reason.str.contains("timeout").all()
    assert not workdir.exists()
    assert processes_with(str(workdir)) == {}
    assert os.path.exists(tmp_path / "results")
