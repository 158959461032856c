"""The ansible engine's parts without Ansible: batching by machine, the !unsafe vars
file, the host-side scripts of its action (with a stand-in agent) and a waiting agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.engines.ansible import machine_batches
from harness.engines.playbooks import flow_yaml


def test_hosts_of_one_machine_land_in_different_batches() -> None:
    machine_of = {"a1": ("m1", "b"), "a2": ("m1", "b"), "a3": ("m1", "b"),
                  "b1": ("m2", "b"), "c1": None}
    batches = machine_batches(["a1", "b1", "a2", "c1", "a3"], machine_of, parallel=False)
    assert batches == [["a1", "b1", "c1"], ["a2"], ["a3"]]
    assert machine_batches(["a1", "a2"], machine_of, parallel=True) == [["a1", "a2"]]
    assert machine_batches([], machine_of, parallel=False) == []


def test_a_reboot_is_another_machine() -> None:
    machine_of = {"x": ("m1", "boot1"), "y": ("m1", "boot2")}
    assert machine_batches(["x", "y"], machine_of, parallel=False) == [["x", "y"]]


def _as_ansible_sees_it(vars_text: str, tmp_path: Path) -> Any:
    """Load ``vars_text`` as a play's vars_files and write back what the play sees."""
    (tmp_path / "vars.yml").write_text(vars_text)
    out = tmp_path / "seen.json"
    (tmp_path / "play.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n"
        f"  vars_files: [{tmp_path / 'vars.yml'}]\n"
        "  tasks:\n    - ansible.builtin.copy:\n"
        "        content: '{{ harness_engine | to_json }}'\n"
        f"        dest: {out}\n")
    playbook = Path(sys.executable).parent / "ansible-playbook"
    done = subprocess.run(
        [str(playbook), "-i", "localhost,", "-c", "local", str(tmp_path / "play.yml")],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
             "ANSIBLE_PYTHON_INTERPRETER": sys.executable})
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


def test_vars_file_strings_are_never_templated(tmp_path: Path) -> None:
    data = {"harness_engine": {"h{{1}}": {
        "pythons": ["/opt/{{ 6 * 7 }}/py", "python3 'x' \"y\" \\ ü {% raw %}"],
        "workdir": None, "timeout": 30, "ok": True}}}
    assert _as_ansible_sees_it(flow_yaml(data, unsafe=True), tmp_path) == data["harness_engine"]
    # The same values as plain YAML would be templated: the tags are what protects them.
    plain = {"harness_engine": {"h": {"pythons": ["/opt/{{ 6 * 7 }}/py"]}}}
    assert _as_ansible_sees_it(json.dumps(plain), tmp_path) == {"h": {"pythons": ["/opt/42/py"]}}


_FAKE_AGENT = """#!/bin/sh
# Stands in for `python agent.pyz run +SECONDS` ($1 = agent.pyz, $2 = run, $3 = +SECONDS):
# the file "mode" beside this script says what it does.
mode=$(cat "$(dirname "$0")/mode")
case "$mode" in
  slow-probe) exec sleep 30 ;;
  dies) echo '{"type": "hello"}'; echo "it broke" >&2; exit 3 ;;
esac
echo '{"type": "hello"}'; echo "{\\"type\\": \\"env\\", \\"wait\\": \\"$3\\"}"
read -r plan; echo "stderr of the agent" >&2
case "$mode" in
  slow-run) echo started; exec sleep 30 ;;
esac
cat "$plan"; echo; echo '{"type": "eof"}'; exit 5
"""


def _start(tmp: Path, mode: str, seconds: int = 30, directory: str = "",
           name: str = "a1") -> subprocess.CompletedProcess:
    from harness.engines.action_plugins.harness_agent import START_SCRIPT

    fake = tmp / "fake-python"
    if not fake.exists():
        fake.write_text(_FAKE_AGENT)
        fake.chmod(0o755)
    (tmp / "mode").write_text(mode)
    return subprocess.run(["sh", "-c", START_SCRIPT, "harness", str(tmp / "work"), directory,
                           str(seconds), "3600", name, str(fake)],
                          input=b"AGENT" if not directory else b"", capture_output=True,
                          timeout=60)


@pytest.fixture
def stop_after(tmp_path: Path) -> Iterator[None]:
    """After the test, whatever happened: STOP in every private dir it made (the agents
    left waiting are stopped, the dirs removed)."""
    yield
    from harness.engines.action_plugins.harness_agent import STOP_SCRIPT

    for directory in (tmp_path / "work").glob("harness.*"):
        subprocess.run(["sh", "-c", STOP_SCRIPT, "harness", str(directory)], timeout=60)


def _handoff(directory: str, seconds: int, name: str = "a1",
             plan: str = '{"cells": []}') -> subprocess.CompletedProcess:
    from harness.engines.action_plugins.harness_agent import HANDOFF_SCRIPT

    return subprocess.run(["sh", "-c", HANDOFF_SCRIPT, "harness", directory, str(seconds),
                           name], input=plan.encode(), capture_output=True, timeout=60)


