"""Per-host cost of a sweep on the real loopback sshd fleet: the working directory is made
and removed over SFTP (no shell command), a command's stdin can be fed while its lines
are read, and an environment is probed and run by one agent start (``run -``).

The remote commands a host ran are counted from its sshd's own log (LogLevel VERBOSE
logs "Starting session: command ..." for every exec request).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.plan.inventory import Host, load_inventory
from harness.remote.bundle import build_agent
from harness.remote.session import AgentSession
from harness.transport.base import CommandInput
from harness.transport.local import LocalTransport
from harness.transport.ssh import SSHTransport
from harness.warehouse import Warehouse

pytestmark = pytest.mark.fleet
PY = "/root/.pyenv/versions/3.11.7/bin/python3.11"
ECHO = ("import sys\nprint('ready', flush=True)\n"
        "print(sys.stdin.read().upper(), flush=True)\n")


@pytest.fixture(scope="module")
def hosts(fleet: Any) -> dict[str, Host]:
    return {h.name: h for h in load_inventory(fleet.inventory)}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_agent(tmp_path_factory.mktemp("agent"))


def connect(host: Host, fleet: Any, tmp_path: Path) -> SSHTransport:
    return SSHTransport(host, known_hosts=fleet.known_hosts, connect_timeout=10,
                        user_known_hosts=tmp_path / "user_known_hosts")


class SessionLog:
    """The sessions one fleet host's sshd started since this object was made."""

    def __init__(self, fleet: Any, name: str) -> None:
        self.path = Path(fleet.host(name).log_file)
        self.offset = self.path.stat().st_size

    def sessions(self) -> list[str]:
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            text = log.read().decode(errors="replace")
        return [line.split("Starting session: ", 1)[1].split(" for ")[0]
                for line in text.splitlines() if "Starting session: " in line]


