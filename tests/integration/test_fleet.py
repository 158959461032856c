"""The loopback sshd fleet itself: daemons, affinity, inventory, known_hosts, stop/start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.plan.inventory import load_inventory

pytestmark = pytest.mark.fleet

FLEET_SCRIPT = Path(__file__).resolve().parents[1] / "fleet" / "fleet.py"


def test_each_host_is_its_own_sshd(fleet: Any) -> None:
    pids = set()
    for host in fleet.hosts:
        pid = host.pid()
        assert pid is not None, host.name
        pids.add(pid)
        assert host.address.startswith("127.0.0.")
        with socket.create_connection((host.address, host.port), timeout=5) as sock:
            assert sock.recv(64).startswith(b"SSH-2.0-")
    assert len(pids) == len(fleet.hosts)
    assert [h.address for h in fleet.hosts] == [f"127.0.0.{10 + i}" for i in range(1, 4)]
    host_keys = {Path(f"{h.host_key}.pub").read_text().split()[1] for h in fleet.hosts}
    assert len(host_keys) == len(fleet.hosts)


def test_cpu_affinity(fleet: Any) -> None:
    first = fleet.host("fleet1")
    assert os.sched_getaffinity(first.pid()) == {0}
    for host in fleet.hosts[1:]:
        assert os.sched_getaffinity(host.pid()) == set(range(os.cpu_count() or 1))


def test_inventory_and_known_hosts(fleet: Any, interpreters: dict[str, Path]) -> None:
    hosts = {h.name: h for h in load_inventory(fleet.inventory)}
    assert set(hosts) == {"fleet1", "fleet2", "fleet3"}
    assert all(h.user == "root" and h.connection == "ssh" for h in hosts.values())
    assert all(str(interpreters["3.11"]) == h.pythons[0] for h in hosts.values())
    assert str(interpreters["3.12"]) in hosts["fleet3"].pythons
    if "3.13t" in interpreters:
        assert str(interpreters["3.13t"]) in hosts["fleet2"].pythons
    lines = fleet.known_hosts.read_text().splitlines()
    assert len(lines) == 3
    for host, line in zip(fleet.hosts, lines, strict=True):
        assert line.startswith(f"[{host.address}]:{host.port} ssh-ed25519 ")


def test_openssh_client_accepts_the_fleet(fleet: Any) -> None:
    host = fleet.host("fleet1")
    out = subprocess.run(
        [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={fleet.known_hosts}",
            "-i",
            str(fleet.client_key),
            "-p",
            str(host.port),
            f"root@{host.address}",
            "nproc",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"  # fleet1 is pinned to one CPU


def test_password_login_is_refused(fleet: Any) -> None:
    config = Path(fleet.host("fleet2").config).read_text()
    assert "PermitRootLogin prohibit-password" in config
    assert "PasswordAuthentication no" in config


@pytest.mark.slow
def test_stop_and_start_one_host(fleet: Any) -> None:
    host = fleet.host("fleet2")
    old = host.pid()
    fleet.stop("fleet2")
    try:
        assert host.pid() is None
        with pytest.raises(OSError):
            socket.create_connection((host.address, host.port), timeout=2).close()
        assert fleet.host("fleet1").pid() is not None  # the others keep running
    finally:
        new = fleet.start("fleet2")
    assert new != old
    assert host.pid() == new


@pytest.mark.slow
def test_script_up_status_down(tmp_path: Path, fleet_module: Any) -> None:
    if fleet_module.sshd_available():
        pytest.skip(fleet_module.sshd_available())
    directory = tmp_path / "f"
    run = [sys.executable, str(FLEET_SCRIPT)]
    up = subprocess.run(
        [*run, "up", "--hosts", "1", "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert up.returncode == 0, up.stderr
    try:
        small = fleet_module.load(directory)
        pid = small.hosts[0].pid()
        assert pid is not None
        status = subprocess.run(
            [*run, "status", "--dir", str(directory)], capture_output=True, text=True, timeout=30
        )
        assert f"pid={pid}" in status.stdout
    finally:
        down = subprocess.run(
            [*run, "down", "--dir", str(directory)], capture_output=True, text=True, timeout=60
        )
    assert down.returncode == 0, down.stderr
    assert small.hosts[0].pid() is None
