"""``harness sweep --engine ansible`` against the loopback sshd fleet, run as a user would.

Every test runs the real CLI in a subprocess: real ansible-runner, real
ansible-playbook over real sshd, real DuckDB over the warehouse it wrote.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.warehouse import Warehouse

SMALL = ["--profile", "quick", "--workload", "cpu_bound", "--model", "threads"]
CELLS_SQL = (
    "SELECT e.host, e.python, m.workload, m.model, min(m.status) AS status "
    "FROM measurements m JOIN environments e USING (sweep_id, env_id) "
    "WHERE m.sweep_id = ? GROUP BY ALL ORDER BY ALL"
)
ENVS_SQL = "SELECT host, python, status, error FROM environments WHERE sweep_id = ? ORDER BY ALL"


def harness(*args: str | Path, cwd: Path, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def latest(results: Path) -> tuple[Warehouse, str]:
    w = Warehouse(results)
    return w, w.resolve_sweep_id("latest")


def rows(results: Path, sql: str) -> list[tuple[Any, ...]]:
    w, sid = latest(results)
    frame = w.query(sql, [sid])
    frame = frame.astype(object).where(frame.notna(), None)
    return [tuple(r) for r in frame.itertuples(index=False)]


def derived_inventory(fleet: Any, path: Path, *, replace: dict[str, str] | None = None,
                      extra: str = "") -> Path:
    """The fleet's inventory with some text replaced and lines added under [fleet:vars]."""
    text = fleet.inventory.read_text()
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    text = text.replace("[fleet:vars]\n", f"[fleet:vars]\n{extra}")
    path.write_text(text)
    return path


@pytest.mark.fleet
@pytest.mark.slow
def test_ansible_engine_lands_the_same_cells_as_ssh(fleet: Any, tmp_path: Path) -> None:
    ssh = harness("sweep", "-i", fleet.inventory, "--known-hosts", fleet.known_hosts, *SMALL,
                  "--results", tmp_path / "ssh", cwd=tmp_path)
    assert ssh.returncode == 0, ssh.stderr
    ans = harness("sweep", "-i", fleet.inventory, *SMALL, "--engine", "ansible",
                  "--forks", "3", "--results", tmp_path / "ansible", cwd=tmp_path)
    assert ans.returncode == 0, ans.stderr
    ssh_cells = rows(tmp_path / "ssh", CELLS_SQL)
    ans_cells = rows(tmp_path / "ansible", CELLS_SQL)
    expected = {(h.name, py, "cpu_bound", model) for h in fleet.hosts for py in h.pythons
                for model in ("sequential", "threads")}
    assert {r[:4] for r in ssh_cells} == expected
    assert ans_cells == ssh_cells  # same cells, all ok
    assert {r[4] for r in ans_cells} == {"ok"}
    envs = rows(tmp_path / "ansible", ENVS_SQL)
    assert [(h, p, s) for h, p, s, _ in envs] == [
        (h, p, s) for h, p, s, _ in rows(tmp_path / "ssh", ENVS_SQL)]
    # Every repeat is stored with a time, as with ssh; the matrix is printed.
    w, sid = latest(tmp_path / "ansible")
    frame = w.query("SELECT count(*) AS n, count(wall_s) AS timed FROM measurements "
                    "WHERE sweep_id = ? AND ok", [sid])
    assert int(frame["n"][0]) == int(frame["timed"][0]) > 0
    assert "CPU-bound" in ans.stdout
    # The fleet is one machine: the engine says it ran the hosts one after another.
    assert "same machine" in ans.stderr
    assert "Traceback" not in ans.stderr