class CountingTransport:
    """A real transport that remembers the argv of every command it was asked to run."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.workdir = inner.workdir
        self.commands: list[list[str]] = []

    def put(self, local: Path, name: str) -> str:
        return str(self.inner.put(local, name))

    def run(self, argv: Sequence[str], **kw: Any) -> Iterator[str]:
        self.commands.append([str(a) for a in argv])
        return self.inner.run(argv, **kw)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> CountingTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def empty_plan() -> dict[str, Any]:
    cell = {"cell_id": "c1", "workload": "empty", "implementation": "empty",
            "model": "sequential", "workers": 1, "params": {"tasks": 5}, "warmups": 0,
            "repeats": 1, "timeout_s": 60}
    return {"protocol": 2, "keepalive_s": 5, "cells": [cell]}


@pytest.mark.parametrize("kind", ["ssh", "local"])
def test_command_input_is_fed_while_lines_are_read(
    kind: str, fleet: Any, hosts: dict[str, Host], tmp_path: Path
) -> None:
    transport: Any = (connect(hosts["fleet2"], fleet, tmp_path) if kind == "ssh"
                      else LocalTransport())
    with transport as t:
        stdin = CommandInput()
        lines = t.run([PY, "-c", ECHO], timeout=30, stdin=stdin)
        assert next(lines) == "ready"  # the command waits for its input only now
        stdin.extend(5.0)
        stdin.write(b"plan ")
        stdin.write(b"text")
        stdin.close()
        assert list(lines) == ["PLAN TEXT"]
        # without a CommandInput a command's stdin is empty (it never waits for it)
        assert list(t.run([PY, "-c", ECHO], timeout=30)) == ["ready", ""]


def test_workdir_is_made_and_removed_without_a_shell_command(
    fleet: Any, hosts: dict[str, Host], tmp_path: Path
) -> None:
    log = SessionLog(fleet, "fleet3")
    with connect(hosts["fleet3"], fleet, tmp_path) as t:
        workdir = t.workdir
        assert workdir.startswith("/tmp/harness.")
    assert log.sessions() == ["subsystem 'sftp'"]
    with connect(hosts["fleet3"], fleet, tmp_path) as t:
        assert list(t.run(["sh", "-c", f"test -e {workdir} || echo gone"], timeout=10)) \
            == ["gone"]
        # a tree with files and subdirectories goes too (over SFTP, still no shell)
        list(t.run(["sh", "-c", "mkdir -p a/b/c && touch a/b/c/f a/g && ln -s / a/root"],
                   timeout=10))
        second = t.workdir
        before = len(log.sessions())
    assert len(log.sessions()) == before
    with connect(hosts["fleet3"], fleet, tmp_path) as t:
        assert list(t.run(["sh", "-c", f"test -e {second} || echo gone"], timeout=10)) \
            == ["gone"]


def test_probe_then_run_is_one_agent_start(
    fleet: Any, hosts: dict[str, Host], agent: Path, tmp_path: Path
) -> None:
    log = SessionLog(fleet, "fleet2")
    with CountingTransport(connect(hosts["fleet2"], fleet, tmp_path)) as t:
        session = AgentSession(t, agent, "fleet2")  # type: ignore[arg-type]
        env = session.probe(PY, keep=True)
        assert env["usable_cpus"] >= 1
        msgs = list(session.run(PY, empty_plan(), timeout=120))
        kinds = [m["type"] for m in msgs]
        assert kinds[-1] == "eof" and msgs[-1]["cells"] == 1
        assert [m["status"] for m in msgs if m["type"] == "cell_done"] == ["ok"]
        assert "hello" not in kinds and "env" not in kinds  # those came with the probe
        assert t.commands == [[PY, session.agent_path, "run", "-"]]
        # a run with another plan (or after a release) starts a new agent from a plan file
        msgs = list(session.run(PY, empty_plan(), timeout=120))
        assert msgs[-1] == {"type": "eof", "cells": 1}
        assert t.commands[1][2:] == ["run", f"{t.workdir}/plan-1.json"]
    assert log.sessions().count("command") == 2


def test_a_released_agent_exits_by_itself(
    fleet: Any, hosts: dict[str, Host], agent: Path, tmp_path: Path
) -> None:
    log = SessionLog(fleet, "fleet1")
    with CountingTransport(connect(hosts["fleet1"], fleet, tmp_path)) as t:
        session = AgentSession(t, agent, "fleet1")  # type: ignore[arg-type]
        session.probe(PY, keep=True)
        session.release()  # an empty plan: the agent says eof and exits 0
        session.release()  # idempotent
        running = list(t.run(["sh", "-c", f"pgrep -f '{t.workdir}/[a]gent.pyz' || true"],
                             timeout=10))
        assert running == []
        # the plain probe (harness probe) is still one agent start that ends by itself
        assert session.probe(PY)["usable_cpus"] == 1
    # probe, pgrep, probe: no kill command was needed
    assert log.sessions().count("command") == 3


@pytest.mark.slow
def test_fleet_sweep_starts_one_agent_per_environment(fleet: Any, tmp_path: Path) -> None:
    names = [h.name for h in fleet.hosts]
    logs = {n: SessionLog(fleet, n) for n in names}
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "sweep", "--inventory", str(fleet.inventory),
         "--known-hosts", str(fleet.known_hosts), "--results", str(results),
         "--profile", "quick", "--parallel-same-machine", "-w", "empty", "-m", "threads",
         "--dimension", "overhead"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, COLUMNS="200"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    envs = Warehouse(results).query("SELECT host, status FROM environments")
    assert (envs.status == "ok").all()
    per_host = envs.groupby("host").size().to_dict()
    for name in names:
        # one agent start per environment; the workdir came and went over SFTP
        assert logs[name].sessions().count("command") == per_host[name], name
    cells = Warehouse(results).query("SELECT count(*) AS n FROM cells").n[0]
    assert cells == 2 * len(envs)  # a sequential baseline and threads, per environment
