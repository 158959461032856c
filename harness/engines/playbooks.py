"""The playbooks the ansible engine hands ansible-runner, and running them.

- Their texts: the probe task, the run task (looped over a host's interpreters) and
  the cleanup task, each one ``harness_agent`` action
  (:mod:`harness.engines.action_plugins.harness_agent`: no Ansible module runs on the
  hosts); one task per host and phase, so no host waits for another and each result
  comes back as soon as it is there.
- Their inputs: a JSON file per host that the action reads (its path among the
  host's play values), and the plays' own ``vars`` written as YAML with every string
  tagged ``!unsafe`` (:func:`flow_yaml`, :class:`Unsafe`).
- :class:`PlaybookRunner`: runs a playbook through ``ansible_runner.run`` from one
  sweep's private directory, with host keys checked and harness's action plugins on
  Ansible's path, keeps track of the temp dirs the playbooks create on the hosts, and
  stops the sweep's ssh control masters at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.engines.action_plugins import ACTION_PLUGIN_DIR
from harness.errors import HarnessError
from harness.formatting import one_line
from harness.plan.inventory import find_ansible_inventory


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

# Each task's values reach the harness_agent action in a JSON file per host, read by
# the action itself: Ansible never parses or templates them (a vars file with every
# plan in it was parsed again per host and task). The plays' vars hold only what the
# plays need: ``harness_hosts`` (host -> its data file, task limits and run names) and
# the batches.
_DATA = "{{ harness_hosts[inventory_hostname].data }}"

_CLEANUP_TASK: dict[str, Any] = {
    "name": "harness cleanup",
    "harness_agent": {"step": "cleanup", "data": _DATA},
}

# Phase 1, per host, one task: a private temp dir with the agent, a probe per
# interpreter. The dir stays for phase 2, which removes it.
_PROBE_TASK: dict[str, Any] = {
    "name": "harness probe",
    "when": "inventory_hostname in harness_hosts",
    "harness_agent": {"step": "probe", "data": _DATA},
    "timeout": "{{ harness_hosts[inventory_hostname].limit }}",
}

# Phase 2, per host, one task: its interpreters one after another (a loop: each one's
# result is an event of its own as soon as it ends); the last one also removes the
# temp dir. A host whose loop broke keeps its dir for the leftovers' cleanup play.
_RUN_TASK: dict[str, Any] = {
    "name": "harness agent run",
    "harness_agent": {"step": "run", "data": _DATA, "run": "{{ harness_run }}"},
    "loop": "{{ harness_hosts[inventory_hostname].runs }}",
    "loop_control": {"loop_var": "harness_run"},
    "timeout": "{{ harness_hosts[inventory_hostname].limits[harness_run] }}",
}


@dataclass(frozen=True)
class Unsafe:
    """A value written into a playbook with every string in it tagged ``!unsafe``."""

    value: Any


def flow_yaml(value: Any, unsafe: bool = False) -> str:
    """``value`` as flow-style YAML (JSON where nothing is tagged); the strings inside
    an :class:`Unsafe` (or all, with ``unsafe``) tagged ``!unsafe``.

    Ansible never templates an ``!unsafe`` value, so an interpreter path or
    host name containing ``{{`` stays literal.
    """
    if isinstance(value, Unsafe):
        return flow_yaml(value.value, True)
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}: {flow_yaml(v, unsafe)}"
                 for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow_yaml(v, unsafe) for v in value) + "]"
    if isinstance(value, str):
        return ("!unsafe " if unsafe else "") + json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, (bool, int, float)):
        return json.dumps(value)
    raise TypeError(f"cannot write {type(value).__name__} to a playbook")


def _play(name: str, values: Unsafe, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    # The phase's values are the play's own ``vars`` (parsed once with the playbook;
    # a vars file is parsed again for every host and task: quadratic in hosts). The
    # linear strategy: with one task per host and phase, no host waits for another (the
    # free one polls every host every millisecond: a core's worth at 64 hosts).
    return {"name": name, "hosts": "all", "gather_facts": False, "vars": values,
            "tasks": tasks}


def probe_play(values: Unsafe) -> dict[str, Any]:
    """Phase 1: on every host, a private temp dir, the agent, a probe per interpreter."""
    return _play("harness probe", values, [_PROBE_TASK])


def run_plays(values: Unsafe, batches: int, idle: bool) -> list[dict[str, Any]]:
    """Phase 2: a play per batch of hosts (each host runs its interpreters one after
    another, the last run removing its temp dir), and one removing the temp dirs of
    hosts with nothing to run (``idle``)."""
    plays = [_play(f"harness run (batch {i + 1} of {batches})", values,
                   [{**_RUN_TASK, "when": f"inventory_hostname in harness_batches[{i}]"}])
             for i in range(batches)]
    if idle:
        plays.append(_play("harness cleanup (hosts with nothing to run)", values,
                           [{**_CLEANUP_TASK, "when": "inventory_hostname in harness_idle"}]))
    return plays


def cleanup_play(values: Unsafe) -> dict[str, Any]:
    """Remove the temp dirs no task reported removed (a run phase that broke)."""
    return _play("harness cleanup", values,
                 [{**_CLEANUP_TASK, "when": "inventory_hostname in harness_hosts",
                   "ignore_errors": True, "ignore_unreachable": True}])


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
        # Ansible's default ssh_args without -C (the agent and plans are small; zlib cost
        # more CPU than loopback or a LAN saves), and curve25519 key exchange first, as
        # paramiko (the ssh engine) uses: OpenSSH 9's default sntrup761x25519 costs
        # ~60 ms of controller CPU per host connection, curve25519 ~10 ms.
        ssh_args = ["-o", "ControlMaster=auto", "-o", "ControlPersist=60s",
                    "-o", "KexAlgorithms=^curve25519-sha256,curve25519-sha256@libssh.org",
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

    def write_phase(self, name: str, data: Mapping[str, Mapping[str, Any]],
                    hosts: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Unsafe:
        """One phase's inputs: per host, its action's values (``data``, a JSON file each,
        plus the agent's path); returned, its plays' values (``hosts``, each with its
        file's path as ``data``, and ``extra``)."""
        directory = self.private / "data" / name
        directory.mkdir(parents=True, exist_ok=True)
        agent = {"agent": str(self.agent.resolve())} if self.agent is not None else {}
        plays: dict[str, Any] = {}
        for number, (host, values) in enumerate(data.items()):
            path = directory / f"{number}.json"
            path.write_text(json.dumps({**agent, **values}))
            plays[host] = {**hosts.get(host, {}), "data": str(path)}
        return Unsafe({"harness_hosts": plays, **(extra or {})})

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
            playbook = project / f"{name}.yml"
            playbook.write_text(flow_yaml(plays) + "\n")

        def on_event(event: dict[str, Any]) -> bool:
            data = event.get("event_data") or {}
            host = data.get("host")
            res = data.get("res") or {}
            if (event.get("event") in ("runner_on_ok", "runner_item_on_ok")
                    and isinstance(host, str) and res.get("removed") is not None
                    and res.get("removed") == self.dirs.get(host)):
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
        """Stop the ssh control masters of this sweep (they would linger 60 s): TERM to
        each process named ``ssh: <one of our control sockets> [mux]`` (one ``ssh -O
        exit`` per host would cost a process start each, seconds at 64 hosts)."""
        cp = self.private / "cp"
        if not cp.is_dir():
            return
        sockets = list(cp.iterdir())
        if not sockets:
            return
        if not Path("/proc/self/cmdline").exists():
            for sock in sockets:
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "harness"],
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
            return
        titles = {f"ssh: {sock}" for sock in sockets}
        masters = [pid for pid, title in _process_titles() if title.split(" [")[0] in titles]
        for pid in masters:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while masters and time.monotonic() < deadline:
            masters = [pid for pid in masters if Path(f"/proc/{pid}").exists()
                       and not _zombie(pid)]
            time.sleep(0.02)


def _process_titles() -> list[tuple[int, str]]:
    """(pid, command line as one string) of every process this user can read."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                raw = (entry / "cmdline").read_bytes()
                found.append((int(entry.name), raw.replace(b"\0", b" ").decode(
                    "utf-8", "replace").strip()))
    return found


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
