"""A 64-host loopback fleet (issue 17): up, one real ssh-engine sweep over all of it,
down, with no daemon of its own left running.

The fleet is started and stopped by ``tests/fleet/fleet.py`` in subprocesses, as a user
runs it: its sshd listeners then belong to PID 1, not to this test, so ``down`` has to
count a listener that has exited but not been reaped yet as stopped (it used to wait
STOP_TIMEOUT for each such zombie, one host after another: 64 hosts took two minutes).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.warehouse import Warehouse

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

HOSTS = 64
FLEET_SCRIPT = Path(__file__).resolve().parents[1] / "fleet" / "fleet.py"
HARNESS = str(Path(sys.executable).parent / "harness")  # the installed command


def test_addresses_go_past_one_last_byte(fleet_module: Any) -> None:
    addresses = [fleet_module.address_for(i) for i in range(1, 600)]
    assert addresses[:2] == ["127.0.0.11", "127.0.0.12"]
    assert addresses[243:246] == ["127.0.0.254", "127.0.1.1", "127.0.1.2"]
    assert addresses[497:499] == ["127.0.1.254", "127.0.2.1"]
    assert len(set(addresses)) == len(addresses)
    assert all(a.rsplit(".", 1)[1] not in ("0", "255") for a in addresses)


def ours_running(directory: Path) -> list[int]:
    """Pids of live (not zombie) processes whose command line names ``directory``."""
    found = []
    needle = str(directory).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def fleet_script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(FLEET_SCRIPT), *args], capture_output=True,
                          text=True, timeout=timeout)


def test_a_64_host_fleet_sweeps_and_goes_down(tmp_path: Path, fleet_module: Any) -> None:
    reason = fleet_module.sshd_available()
    if reason:
        pytest.skip(f"no sshd fleet: {reason}")
    directory = tmp_path / "fleet"
    up = fleet_script("up", "--hosts", str(HOSTS), "--dir", str(directory), timeout=120)
    try:
        assert up.returncode == 0, up.stderr
        fleet = fleet_module.load(directory)
        pids = [h.pid() for h in fleet.hosts]
        assert None not in pids and len(set(pids)) == HOSTS
        assert len({(h.address, h.port) for h in fleet.hosts}) == HOSTS
        assert fleet.hosts[-1].address == "127.0.0.74"
        status = fleet_script("status", "--dir", str(directory), timeout=60)
        assert f"{HOSTS} sshd listeners: RSS" in status.stdout

        inventory = fleet_module.one_python_inventory(fleet, tmp_path / "one-python.ini")
        results = tmp_path / "results"
        sweep = subprocess.run(
            [HARNESS, "sweep", "--engine", "ssh", "--inventory", str(inventory),
             "--known-hosts", str(fleet.known_hosts), "--results", str(results),
             "--parallel-same-machine", "--profile", "quick", "-w", "empty", "-m", "threads",
             "--dimension", "overhead", "--host-wait", "600"],
            capture_output=True, text=True, timeout=900)
        assert sweep.returncode == 0, sweep.stderr[-3000:]
        wh = Warehouse(results)
        envs = wh.query("SELECT host, status FROM environments")
        assert sorted(envs.host) == sorted(h.name for h in fleet.hosts)
        assert (envs.status == "ok").all()
        cells = wh.query(
            "SELECT e.host, count(*) AS n, bool_and(c.status = 'ok') AS ok, "
            "count(*) FILTER (c.model = 'sequential' AND c.workers = 1) AS baseline, "
            "count(*) FILTER (c.model = 'threads' AND c.workers = e.usable_cpus) AS threads "
            "FROM cells c JOIN environments e USING (sweep_id, env_id) GROUP BY e.host")
        assert len(cells) == HOSTS
        assert cells.ok.all()
        # the overhead dimension on empty/threads: per host the sequential baseline and
        # threads with one worker per usable CPU (fleet1 is pinned to one)
        assert set(cells.n) == {2}
        assert set(cells.baseline) == {1} and set(cells.threads) == {1}
    finally:
        down = fleet_script("down", "--dir", str(directory), timeout=60)
    assert down.returncode == 0, down.stderr
    assert all(h.pid() is None for h in fleet.hosts)
    assert not any(Path(h.pid_file).exists() for h in fleet.hosts)
    assert ours_running(directory) == []
