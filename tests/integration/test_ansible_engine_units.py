"""The pure parts of the ansible engine: batching by machine, the !unsafe vars file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def test_the_run_script_stops_a_command_at_its_time_limit(tmp_path: Path) -> None:
    """The host-side watchdog: TERM at the limit, status 124 and a line on stderr, the
    pid file gone; a command within its limit keeps its own status and stdout."""
    from harness.engines.action_plugins.harness_agent import RUN_SCRIPT, TIMED_OUT

    def run(seconds: int, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["sh", "-c", RUN_SCRIPT, "harness", str(tmp_path), str(seconds),
                               "in.txt", *command], input="the plan\n", capture_output=True,
                              text=True, timeout=60)

    done = run(30, "sh", "-c", 'cat in.txt; exit 3')
    assert (done.returncode, done.stdout, done.stderr) == (3, "the plan\n", "")
    over = run(1, "sh", "-c", "echo started; exec sleep 30")
    assert over.returncode == TIMED_OUT
    assert over.stdout == "started\n"
    assert "stopped after 1 s (time limit)" in over.stderr
    assert not list(tmp_path.glob("*.pid")) and not (tmp_path / ".timeout").exists()
