"""Nobody let in: host keys, no shell injection, contained warehouse paths, no stored
secrets, a private and removed agent temp dir, a latency server on 127.0.0.1 only.

The fleet tests run `harness` as a user does, with HOME pointing at an empty
directory so only the known_hosts file given with --known-hosts is trusted.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

HARNESS = [sys.executable, "-m", "harness"]
PY311 = "/root/.pyenv/versions/3.11.7/bin/python3.11"
ROOT = Path(__file__).resolve().parents[2]


def harness(*args: str, home: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOME=str(home), COLUMNS="250")
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def fleet_host_vars(fleet: Any, name: str) -> dict[str, Any]:
    h = fleet.host(name)
    return {"ansible_host": h.address, "ansible_port": h.port, "ansible_user": "root",
            "ansible_ssh_private_key_file": str(fleet.client_key)}


def write_yaml_inventory(path: Path, hosts: dict[str, dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return path


# ------------------------------------------------------------------ host keys


@pytest.mark.fleet
def test_unknown_host_key_is_refused_with_fingerprint_and_option(
    fleet: Any, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    inv = write_yaml_inventory(tmp_path / "inv.yml", {"fleet1": fleet_host_vars(fleet, "fleet1")})
    proc = harness("probe", "-i", str(inv), "--known-hosts", str(empty), "--json", home=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert "unknown host key" in row["error"] and "SHA256:" in row["error"]
    assert "--accept-new-host-keys" in row["error"]
    assert empty.read_text() == ""  # nothing trusted behind the user's back
    # accepting it is explicit, and records the key
    proc = harness("probe", "-i", str(inv), "--known-hosts", str(empty), "--json",
                   "--accept-new-host-keys", home=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fleet.host("fleet1").address in empty.read_text()


@pytest.mark.fleet
def test_changed_host_key_is_always_refused(fleet: Any, tmp_path: Path) -> None:
    h = fleet.host("fleet1")
    other = Path(fleet.host("fleet2").host_key + ".pub").read_text().split()
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{h.known_hosts_name} {other[0]} {other[1]}\n")
    inv = write_yaml_inventory(tmp_path / "inv.yml", {"fleet1": fleet_host_vars(fleet, "fleet1")})
    for extra in ([], ["--accept-new-host-keys"]):
        proc = harness("probe", "-i", str(inv), "--known-hosts", str(wrong), "--json", *extra,
                       home=tmp_path)
        assert proc.returncode == 1, proc.stderr
        (row,) = json.loads(proc.stdout)
        assert "CHANGED" in row["error"] and "SHA256:" in row["error"], row
    assert wrong.read_text().count("\n") == 1


# ------------------------------------------------------------------ shell injection


@pytest.mark.fleet
@pytest.mark.slow
def test_inventory_values_never_reach_a_shell_unquoted(fleet: Any, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    touch = f"touch${{IFS}}{marks}/"
    base = tmp_path / "wd"
    evil_workdir = (f"{base}/a; touch {marks}/w1 $(touch {marks}/w2) `touch {marks}/w3` "
                    f"'q\" \n&& touch {marks}/w4 | x")
    evil_pythons = [f"python3;{touch}p1", f"$({touch}p2)", f"`{touch}p3`", f"'\"{touch}p4"]
    hosts = {"fleet1": {**fleet_host_vars(fleet, "fleet1"),
                        "harness_workdir": evil_workdir,
                        "harness_pythons": ",".join([PY311, *evil_pythons]),
                        "harness_note": f"$(touch {marks}/v1); `touch {marks}/v2`"}}
    inv = write_yaml_inventory(tmp_path / "inv.yml", hosts)
    results = tmp_path / "results"
    proc = harness("sweep", "-i", str(inv), "--known-hosts", str(fleet.known_hosts),
                   "--results", str(results), "-w", "cpu_bound", "-m", "threads",
                   home=tmp_path)
    # the real interpreter ran; each evil one is that host's recorded failure
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in marks.iterdir()) == []
    assert proc.stderr.count("not found") + proc.stderr.count("cannot run") >= len(evil_pythons)
    from harness.warehouse import Warehouse

    envs = Warehouse(results).query("SELECT python, status, error FROM environments")
    ok = envs[envs.status == "ok"]
    assert list(ok.python) == [PY311]
    failed = envs[envs.status != "ok"]
    assert sorted(failed.python) == sorted(evil_pythons)
    assert failed.error.str.contains("fleet1").all()
    # the workdir was created under its literal name (parents too, as mkdir -p does),
    # and everything the transport created was removed afterwards
    assert not base.exists()


# ------------------------------------------------------------------ warehouse paths


@pytest.mark.slow
def test_host_names_cannot_write_outside_results(tmp_path: Path) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    inv = write_yaml_inventory(work / "inv.yml", {
        "../../etc": {"ansible_connection": "local"},
        "/tmp/abs%2F..": {"ansible_connection": "local"}})
    results = work / "results"
    before = {p for p in tmp_path.rglob("*")}
    home = tmp_path.parent / (tmp_path.name + "-home")  # Ansible keeps ~/.ansible/tmp
    proc = harness("sweep", "-i", str(inv), "--results", str(results), "-w", "cpu_bound",
                   "-m", "threads", "--parallel-same-machine", home=home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    new = {p for p in tmp_path.rglob("*")} - before
    outside = [p for p in new if results not in p.parents and p != results]
    assert outside == []
    from harness.warehouse import Warehouse

    hosts = set(Warehouse(results).query("SELECT DISTINCT host FROM environments").host)
    assert hosts == {"../../etc", "/tmp/abs%2F.."}
    for p in results.rglob("*"):
        assert ".." not in p.relative_to(results).parts


# ------------------------------------------------------------------ secrets


@pytest.mark.fleet
@pytest.mark.slow
def test_secrets_never_reach_results_logs_or_errors(fleet: Any, tmp_path: Path) -> None:
    secrets = {"ansible_password": "S3cr3t-Pa55-word",
               "ansible_become_password": "B3come-R00t-pw",
               "ansible_ssh_private_key_passphrase": "Key-Phr4se-xyz"}
    good = {**fleet_host_vars(fleet, "fleet1"), **secrets, "harness_pythons": PY311}
    # a host that cannot be reached: its error message must not carry the secrets either
    dead = {**fleet_host_vars(fleet, "fleet2"), **secrets, "ansible_port": 1,
            "harness_pythons": PY311}
    inv = write_yaml_inventory(tmp_path / "inv.yml", {"fleet1": good, "deadhost": dead})
    results = tmp_path / "results"
    proc = harness("sweep", "-i", str(inv), "--known-hosts", str(fleet.known_hosts),
                   "--results", str(results), "-w", "cpu_bound", "-m", "threads",
                   home=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "deadhost" in proc.stderr
    out = proc.stdout + proc.stderr
    probe = harness("probe", "-i", str(inv), "--known-hosts", str(fleet.known_hosts), "--json",
                    home=tmp_path)
    out += probe.stdout + probe.stderr
    files = [p for p in results.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    for value in secrets.values():
        assert value not in out
        for p in files:
            assert value.encode() not in p.read_bytes(), p


# ------------------------------------------------------------------ agent temp dir, server


@pytest.mark.slow
def test_agent_workdir_is_private_and_removed_after_success_and_failure(
    tmp_path: Path
) -> None:
    workdir = tmp_path / "agent-wd"
    inventory = tmp_path / "local.ini"
    inventory.write_text(f"localhost ansible_connection=local harness_workdir={workdir} "
                         f"harness_pythons=\"{sys.executable} /no/such/python3\"\n")
    proc = subprocess.Popen([*HARNESS, "sweep", "-i", str(inventory), "--results",
                             str(tmp_path / "results"), "-w", "disk_io", "-m", "threads"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    modes = set()
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            modes.add(stat.S_IMODE(workdir.stat().st_mode))
            for p in workdir.iterdir():
                if p.is_dir():
                    modes.add(stat.S_IMODE(p.stat().st_mode))
        except OSError:
            pass
        time.sleep(0.02)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err[-2000:]  # /no/such/python3 failed, recorded
    assert "/no/such/python3" in err
    assert modes and modes <= {0o700}, modes
    assert not workdir.exists()


def test_latency_server_listens_on_loopback_only() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from workloads.net import LatencyServer
    finally:
        sys.path.remove(str(ROOT))
    server = LatencyServer(0.0, 16).start()
    try:
        port = server.port
        listening = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                for line in f.readlines()[1:]:
                    local, st = line.split()[1], line.split()[3]
                    addr, hexport = local.rsplit(":", 1)
                    if st == "0A" and int(hexport, 16) == port:
                        listening.append(addr)
        assert listening == ["0100007F"], listening  # 127.0.0.1, and nothing else
    finally:
        server.stop()
