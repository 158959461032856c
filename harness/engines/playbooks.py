"""The playbooks the ansible engine hands ansible-runner, and running them.

- Their texts: the probe task, the run task (looped over a host's interpreters) and
  the cleanup task, each one ``harness_agent`` action
  (:mod:`harness.engines.action_plugins.harness_agent`: no Ansible module runs on the
  hosts); plays use the ``free`` strategy, so a host goes on (and its results come
  back) without waiting for the slowest one.
- The vars files, where every string is tagged ``!unsafe`` (:func:`unsafe_yaml`).
- :class:`PlaybookRunner`: runs a playbook through ``ansible_runner.run`` from one
  sweep's private directory, with host keys checked and harness's action plugins on
  Ansible's path, and keeps track of the temp dirs the playbooks create on the hosts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from harness.engines.action_plugins import ACTION_PLUGIN_DIR
from harness.errors import HarnessError
from harness.formatting import one_line
from harness.plan.inventory import find_ansible_inventory
from harness.remote.session import PROBE_TIMEOUT_S


class PlaybookOptions(Protocol):
    """What a playbook run needs of its command's options (``SweepOptions`` has it)."""

    @property
    def inventory(self) -> Path: ...
    @property
    def limit(self) -> str | None: ...
    @property
    def forks(self) -> int: ...
    @property
    def accept_new_host_keys(self) -> bool: ...
    @property
    def known_hosts(self) -> Path | None: ...

# Seconds added to every whole-playbook bound (ansible start-up, connections, copies).
PLAYBOOK_SLACK_S = 600.0
CONNECT_TIMEOUT_S = 15
# Seconds a task may run beyond the time limit its host keeps itself (the watchdog's
# TERM-then-KILL grace and the transfer of the output): Ansible's own backstop.
TASK_SLACK_S = 60

_PLAY_VARS: dict[str, Any] = {"harness_me": "{{ harness_engine[inventory_hostname] }}"}

_CLEANUP_TASK: dict[str, Any] = {
    "name": "harness cleanup",
    "harness_agent": {"step": "cleanup", "dir": "{{ harness_me.dir }}"},
}

# Phase 1, per host, one task: a private temp dir with the agent, a probe per
# interpreter (harness_agent step=probe). The dir stays for phase 2, which removes it.
_PROBE_TASK: dict[str, Any] = {
    "name": "harness probe",
    "when": "inventory_hostname in harness_engine",
    "harness_agent": {
        "step": "probe", "agent": "{{ harness_agent_file }}",
        "workdir": "{{ harness_me.workdir }}", "pythons": "{{ harness_me.pythons }}",
        "timeout": int(PROBE_TIMEOUT_S),
    },
    "timeout": "{{ harness_me.probe_limit }}",
}

# Phase 2, per host: its interpreters one after another (a loop: each one's result is
# an event of its own, as soon as it ends), then its temp dir removed.
_RUN_TASK: dict[str, Any] = {
    "name": "harness agent run",
    "harness_agent": {"step": "run", "dir": "{{ harness_me.dir }}",
                      "run": "{{ harness_me.runs[harness_run] }}"},
    # The loop item is the run's name only (an item is echoed in its event; a plan is big).
    "loop": "{{ harness_me.run_names }}",
    "loop_control": {"loop_var": "harness_run"},
    "timeout": "{{ harness_me.runs[harness_run].timeout + %d }}" % TASK_SLACK_S,
}


def unsafe_yaml(value: Any) -> str:
    """``value`` as YAML (flow style) with every string tagged ``!unsafe``.

    Ansible never templates an ``!unsafe`` value, so an interpreter path or
    host name containing ``{{`` stays literal.
    """
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}: {unsafe_yaml(v)}"
                 for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(unsafe_yaml(v) for v in value) + "]"
    if isinstance(value, str):
        return "!unsafe " + json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, (bool, int, float)):
        return json.dumps(value)
    raise TypeError(f"cannot write {type(value).__name__} to a vars file")


def probe_play(vars_file: str) -> dict[str, Any]:
    """Phase 1: on every host, a private temp dir, the agent, a probe per interpreter."""
    return {
        "name": "harness probe", "hosts": "all", "gather_facts": False,
        "strategy": "free", "vars_files": [vars_file], "vars": _PLAY_VARS,
        "tasks": [_PROBE_TASK],
    }


def run_plays(vars_file: str, batches: int, idle: bool) -> list[dict[str, Any]]:
    """Phase 2: a play per batch of hosts (each host runs its interpreters one after
    another, then removes its temp dir, not waiting for the other hosts), and one
    removing the temp dirs of hosts with nothing to run (``idle``)."""
    plays = []
    for i in range(batches):
        plays.append({
            "name": f"harness run (batch {i + 1} of {batches})",
            "hosts": "all", "gather_facts": False, "strategy": "free",
            "vars_files": [vars_file], "vars": _PLAY_VARS,
            "tasks": [{
                "when": f"inventory_hostname in harness_batches[{i}]",
                "block": [_RUN_TASK],
                "always": [_CLEANUP_TASK],
            }],
        })
    if idle:
        plays.append({
            "name": "harness cleanup (hosts with nothing to run)",
            "hosts": "all", "gather_facts": False, "strategy": "free",
            "vars_files": [vars_file], "vars": _PLAY_VARS,
            "tasks": [{**_CLEANUP_TASK, "when": "inventory_hostname in harness_idle"}],
        })
    return plays


