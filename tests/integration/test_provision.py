"""``harness provision`` on the loopback sshd fleet, run as a user would.

Real ansible-runner and ansible-playbook over real sshd; the builds are the ones
cached under /var/cache/harness (``scripts/test`` builds 3.13 and 3.13t there once per
machine, with playbooks/files/build-python.sh; a cold cache makes the first test build
them, a few minutes each). Each host gets its own prefix under the test's tmp dir
(``harness_provision_prefix``): the fleet's hosts share one login home.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.paths import PLAYBOOKS_DIR
from harness.warehouse import Warehouse
from tests.mounts import tmpfs

BUILD_ROOT = "/var/cache/harness"
VERSIONS = ("3.13", "3.13t")


def harness(*args: str | Path, cwd: Path, timeout: float = 1800) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def inventory(fleet: Any, path: Path, prefixes: dict[str, Path], count: int = 3) -> Path:
    """The first ``count`` fleet hosts, each with its own prefix and ``provisioned``."""
    lines = ["[lab]"]
    for host in fleet.hosts[:count]:
        lines.append(f"{host.name} ansible_host={host.address} ansible_port={host.port} "
                     f"harness_provision_prefix={prefixes[host.name]} "
                     f"harness_pythons=provisioned harness_cpus={host.cpus}")
    lines += ["", "[lab:vars]", "ansible_user=root", "ansible_connection=ssh",
              f"ansible_ssh_private_key_file={fleet.client_key}",
              f"ansible_ssh_common_args='-o UserKnownHostsFile={fleet.known_hosts} "
              "-o StrictHostKeyChecking=yes'", ""]
    path.write_text("\n".join(lines))
    return path


def provision(inv: Path, *args: str, cwd: Path) -> tuple[int, dict[str, Any], str]:
    done = harness("provision", "-i", inv, "--build-root", BUILD_ROOT, "--json", *args,
                   cwd=cwd)
    try:
        out = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"no JSON (exit {done.returncode}): {done.stdout[-2000:]} "
                    f"{done.stderr[-2000:]}")
    return done.returncode, out, done.stderr


def statuses(out: dict[str, Any]) -> dict[str, str]:
    return {h["host"]: h["status"] for h in out["hosts"]}


@pytest.fixture
def prefixes(fleet: Any, tmp_path: Path) -> dict[str, Path]:
    return {h.name: tmp_path / "hosts" / h.name / "pythons" for h in fleet.hosts}


@pytest.mark.fleet
@pytest.mark.slow
def test_provision_two_builds_to_three_hosts_then_sweep(
        fleet: Any, tmp_path: Path, prefixes: dict[str, Path]) -> None:
    inv = inventory(fleet, tmp_path / "lab.ini", prefixes)
    hosts = [h.name for h in fleet.hosts[:3]]
    args = [a for v in VERSIONS for a in ("--python", v)]

    rc, first, err = provision(inv, *args, cwd=tmp_path)
    assert rc == 0, (first, err)
    # One platform (the fleet is this machine): each version built once, on the controller.
    assert sorted((b["builder"], b["version"]) for b in first["builds"]) == [
        ("localhost", "3.13"), ("localhost", "3.13t")]
    assert statuses(first) == dict.fromkeys(hosts, "changed")
    for h in first["hosts"]:
        assert sorted(h["installed"]) == list(VERSIONS)
        for version, manifest in h["installed"].items():
            root = prefixes[h["host"]] / version
            assert manifest["path"] == str(root)
            assert manifest["kind"] == ("free-threaded" if version.endswith("t") else "standard")
            assert manifest["source"].startswith("debian:python3.13_")
            assert len(manifest["source_sha256"]) == 64 and len(manifest["archive_sha256"]) == 64
            assert json.loads((root / "harness-python.json").read_text()) == manifest
            # The unpacked tree runs from where it is, as the build it claims to be.
            check = subprocess.run(
                [manifest["python"], "-I", "-c", "import sys, sysconfig; print(sys.prefix, "
                 "bool(sysconfig.get_config_var('Py_GIL_DISABLED')), sys._is_gil_enabled())"],
                capture_output=True, text=True, env={**os.environ, "PYTHON_GIL": "0"},
                timeout=60, check=True)
            ft = version.endswith("t")
            assert check.stdout.split() == [str(root), str(ft), str(not ft)]

    rc, second, err = provision(inv, *args, cwd=tmp_path)
    assert rc == 0, (second, err)
    assert statuses(second) == dict.fromkeys(hosts, "ok")
    assert [b["built"] for b in second["builds"]] == [False, False]

    listed = harness("provision", "-i", inv, "--list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert {h["host"]: sorted(h["installed"]) for h in json.loads(listed.stdout)["hosts"]} == (
        dict.fromkeys(hosts, list(VERSIONS)))

    # harness_pythons=provisioned: probe and a quick sweep find both builds on every host.
    probe = harness("probe", "-i", inv, "--known-hosts", fleet.known_hosts, "--json",
                    cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    found = {(r["host"], r["python"], r["env"]["free_threaded"]) for r in json.loads(probe.stdout)}
    assert found == {(h, str(prefixes[h] / v / "bin" / f"python{v}"), v.endswith("t"))
                     for h in hosts for v in VERSIONS}
    results = tmp_path / "results"
    sweep = harness("sweep", "-i", inv, "--known-hosts", fleet.known_hosts, "-p", "quick",
                    "-w", "cpu_bound", "-m", "threads", "-r", results, "--json", cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    w = Warehouse(results)
    sid = w.resolve_sweep_id("latest")
    overhead = w.query("SELECT host, std_python, ft_python, workload, basis, ft_over_std, "
                       "ratio_ci_low, ratio_ci_high FROM ft_overhead WHERE sweep_id = ? "
                       "ORDER BY host", [sid])
    assert list(overhead["host"]) == hosts
    assert set(overhead["workload"]) == {"cpu_bound"}
    assert set(overhead["basis"]) == {"per_iteration"}  # cpu_bound is sized per build
    for r in overhead.to_dict("records"):
        assert r["std_python"].endswith("/3.13/bin/python3.13")
        assert r["ft_python"].endswith("/3.13t/bin/python3.13t")
        assert 0 < r["ratio_ci_low"] <= r["ft_over_std"] <= r["ratio_ci_high"]

    # --remove takes one build away from every host.
    rc, removed, err = provision(inv, "--remove", "3.13", cwd=tmp_path)
    assert rc == 0, (removed, err)
    assert {h["host"]: sorted(h["installed"]) for h in removed["hosts"]} == dict.fromkeys(
        hosts, ["3.13t"])
    assert not (prefixes[hosts[0]] / "3.13").exists()


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory that is a read-only tmpfs mount (root and CAP_SYS_ADMIN needed)."""
    with tmpfs(tmp_path / "ro", "ro,size=1m") as path:
        yield path


