"""A host whose sshd has no SFTP subsystem (hardened hosts drop ``Subsystem sftp``).

A fleet of its own: fleet1 is a normal host, fleet2 is started without the
``Subsystem sftp`` line (tests/fleet/fleet.py ``no_sftp``). The harness tries SFTP,
is refused, and sends the agent, and makes and removes its 0700 working directory,
over the command channel; it says so once per host and records the way in the
fingerprint (``transfer``). Everything runs against the real sshd daemons, and the
CLI as a user runs it: the installed ``harness`` in a subprocess.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml

from harness.errors import TransportError
from harness.plan.inventory import load_inventory
from harness.transport.ssh import SSHTransport
from harness.warehouse import Warehouse

pytestmark = pytest.mark.fleet

PY311 = "/root/.pyenv/versions/3.11.7/bin/python3.11"
_INSTALLED = Path(sys.executable).with_name("harness")
HARNESS = [str(_INSTALLED)] if _INSTALLED.exists() else [sys.executable, "-m", "harness"]
NOTE = "the host refuses SFTP"


@pytest.fixture(scope="module")
def nosftp_fleet(tmp_path_factory: pytest.TempPathFactory, fleet_module: Any
                 ) -> Iterator[Any]:
    """fleet1 (SFTP) and fleet2 (no SFTP subsystem), on loopback."""
    reason = fleet_module.sshd_available()
    if reason:
        pytest.skip(f"no sshd fleet: {reason}")
    directory = tmp_path_factory.mktemp("nosftp-fleet")
    started = fleet_module.up(directory, 2, no_sftp=("fleet2",))
    try:
        yield started
    finally:
        fleet_module.down(directory)


def host_vars(fleet: Any, name: str, **extra: Any) -> dict[str, Any]:
    h = fleet.host(name)
    return {"ansible_host": h.address, "ansible_port": h.port, "ansible_user": "root",
            "ansible_ssh_private_key_file": str(fleet.client_key),
            "harness_pythons": PY311, **extra}


def write_inventory(path: Path, hosts: dict[str, dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return path


def harness(*args: str, home: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOME=str(home), COLUMNS="250")
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def sftp_refusals(fleet: Any, name: str) -> int:
    log = Path(fleet.host(name).log_file).read_text(errors="replace")
    return log.count("subsystem request for sftp by user root failed")


def transport(fleet: Any, name: str, workdir: str | None = None) -> SSHTransport:
    (host,) = load_inventory(fleet.inventory, name)
    return SSHTransport(dataclasses.replace(host, workdir=workdir),
                        known_hosts=fleet.known_hosts)


class ModeWatcher:
    """Polls directories (and their subdirectories) for their modes while a test runs."""

    def __init__(self, *roots: Path) -> None:
        self.roots = roots
        self.modes: dict[Path, set[int]] = {r: set() for r in roots}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 600
        while not self._stop.is_set() and time.monotonic() < deadline:
            for root in self.roots:
                try:
                    self.modes[root].add(stat.S_IMODE(root.stat().st_mode))
                    for p in root.iterdir():
                        if p.is_dir() and not p.is_symlink():
                            self.modes[root].add(stat.S_IMODE(p.stat().st_mode))
                except OSError:
                    pass
            time.sleep(0.01)

    def __enter__(self) -> ModeWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# ------------------------------------------------------------------ the fleet itself


def test_the_fleet_host_really_has_no_sftp(nosftp_fleet: Any) -> None:
    h = nosftp_fleet.host("fleet2")
    assert not h.sftp and nosftp_fleet.host("fleet1").sftp
    assert "Subsystem" not in Path(h.config).read_text()
    client = paramiko.SSHClient()
    client.load_host_keys(str(nosftp_fleet.known_hosts))
    client.connect(h.address, port=h.port, username="root",
                   key_filename=str(nosftp_fleet.client_key), look_for_keys=False,
                   allow_agent=False, timeout=15)
    try:
        with pytest.raises(paramiko.SSHException):
            client.open_sftp()
    finally:
        client.close()


# ------------------------------------------------------------------ the transport


@pytest.mark.parametrize("wanted", [None, "missing/deeper/wd", "exists", "evil"])
def test_workdir_and_files_over_the_command_channel(
    nosftp_fleet: Any, tmp_path: Path, wanted: str | None
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "exists").mkdir(mode=0o755)
    workdir = {None: None, "missing/deeper/wd": str(tmp_path / "missing/deeper/wd"),
               "exists": str(tmp_path / "exists"),
               "evil": f"{tmp_path}/a; touch {marks}/w1 $(touch {marks}/w2) `touch {marks}/w3`"
                       f" 'q\" \n&& touch {marks}/w4 | x"}[wanted]
    blob = tmp_path / "blob.bin"
    data = bytes(range(256)) * 12289  # 3 MiB and a bit, every byte value
    blob.write_bytes(data)
    tool = tmp_path / "tool.sh"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    before_tmp = set(Path("/tmp").glob("harness.*"))
    with transport(nosftp_fleet, "fleet2", workdir) as t:
        assert (t.transfer, t.sftp_refused) == ("shell", "Channel closed")
        wd = Path(t.workdir)
        top = Path(t._created_top)
        assert stat.S_IMODE(wd.stat().st_mode) == 0o700
        if wanted is None:
            assert wd.parent == Path("/tmp") and wd.name.startswith("harness.")
            assert wd not in before_tmp and top == wd
        elif wanted == "exists":
            assert wd.parent == tmp_path / "exists" and wd.name.startswith("harness.")
        elif wanted == "missing/deeper/wd":
            assert (wd, top) == (tmp_path / "missing/deeper/wd", tmp_path / "missing")
        else:
            assert str(wd) == workdir  # made under its literal name
        remote = Path(t.put(blob, "blob.bin"))
        assert remote.read_bytes() == data
        assert stat.S_IMODE(remote.stat().st_mode) == 0o600
        script = Path(t.put(tool, "tool.sh"))
        assert stat.S_IMODE(script.stat().st_mode) == 0o700
        assert list(t.run([str(script)], timeout=30)) == ["hi"]
        remote = Path(t.put(tool, "blob.bin"))  # a second put replaces the file
        assert remote.read_bytes() == tool.read_bytes()
    assert not wd.exists() and not top.exists()
    assert sorted(p.name for p in marks.iterdir()) == []
    assert (tmp_path / "exists").is_dir() and list((tmp_path / "exists").iterdir()) == []
    if wanted == "evil":
        assert not (tmp_path / "a; touch ").exists()


def test_relative_workdir_is_taken_from_home_as_over_sftp(nosftp_fleet: Any) -> None:
    seen = {}
    for name in ("fleet1", "fleet2"):
        with transport(nosftp_fleet, name, "~/nosftp-rel/wd") as t:
            seen[name] = (t.transfer, t.workdir, t._created_top)
    assert seen["fleet1"][0] == "sftp" and seen["fleet2"][0] == "shell"
    assert seen["fleet1"][1:] == seen["fleet2"][1:]
    assert not Path(seen["fleet2"][2]).exists()


def test_an_impossible_workdir_is_one_error_and_leaves_nothing(
    nosftp_fleet: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    for name in ("fleet1", "fleet2"):  # over SFTP and over the command channel alike
        with pytest.raises(TransportError) as info:
            transport(nosftp_fleet, name, str(blocker / "wd"))
        message = str(info.value)
        assert message.startswith(f"{name}: cannot create a working directory: "), message
        assert "\n" not in message
    assert blocker.read_text() == "not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_closing_while_a_command_runs_kills_it_and_removes_the_workdir(
    nosftp_fleet: Any
) -> None:
    t = transport(nosftp_fleet, "fleet2")
    wd = Path(t.workdir)
    lines = t.run(["sh", "-c", "echo started; exec sleep 300"], timeout=120)
    assert next(lines) == "started"
    t.close()  # what an interrupted sweep does with the transports still open
    assert not wd.exists()
    ps = subprocess.run(["pgrep", "-f", f"{wd}"], capture_output=True, text=True)
    assert ps.stdout == ""


# ------------------------------------------------------------------ the CLI


@pytest.mark.slow
def test_sweep_measures_a_host_without_sftp_beside_a_normal_one(
    nosftp_fleet: Any, tmp_path: Path
) -> None:
    wd = {n: tmp_path / f"wd-{n}" for n in ("fleet1", "fleet2")}
    inv = write_inventory(tmp_path / "inv.yml", {
        n: host_vars(nosftp_fleet, n, harness_workdir=str(wd[n])) for n in wd})
    results = tmp_path / "results"
    refused = sftp_refusals(nosftp_fleet, "fleet2")
    with ModeWatcher(*wd.values()) as watcher:
        proc = harness("sweep", "-i", str(inv), "--known-hosts", str(nosftp_fleet.known_hosts),
                       "--results", str(results), "--profile", "quick",
                       "-w", "empty", "-m", "threads", "--dimension", "overhead",
                       home=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    notes = [line for line in proc.stderr.splitlines() if NOTE in line]
    assert len(notes) == 1 and notes[0].startswith("fleet2: "), notes
    assert sftp_refusals(nosftp_fleet, "fleet2") > refused  # it did try SFTP first
    envs = Warehouse(results).query(
        "SELECT host, status, probe->>'transfer' AS transfer FROM environments ORDER BY host")
    assert list(envs.host) == ["fleet1", "fleet2"]
    assert list(envs.status) == ["ok", "ok"]
    assert list(envs.transfer) == ["sftp", "shell"]
    cells = Warehouse(results).query(
        "SELECT e.host, count(*) AS n FROM cells c JOIN environments e USING (env_id) "
        "WHERE c.status = 'ok' GROUP BY e.host ORDER BY e.host")
    assert list(cells.host) == ["fleet1", "fleet2"] and (cells.n > 0).all()
    for name, path in wd.items():
        assert watcher.modes[path], f"{name}: the workdir was never seen"
        assert watcher.modes[path] <= {0o700}, (name, watcher.modes[path])
        assert not path.exists(), name


@pytest.mark.slow
def test_probe_and_noise_work_on_a_host_without_sftp(
    nosftp_fleet: Any, tmp_path: Path
) -> None:
    inv = write_inventory(tmp_path / "inv.yml", {
        n: host_vars(nosftp_fleet, n) for n in ("fleet1", "fleet2")})
    common = ["-i", str(inv), "--known-hosts", str(nosftp_fleet.known_hosts), "--json"]
    proc = harness("probe", *common, home=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["host"]: r for r in json.loads(proc.stdout)}
    assert rows["fleet2"]["error"] is None and rows["fleet2"]["env"]["usable_cpus"] >= 1
    assert {h: r["env"]["transfer"] for h, r in rows.items()} == {
        "fleet1": "sftp", "fleet2": "shell"}
    notes = [line for line in proc.stderr.splitlines() if NOTE in line]
    assert len(notes) == 1 and notes[0].startswith("fleet2: "), proc.stderr
    proc = harness("probe", "--noise", "0.3", *common, home=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = json.loads(proc.stdout)
    assert {r["host"] for r in records} == {"fleet1", "fleet2"}
    assert all(not r.get("error") for r in records), records
    assert sum(NOTE in line for line in proc.stderr.splitlines()) == 1


@pytest.mark.slow
def test_interrupted_sweep_removes_the_workdir_of_a_host_without_sftp(
    nosftp_fleet: Any, tmp_path: Path
) -> None:
    wd = tmp_path / "wd-fleet2"
    inv = write_inventory(tmp_path / "inv.yml", {
        "fleet2": host_vars(nosftp_fleet, "fleet2", harness_workdir=str(wd))})
    env = dict(os.environ, HOME=str(tmp_path), COLUMNS="250")
    proc = subprocess.Popen(
        [*HARNESS, "sweep", "-i", str(inv), "--known-hosts", str(nosftp_fleet.known_hosts),
         "--results", str(tmp_path / "results"), "--profile", "quick", "-w", "cpu_bound",
         "-m", "threads"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        agent_seen = False
        while time.monotonic() < deadline and proc.poll() is None and not agent_seen:
            ps = subprocess.run(["pgrep", "-f", f"{wd}/agent.pyz run"], capture_output=True,
                                text=True)
            agent_seen = bool(ps.stdout.strip())
            time.sleep(0.05)
        assert agent_seen, "the agent never started"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode != 0 and "Traceback" not in err, err[-3000:]
    assert "--resume" in err or "--resume" in out, err[-3000:]
    assert not wd.exists()
    ps = subprocess.run(["pgrep", "-f", str(wd)], capture_output=True, text=True)
    assert ps.stdout == ""


@pytest.mark.slow
def test_the_ansible_engine_copes_with_a_host_without_sftp(
    nosftp_fleet: Any, tmp_path: Path
) -> None:
    """Ansible's own transfer (ssh_transfer_method smart: sftp, scp, then piped) reaches
    the host; the harness leaves it to Ansible."""
    known = nosftp_fleet.known_hosts
    common = f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes"
    inv = write_inventory(tmp_path / "inv.yml", {
        n: host_vars(nosftp_fleet, n, ansible_connection="ssh",
                     ansible_ssh_common_args=common) for n in ("fleet1", "fleet2")})
    results = tmp_path / "results"
    proc = harness("sweep", "--engine", "ansible", "-i", str(inv), "--known-hosts",
                   str(nosftp_fleet.known_hosts), "--results", str(results),
                   "--profile", "quick", "-w", "empty", "-m", "threads",
                   "--dimension", "overhead", home=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    envs = Warehouse(results).query("SELECT host, status FROM environments ORDER BY host")
    assert list(envs.host) == ["fleet1", "fleet2"] and list(envs.status) == ["ok", "ok"]