def cleanup_play(vars_file: str) -> dict[str, Any]:
    """Remove the temp dirs no cleanup task reported removed (a run phase that broke)."""
    return {"name": "harness cleanup", "hosts": "all", "gather_facts": False,
            "strategy": "free", "vars_files": [vars_file], "vars": _PLAY_VARS,
            "tasks": [{**_CLEANUP_TASK, "when": "inventory_hostname in harness_engine",
                       "ignore_errors": True, "ignore_unreachable": True}]}


class PlaybookRunner:
    """Runs one sweep's playbooks from its private directory (``private``: Ansible's
    control sockets, local temp files, the runner's artifacts and the playbooks)."""

    def __init__(self, private: Path, options: PlaybookOptions, agent: Path | None = None) -> None:
        self.private = private
        self.options = options
        self.forks = options.forks
        self.agent = agent
        # Host -> its temp dir, from creation until a cleanup task reports it removed.
        self.dirs: dict[str, str] = {}
        self._error: BaseException | None = None

    def _envvars(self) -> dict[str, str]:
        options = self.options
        private = self.private
        checking = "accept-new" if options.accept_new_host_keys else "yes"
        ssh_args = ["-C", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s",
                    "-o", f"StrictHostKeyChecking={checking}"]
        if options.known_hosts is not None:
            files = [str(Path(options.known_hosts).expanduser()), "~/.ssh/known_hosts"]
            ssh_args += ["-o", "UserKnownHostsFile=" + " ".join(files)]
        # ansible-runner runs "ansible-playbook" by name: put the one found first on PATH.
        bin_dir = str(Path(self._playbook_binary()).parent)
        return {
            "PATH": os.pathsep.join(p for p in (bin_dir, os.environ.get("PATH", "")) if p),
            "ANSIBLE_SSH_ARGS": shlex.join(ssh_args),
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(private / "cp"),
            "ANSIBLE_LOCAL_TEMP": str(private / "local"),
            "ANSIBLE_TIMEOUT": str(CONNECT_TIMEOUT_S),
            "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
            # harness's own first, then Ansible's default places.
            "ANSIBLE_ACTION_PLUGINS": os.pathsep.join(
                (str(ACTION_PLUGIN_DIR), "~/.ansible/plugins/action",
                 "/usr/share/ansible/plugins/action")),
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
        }

    def _playbook_binary(self) -> str:
        exe = find_ansible_inventory()
        if exe:
            beside = Path(exe).parent / "ansible-playbook"
            if beside.exists():
                return str(beside)
        found = shutil.which("ansible-playbook")
        if found is None:
            raise HarnessError("ansible-playbook not found on PATH nor beside "
                               f"{sys.executable}",
                               hint="install ansible-core in the environment running harness")
        return found

    def write_vars(self, name: str, per_host: Mapping[str, Any],
                   extra: Mapping[str, Any] | None = None) -> str:
        """A vars file for a playbook: per host values, the agent, the scripts, ``extra``."""
        if self.agent is None:
            raise TypeError("write_vars needs the agent this runner was made with")
        data: dict[str, Any] = {
            "harness_engine": per_host,
            "harness_agent_file": str(self.agent.resolve()),
            **(extra or {}),
        }
        path = self.private / "project" / f"{name}_vars.yml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(unsafe_yaml(data) + "\n")
        return str(path)

    def run(self, name: str, plays: list[dict[str, Any]] | Path, timeout: float,
            handler: Callable[[Mapping[str, Any]], None],
            extravars: Mapping[str, Any] | None = None) -> tuple[str, int | None, str]:
        """Run ``plays`` (or the playbook file they name) with ``extravars``; return
        (runner status, rc, the last line ansible printed)."""
        import ansible_runner

        private = self.private
        project = private / "project"
        project.mkdir(exist_ok=True)
        if isinstance(plays, Path):
            playbook = plays.resolve()
        else:
            playbook = project / f"{name}.json"
            playbook.write_text(json.dumps(plays, indent=1))

        def on_event(event: dict[str, Any]) -> bool:
            data = event.get("event_data") or {}
            host = data.get("host")
            res = data.get("res") or {}
            if (data.get("task") == "harness cleanup" and event.get("event") == "runner_on_ok"
                    and isinstance(host, str)):
                self.dirs.pop(host, None)
            elif (event.get("event") == "runner_on_ok" and isinstance(host, str)
                    and isinstance(res.get("harness_dir"), str)):
                self.dirs[host] = res["harness_dir"]
            try:
                handler(event)
            except BaseException as exc:  # kept and raised once ansible has stopped
                if self._error is None:
                    self._error = exc
            return False

        runner = ansible_runner.run(
            private_data_dir=str(private), playbook=str(playbook),
            inventory=str(Path(self.options.inventory).expanduser().resolve()),
            limit=self.options.limit, forks=self.forks, quiet=True,
            envvars=self._envvars(), event_handler=on_event,
            suppress_env_files=True, ident=name, timeout=int(timeout),
            extravars=dict(extravars) if extravars else None,
        )
        last = ""
        with contextlib.suppress(Exception), runner.stdout as out:
            last = one_line(out.read()[-4000:], pick="last")
        if self._error is not None:
            raise self._error
        return runner.status, runner.rc, last

    def stop_masters(self) -> None:
        """Ask the ssh control masters of this sweep to exit (they would linger 60 s)."""
        cp = self.private / "cp"
        if not cp.is_dir():
            return
        for sock in cp.iterdir():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "harness"],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