@pytest.mark.fleet
@pytest.mark.slow
def test_unreachable_host_is_recorded_and_the_others_complete(fleet: Any, tmp_path: Path) -> None:
    fleet.stop("fleet1")
    try:
        out = harness("sweep", "-i", fleet.inventory, "--limit", "fleet1,fleet2", *SMALL,
                      "--engine", "ansible", "--results", tmp_path / "r", cwd=tmp_path)
    finally:
        fleet.start("fleet1")
    assert out.returncode == 1, out.stderr
    envs = {(h, p): (s, e) for h, p, s, e in rows(tmp_path / "r", ENVS_SQL)}
    status, error = envs[("fleet1", fleet.host("fleet1").pythons[0])]
    assert status == "failed"
    assert error.startswith("fleet1: unreachable (ansible):")
    assert "Connection refused" in error and "\n" not in error
    for py in fleet.host("fleet2").pythons:
        assert envs[("fleet2", py)] == ("ok", None)
    cells = rows(tmp_path / "r", CELLS_SQL)
    assert {(h, p) for h, p, *_ in cells} == {("fleet2", p) for p in fleet.host("fleet2").pythons}
    assert "fleet1: fleet1: unreachable (ansible)" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.fleet
@pytest.mark.slow
def test_missing_interpreter_is_that_hosts_failure(fleet: Any, tmp_path: Path) -> None:
    fleet3 = fleet.host("fleet3")
    good = fleet3.pythons[0]
    missing = "/nonexistent/bin/python3.99"
    workdir = tmp_path / "workdir"
    inventory = derived_inventory(
        fleet, tmp_path / "inventory.ini",
        replace={f'harness_pythons="{" ".join(fleet3.pythons)}"':
                 f'harness_pythons="{good} {missing}"'},
        extra=f"harness_workdir={workdir}\n")
    out = harness("sweep", "-i", inventory, "--limit", "fleet3", *SMALL, "--engine", "ansible",
                  "--results", tmp_path / "r", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    envs = {(h, p): (s, e) for h, p, s, e in rows(tmp_path / "r", ENVS_SQL)}
    assert envs[("fleet3", good)] == ("ok", None)
    assert envs[("fleet3", missing)] == (
        "failed", f"fleet3: interpreter {missing!r} not found")
    assert {(h, p, m) for h, p, _, m, _ in rows(tmp_path / "r", CELLS_SQL)} == {
        ("fleet3", good, "sequential"), ("fleet3", good, "threads")}
    # harness_workdir is honoured and the private dir made inside it is gone afterwards.
    assert workdir.is_dir() and list(workdir.iterdir()) == []


@pytest.mark.fleet
@pytest.mark.slow
def test_unknown_host_key_is_refused_unless_accepted(fleet: Any, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    inventory = derived_inventory(
        fleet, tmp_path / "inventory.ini",
        replace={str(fleet.known_hosts): str(known), "-o StrictHostKeyChecking=yes": ""})
    refused = harness("sweep", "-i", inventory, "--limit", "fleet1", *SMALL,
                      "--engine", "ansible", "--results", tmp_path / "r", cwd=tmp_path)
    assert refused.returncode == 1, refused.stderr
    ((host, _py, status, error),) = rows(tmp_path / "r", ENVS_SQL)
    assert (host, status) == ("fleet1", "failed")
    assert re.search(r"Host key verification failed|No \S+ host key is known", error), error
    assert known.read_text() == ""
    accepted = harness("sweep", "-i", inventory, "--limit", "fleet1", *SMALL,
                       "--engine", "ansible", "--accept-new-host-keys",
                       "--results", tmp_path / "r2", cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    # Recorded (hashed or not, as the system's ssh_config says) in the inventory's file.
    key = Path(f"{fleet.host('fleet1').host_key}.pub").read_text().split()[1]
    assert key in known.read_text()


@pytest.mark.parametrize("args, message", [
    (["--engine", "paramiko"], "--engine 'paramiko' is not an engine"),
    (["--engine", "ansible", "--forks", "0"], "--forks 0 is out of range"),
    (["--forks", "1001"], "--forks 1001 is out of range"),
])
def test_bad_engine_options_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    out = harness("sweep", *args, "--results", tmp_path / "r", cwd=tmp_path, timeout=120)
    assert out.returncode == 2
    assert f"harness: error: {message}" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.fleet
@pytest.mark.slow
def test_a_hosts_cells_are_stored_while_a_slower_host_still_runs(
        fleet: Any, tmp_path: Path) -> None:
    """fleet2's agent run is held until the test has seen fleet1's cells stored: it can
    go on only because the engine records a host's results as they arrive."""
    gate, opened = tmp_path / "gate", tmp_path / "opened"
    slow = tmp_path / "slow-python"
    # The agent probes straight away (``run +SECONDS``: hello and env, then it waits for
    # the line naming its plan); that line is held back until the gate opens (at most
    # 60 s).
    slow.write_text(
        "#!/bin/sh\n"
        '{ read -r plan; i=0; while [ ! -e "$GATE" ] && [ "$i" -lt 600 ]; do '
        "sleep 0.1; i=$((i+1)); done; "
        '[ -e "$GATE" ] && : > "$OPENED"; printf "%s\\n" "$plan"; } | '
        f'{fleet.host("fleet2").pythons[0]} "$@"\n'
        .replace("$GATE", str(gate)).replace("$OPENED", str(opened)))
    slow.chmod(0o755)
    fleet2 = fleet.host("fleet2")
    inventory = derived_inventory(
        fleet, tmp_path / "inventory.ini",
        replace={f'harness_pythons="{" ".join(fleet2.pythons)}"': f'harness_pythons="{slow}"'})
    results = tmp_path / "r"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "sweep", "-i", str(inventory), "--limit",
         "fleet1,fleet2", "--profile", "quick", "-w", "empty", "-m", "threads",
         "--dimension", "overhead", "--engine", "ansible", "--forks", "2",
         "--parallel-same-machine", "--results", str(results)],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # ends when the sweep ends (bounded by its own limits)
            seen.append(line)
            if line.startswith("fleet1 ") and "[2/2]" in line and not gate.exists():
                w = Warehouse(results)
                sid = w.resolve_sweep_id("latest")
                stored = w.query(CELLS_SQL, [sid])
                assert sorted(stored["host"]) == ["fleet1", "fleet1"], stored
                gate.touch()
        assert proc.wait(timeout=300) == 0, "".join(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The gate opened fleet2's run: fleet1's cells were stored while fleet2 was held.
    assert opened.exists(), "".join(seen)
    cells = rows(results, CELLS_SQL)
    assert sorted(h for h, *_ in cells) == ["fleet1"] * 2 + ["fleet2"] * 2


@pytest.mark.fleet
@pytest.mark.skipif(not Path("/usr/bin/sudo").exists(), reason="no sudo (scripts/test "
                    "installs it: apt-get install -y sudo)")
def test_ansible_engine_runs_under_become_with_sudo(fleet: Any, tmp_path: Path) -> None:
    """``ansible_become`` in the inventory: every command of the action runs through sudo
    (a wrapper logs each call), the agents started under it wait for their plans and
    run them."""
    log = tmp_path / "sudo.log"
    wrapper = tmp_path / "sudo-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "sudo $*" >> {log}\nexec /usr/bin/sudo "$@"\n')
    wrapper.chmod(0o755)
    inventory = derived_inventory(
        fleet, tmp_path / "inventory.ini",
        extra=("ansible_become=true\nansible_become_method=sudo\nansible_become_user=root\n"
               f"ansible_become_exe={wrapper}\n"))
    results = tmp_path / "r"
    done = harness("sweep", "-i", inventory, "--limit", "fleet1", "--profile", "quick", "-w",
                   "empty", "-m", "threads", "--dimension", "overhead", "--engine", "ansible",
                   "--results", results, cwd=tmp_path,
                   # the fleet logs in as root: without this Ansible skips sudo to root
                   env={"ANSIBLE_BECOME_ALLOW_SAME_USER": "True"})
    assert done.returncode == 0, done.stdout + done.stderr
    cells = rows(results, CELLS_SQL)
    assert [(h, w, m, s) for h, _, w, m, s in cells] == [
        ("fleet1", "empty", "sequential", "ok"), ("fleet1", "empty", "threads", "ok")]
    text = log.read_text()
    calls = text.split("sudo -H ")[1:]
    assert any('agent.pyz" run "+$wt"' in c for c in calls), text  # the probe's start
    assert any('4<>"$n.in"' in c for c in calls), text  # the run's handoff