def test_a_started_agent_probes_waits_and_runs_the_plan_handed_to_it(
        tmp_path: Path, stop_after: None) -> None:
    """START makes the private dir (the agent from stdin), prints it and the agent's
    first two lines and leaves the agent waiting; HANDOFF gives it the plan and prints
    the rest of its output up to ``harness-rc STATUS``; a second interpreter's agent
    starts in the same dir; STOP stops the one left waiting and removes the dir."""
    from harness.engines.action_plugins.harness_agent import STOP_SCRIPT, _split_status

    started = _start(tmp_path, "ok")
    assert started.returncode == 0, started.stderr
    first, hello, env, *rest = started.stdout.decode().splitlines()
    assert first.startswith("harness-dir " + str(tmp_path / "work" / "harness."))
    directory = first.split(" ", 1)[1]
    assert (Path(directory) / "agent.pyz").read_bytes() == b"AGENT"
    assert oct(Path(directory).stat().st_mode & 0o777) == "0o700"
    assert (hello, env, rest) == ('{"type": "hello"}', '{"type": "env", "wait": "+3600"}', [])
    second = _start(tmp_path, "ok", directory=directory, name="a2")
    assert second.returncode == 0 and second.stdout.decode().count("\n") == 2
    assert len(list(Path(directory).glob("agent-*.pid"))) == 2  # both waiting

    done = _handoff(directory, 30, plan='{"cells": [1]}')
    assert done.returncode == 0, done.stderr
    body, status = _split_status(done.stdout.decode())
    assert (body, status) == ('{"cells": [1]}\n{"type": "eof"}\n', 5)
    assert b"stderr of the agent" in done.stderr
    assert [p.name for p in Path(directory).glob("agent-*.pid")] == ["agent-a2.pid"]
    gone = _handoff(directory, 30)  # a1 ran already: nothing waits under that name
    assert gone.returncode == 125 and b"no longer waiting" in gone.stderr

    stop = subprocess.run(["sh", "-c", STOP_SCRIPT, "harness", directory], timeout=60)
    assert stop.returncode == 0 and not Path(directory).exists()


def test_the_host_keeps_the_time_limits_of_start_and_handoff(
        tmp_path: Path, stop_after: None) -> None:
    """A probe over its limit is killed (124, a line on stderr); an agent that ends
    instead of waiting gives its status and stderr; a run over its limit is stopped
    (TERM) with 124 and what it printed before."""
    from harness.engines.action_plugins.harness_agent import TIMED_OUT

    slow = _start(tmp_path, "slow-probe", seconds=1)
    assert slow.returncode == TIMED_OUT
    assert b"stopped after 1 s (time limit)" in slow.stderr
    directory = slow.stdout.decode().splitlines()[0].split(" ", 1)[1]
    assert not list(Path(directory).glob("*.pid")) and not (Path(directory) / ".timeout").exists()

    dies = _start(tmp_path, "dies", directory=directory, name="a2")
    assert dies.returncode == 3
    assert dies.stdout.decode().splitlines() == ['{"type": "hello"}', "harness-rc 3"]
    assert b"it broke" in dies.stderr

    assert _start(tmp_path, "slow-run", directory=directory, name="a3").returncode == 0
    over = _handoff(directory, 1, name="a3")
    assert over.returncode == TIMED_OUT
    assert over.stdout.decode().startswith("started\n")
    assert b"stopped after 1 s (time limit)" in over.stderr
    assert not list(Path(directory).glob("*.pid")) and not (Path(directory) / ".timeout").exists()


def test_a_waiting_agent_gives_up_when_no_plan_comes(tmp_path: Path) -> None:
    """``agent.pyz run +SECONDS``: hello and env at once, then at most SECONDS for the
    line naming its plan; none: an error line, eof and status 2 (it never hangs)."""
    from harness.remote.bundle import build_agent

    agent = build_agent(tmp_path / "agent")
    quiet = subprocess.Popen(["sleep", "30"], stdout=subprocess.PIPE)  # stdin kept open
    try:
        done = subprocess.run([sys.executable, str(agent), "run", "+1"], stdin=quiet.stdout,
                              capture_output=True, text=True, timeout=60)
    finally:
        quiet.kill()
        quiet.wait()
    kinds = [json.loads(line)["type"] for line in done.stdout.splitlines()]
    assert (done.returncode, kinds) == (2, ["hello", "env", "error", "eof"])
    assert "no plan came within 1 s" in done.stdout
    plan = tmp_path / "plan.json"
    plan.write_text('{"protocol": 3, "cells": []}')
    fed = subprocess.run([sys.executable, str(agent), "run", "+30"], input=f"{plan}\n",
                         capture_output=True, text=True, timeout=60)
    assert fed.returncode == 0, fed.stdout
    assert [json.loads(x)["type"] for x in fed.stdout.splitlines()] == ["hello", "env", "eof"]


def test_a_started_agent_outlives_the_terminal_its_command_ran_in(
        tmp_path: Path, stop_after: None) -> None:
    """A command run in a terminal (ssh -tt, sudo's use_pty) ends with a hangup of its
    session; the agent it leaves waiting ignores it and still runs the plan."""
    import pty

    first = _start(tmp_path, "ok")
    directory = first.stdout.decode().splitlines()[0].split(" ", 1)[1]
    from harness.engines.action_plugins.harness_agent import START_SCRIPT

    pid, master = pty.fork()
    if pid == 0:  # the child: START in the terminal's session, as its leader
        os.execvp("sh", ["sh", "-c", START_SCRIPT, "harness", "", directory, "30", "3600",
                         "a2", str(tmp_path / "fake-python")])
    seen = b""
    try:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(master)  # the hangup
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert b'"type": "env"' in seen
    done = _handoff(directory, 30, name="a2", plan='{"cells": [2]}')
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith('{"cells": [2]}\n')