@pytest.mark.fleet
@pytest.mark.slow
def test_a_read_only_prefix_fails_that_host_only(
        fleet: Any, tmp_path: Path, prefixes: dict[str, Path], read_only_dir: Path) -> None:
    hosts = [h.name for h in fleet.hosts[:3]]
    prefixes = {**prefixes, hosts[1]: read_only_dir / "pythons"}
    inv = inventory(fleet, tmp_path / "lab.ini", prefixes)
    rc, out, err = provision(inv, "--python", "3.13t", cwd=tmp_path)
    assert rc == 1, (out, err)
    assert statuses(out) == {hosts[0]: "changed", hosts[1]: "failed", hosts[2]: "changed"}
    failed = next(h for h in out["hosts"] if h["status"] == "failed")
    assert "Read-only file system" in failed["reason"], failed
    assert (prefixes[hosts[2]] / "3.13t" / "harness-python.json").is_file()
    # The table names the host and its reason too.
    text = harness("provision", "-i", inv, "--build-root", BUILD_ROOT, "--python", "3.13t",
                   cwd=tmp_path)
    assert text.returncode == 1
    assert hosts[1] in text.stdout and "Read-only" in text.stdout


@pytest.mark.fleet
@pytest.mark.slow
def test_plain_ansible_playbook_runs_the_playbook(
        fleet: Any, tmp_path: Path, prefixes: dict[str, Path]) -> None:
    inv = inventory(fleet, tmp_path / "lab.ini", prefixes, count=2)
    playbook_bin = Path(sys.executable).parent / "ansible-playbook"
    extra = json.dumps({"harness_provision_pythons": ["3.13t"],
                        "harness_provision_build_root": BUILD_ROOT})
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "False"}
    for run in (1, 2):
        done = subprocess.run([str(playbook_bin), "-i", str(inv),
                               str(PLAYBOOKS_DIR / "provision-python.yml"), "-e", extra],
                              capture_output=True, text=True, timeout=1800, cwd=tmp_path,
                              env=env, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        recap = done.stdout[done.stdout.rindex("PLAY RECAP"):]
        for host in fleet.hosts[:2]:
            line = next(ln for ln in recap.splitlines() if ln.startswith(host.name))
            assert "failed=0" in line and "unreachable=0" in line
            if run == 2:
                assert "changed=0" in line, line
    for host in fleet.hosts[:2]:
        manifest = json.loads((prefixes[host.name] / "3.13t" / "harness-python.json").read_text())
        assert manifest["version"] == "3.13t" and manifest["py_gil_disabled"] is True


TARBALL_DIR = Path("/var/cache/harness/src")  # scripts/test fetches Debian's orig tarball here
TARBALL_BUILD_ROOT = "/var/cache/harness/from-tarball"


@pytest.mark.fleet
@pytest.mark.slow
def test_a_tarball_pushed_from_the_controller_builds_on_a_host(
        fleet: Any, tmp_path: Path, prefixes: dict[str, Path]) -> None:
    """--source tarball: the file goes from the controller to the group's first host
    (--build-on hosts), is built there (once per machine: its build root is cached
    outside the test's tmp dir), and the archive comes back and is installed."""
    tarballs = sorted(TARBALL_DIR.glob("python3.13_*.orig.tar.*"))
    tarballs = [t for t in tarballs if t.suffix != ".asc"]
    if not tarballs:
        pytest.skip(f"no CPython 3.13 source tarball in {TARBALL_DIR} (scripts/test fetches it)")
    inv = inventory(fleet, tmp_path / "lab.ini", prefixes, count=2)
    hosts = [h.name for h in fleet.hosts[:2]]
    done = harness("provision", "-i", inv, "--build-root", TARBALL_BUILD_ROOT, "--json",
                   "--python", "3.13", "--source", "tarball", "--from", tarballs[-1],
                   "--build-on", "hosts", cwd=tmp_path, timeout=3000)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    out = json.loads(done.stdout)
    ((builder, source),) = [(b["builder"], b["source"]) for b in out["builds"]]
    assert builder == hosts[0]
    assert source == f"tarball:{tarballs[-1].name}"
    assert statuses(out) == dict.fromkeys(hosts, "changed")
    assert (Path(TARBALL_BUILD_ROOT) / "sources" / tarballs[-1].name).is_file()  # pushed
    for h in out["hosts"]:
        manifest = h["installed"]["3.13"]
        assert manifest["source"] == f"tarball:{tarballs[-1].name}"
        assert manifest["kind"] == "standard" and manifest["py_gil_disabled"] is False


@pytest.mark.fleet
@pytest.mark.slow
def test_a_version_without_source_fails_every_host_with_the_reason(
        fleet: Any, tmp_path: Path, prefixes: dict[str, Path]) -> None:
    """Debian's trixie sources carry no python3.9: the controller's build fails before
    compiling, and each host says which build it lacks and why."""
    inv = inventory(fleet, tmp_path / "lab.ini", prefixes, count=2)
    rc, out, err = provision(inv, "--python", "3.9t", cwd=tmp_path)
    assert rc == 1, (out, err)
    assert "no Debian source package python3.9" in out["controller_failure"]
    assert statuses(out) == {h.name: "failed" for h in fleet.hosts[:2]}
    for h in out["hosts"]:
        assert "no build of 3.9t" in h["reason"] and "localhost failed" in h["reason"]
    assert not list(tmp_path.glob("hosts/*/pythons/3.9t"))


@pytest.mark.parametrize("args, message", [
    (["--python", "3.13tt"], "--python '3.13tt': a version looks like 3.13 or 3.13t"),
    (["--remove", "../etc"], "--remove '../etc': a version looks like 3.13 or 3.13t"),
    (["--list", "--python", "3.13"], "give --python VERSION (repeatable), or --list, or "
                                     "--remove VERSION: exactly one of them"),
    (["--python", "3.13", "--source", "url"], "--source url needs --from URL"),
    (["--python", "3.13", "--build-on", "moon"], "--build-on 'moon': controller or hosts"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = harness("provision", *args, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[0] == f"harness: error: {message}"
    assert "Traceback" not in done.stderr and done.stdout == ""
