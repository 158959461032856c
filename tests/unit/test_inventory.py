"""inventory.load_inventory against Ansible's own ``ansible-inventory --list``."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import InventoryError
from harness.plan.inventory import (
    REDACTED,
    Host,
    find_ansible_inventory,
    is_secret_var,
    load_inventory,
)

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES = ROOT / "inventories"
EXAMPLES = INVENTORIES / "examples"
GOOD = [
    EXAMPLES / "ranges" / "hosts.ini",
    EXAMPLES / "yaml" / "hosts.yml",
    EXAMPLES / "vars_dirs" / "hosts.ini",
    INVENTORIES / "lab.example.ini",
    INVENTORIES / "local.ini",
]
SECRET_VALUES = ("hunter2-secret", "s3cr3t-become")


def ansible_list(path: Path, limit: str | None = None) -> dict:
    exe = find_ansible_inventory()
    assert exe, "ansible-inventory must be installed for these tests"
    cmd = [exe, "--list", "-i", str(path)] + (["--limit", limit] if limit else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    return json.loads(out)


def redacted(hostvars: dict) -> dict:
    return {k: (REDACTED if is_secret_var(k, v) else v) for k, v in hostvars.items()}


@pytest.mark.parametrize("path", GOOD, ids=lambda p: str(p.relative_to(INVENTORIES)))
def test_hosts_and_vars_equal_ansible_inventory_list(path: Path) -> None:
    expected = ansible_list(path)["_meta"]["hostvars"]
    hosts = load_inventory(path)
    assert sorted(h.name for h in hosts) == sorted(expected)
    for host in hosts:
        assert dict(host.vars) == redacted(expected.get(host.name, {})), host.name


def test_ranges_children_and_vars() -> None:
    hosts = {h.name: h for h in load_inventory(EXAMPLES / "ranges" / "hosts.ini")}
    assert {f"node{i:02d}" for i in range(1, 7)} <= set(hosts)
    assert {"edge-a", "edge-b", "edge-c"} <= set(hosts)
    node = hosts["node05"]
    assert (node.user, node.port, node.connection) == ("other", 2200, "ssh")
    # [compute:vars] (child group) beats [cluster:vars] (parent), as in Ansible
    assert node.pythons == ("python3.12", "python3.13t")
    assert node.groups == ("cluster", "compute")
    assert node.key_file == os.path.expanduser("~/.ssh/id_lab")
    assert hosts["edge-b"].pythons == ("python3.11", "python3.12")  # comma-separated
    store = hosts["store1"]
    assert store.address == "10.1.0.5"
    assert store.pythons == ("/usr/bin/python3.11",)  # ansible_python_interpreter
    assert store.workdir == "/srv/harness"
    assert store.vars["harness_note"] == "cluster wide"


def test_yaml_inventory() -> None:
    hosts = {h.name: h for h in load_inventory(EXAMPLES / "yaml" / "hosts.yml")}
    assert set(hosts) == {
        "fast1.example",
        "fast2.example",
        "fast3.example",
        "slow.example",
        "localhost",
    }
    slow = hosts["slow.example"]
    assert (slow.address, slow.port, slow.user) == ("127.0.0.99", 2299, "root")
    assert slow.pythons == ("/opt/py/bin/python3",)
    assert slow.groups == ("lab", "slow")
    assert hosts["fast2.example"].pythons == ("python3.12", "python3.13t")
    assert hosts["localhost"].connection == "local"


def test_group_vars_and_host_vars_dirs() -> None:
    hosts = {h.name: h for h in load_inventory(EXAMPLES / "vars_dirs" / "hosts.ini")}
    assert hosts["web1"].port == 2022
    assert hosts["web1"].workdir == "/var/tmp/harness"
    assert hosts["web2"].user == "deploy"
    assert hosts["web2"].pythons == ("python3.11", "python3.12")
    assert hosts["db1"].address == "192.0.2.10"
    assert hosts["db1"].pythons == ("python3.13",)
    assert hosts["db1"].vars["env_name"] == "production"


def test_secrets_never_shown() -> None:
    hosts = load_inventory(EXAMPLES / "vars_dirs" / "hosts.ini")
    db1 = next(h for h in hosts if h.name == "db1")
    text = repr(hosts) + str(hosts) + repr(dict(db1.vars))
    for secret in SECRET_VALUES:
        assert secret not in text
    assert db1.vars["ansible_password"] == REDACTED
    assert db1.vars["ansible_become_password"] == REDACTED
    assert db1.secrets["ansible_password"] == "hunter2-secret"  # kept for the SSH transport


def test_local_default_inventory() -> None:
    (host,) = load_inventory(INVENTORIES / "local.ini")
    assert host.name == "localhost"
    assert host.connection == "local"
    assert host.is_local
    assert host.pythons == (sys.executable,)


def test_limit_is_ansible_pattern() -> None:
    path = EXAMPLES / "ranges" / "hosts.ini"
    expected = sorted(ansible_list(path, "compute:!node01")["_meta"]["hostvars"])
    got = [h.name for h in load_inventory(path, limit="compute:!node01")]
    assert sorted(got) == expected == [f"node{i:02d}" for i in range(2, 7)]
    assert [h.name for h in load_inventory(path, limit="store1")] == ["store1"]
    assert {h.name for h in load_inventory(path, limit="edge:storage")} == {
        "edge-a",
        "edge-b",
        "edge-c",
        "store1",
    }


def test_limit_matching_nothing() -> None:
    path = EXAMPLES / "ranges" / "hosts.ini"
    with pytest.raises(InventoryError) as err:
        load_inventory(path, limit="nosuchhost*")
    assert str(path) in str(err.value)
    assert "nosuchhost*" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("unclosed.ini", "ini parser"),
        ("broken.yml", "yaml parser"),
        ("winrm.ini", "winrm"),
    ],
)
def test_bad_inventories_one_line(name: str, needle: str) -> None:
    path = EXAMPLES / "bad" / name
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    message = str(err.value)
    assert message.startswith(str(path))
    assert needle in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="no such inventory"):
        load_inventory(tmp_path / "nope.ini")


def test_empty_inventory(tmp_path: Path) -> None:
    path = tmp_path / "empty.ini"
    path.write_text("# nothing\n")
    with pytest.raises(InventoryError, match="no hosts") as err:
        load_inventory(path)
    assert str(path) in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.ini"
    path.write_text("host1\n")
    path.chmod(0)
    with pytest.raises(InventoryError, match="not readable"):
        load_inventory(path)


def test_secrets_not_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text("h1 ansible_password=topsecret-pw ansible_connection=docker\n")
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    assert "topsecret-pw" not in str(err.value)
    assert "docker" in str(err.value)


def test_found_beside_sys_executable_without_path(monkeypatch: pytest.MonkeyPatch) -> None:
    exe = find_ansible_inventory()
    assert exe is not None
    if Path(exe).parent != Path(sys.executable).parent:
        pytest.skip("ansible-inventory is not installed beside this interpreter")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    hosts = load_inventory(EXAMPLES / "yaml" / "hosts.yml")
    assert len(hosts) == 5


def test_missing_ansible_inventory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    path = INVENTORIES / "local.ini"
    with pytest.raises(InventoryError, match="ansible-inventory not found") as err:
        load_inventory(path)
    assert str(path) in str(err.value)


def test_host_is_immutable() -> None:
    (host,) = load_inventory(INVENTORIES / "local.ini")
    with pytest.raises(dataclasses.FrozenInstanceError):
        host.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        host.vars["x"] = 1  # type: ignore[index]
    assert hash(host) == hash(dataclasses.replace(host))


def test_host_refuses_bad_values() -> None:
    with pytest.raises(ValueError):
        Host(name="h", address="h", connection="winrm")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Host(name="h", address="h", port=70000)
    with pytest.raises(ValueError):
        Host(name="h", address="h", pythons=())
