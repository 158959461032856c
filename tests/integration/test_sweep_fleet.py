"""`harness sweep --inventory` over the loopback sshd fleet, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.warehouse import Warehouse

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

HARNESS = [sys.executable, "-m", "harness"]


def sweep_args(fleet: Any, results: Path, *extra: str) -> list[str]:
    return [*HARNESS, "sweep", "--inventory", str(fleet.inventory), "--known-hosts",
            str(fleet.known_hosts), "--results", str(results), "--profile", "quick", *extra]


def test_fleet_sweep_one_matrix_per_profile(fleet: Any, tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = subprocess.run(
        sweep_args(fleet, results, "-w", "cpu_bound", "-m", "threads", "-m", "processes"),
        capture_output=True, text=True, timeout=900, env=dict(os.environ, COLUMNS="250"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    wh = Warehouse(results)
    envs = wh.query("SELECT host, python, usable_cpus, free_threaded, gil_enabled, profile_id, "
                    "status FROM environments ORDER BY host, python")
    assert (envs.status == "ok").all()
    usable = {(r.host, Path(r.python).name): r.usable_cpus for r in envs.itertuples()}
    assert usable[("fleet1", "python3.11")] == 1
    assert all(n == 2 for (host, _), n in usable.items() if host != "fleet1")
    ft = envs[envs.free_threaded]
    assert list(ft.python.map(lambda p: Path(p).name)) == (
        ["python3.13t"] if Path("/var/cache/harness/cpython-3.13t/bin/python3.13t").exists()
        else [])
    assert not ft.gil_enabled.any()
    # fleet2 and fleet3 under 3.11 share a profile; the 1-CPU host is a profile of its own
    profiles = envs.groupby("profile_id").host.apply(set).tolist()
    assert {"fleet2", "fleet3"} in profiles and {"fleet1"} in profiles
    pooled = wh.query("SELECT DISTINCT profile_id, n_envs FROM profile_matrix")
    assert len(pooled) == envs.profile_id.nunique()
    assert pooled.n_envs.max() == 2
    # one printed matrix per profile
    assert proc.stdout.count("CPU-bound (compute)") == envs.profile_id.nunique()
    # the fleet is one machine: its hosts took turns, and said so
    assert "same machine" in proc.stderr


def test_a_host_that_dies_mid_sweep_is_recorded_and_the_rest_finish(
    fleet: Any, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    victim = "fleet3"
    proc = subprocess.Popen(
        sweep_args(fleet, results, "-w", "net_high_latency", "-m", "threads",
                   "--parallel-same-machine"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        stored: list[Path] = []
        while time.monotonic() < deadline and proc.poll() is None:
            envs = {p.name for p in results.glob("environments/*/*.parquet")}
            stored = list(results.glob("measurements/*/*.parquet"))
            if len(envs) >= 4 and stored:
                break
            time.sleep(0.05)
        assert stored, "no cell finished before the deadline"
        fleet.crash(victim)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        fleet.start(victim)
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    assert victim in err
    wh = Warehouse(results)
    cells = wh.query("SELECT e.host, c.status, c.reason FROM cells c "
                     "JOIN environments e USING (sweep_id, env_id)")
    others = cells[cells.host != victim]
    # every other host finished all its cells
    assert set(others.host) == {"fleet1", "fleet2"}
    assert (others.status == "ok").all()
    per_env = wh.query("SELECT env_id, count(*) AS n FROM cells GROUP BY env_id")
    assert per_env.n.max() == 2
    assert wh.query("SELECT status FROM sweeps").status[0] == "failed"
    # the victim's failure is in the warehouse with its reason
    lost = wh.query(
        "SELECT reason FROM cells JOIN environments e USING (sweep_id, env_id) "
        f"WHERE e.host = '{victim}' AND cells.status = 'failed' "
        "UNION ALL SELECT error FROM environments "
        f"WHERE host = '{victim}' AND status <> 'ok'")
    assert len(lost) >= 1 and lost.reason.notna().all(), err
