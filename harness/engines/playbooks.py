"""The ``--engine ansible`` sweep: ansible-runner drives every host, ``--forks`` at a time.

Two generated playbooks run through ``ansible_runner.run`` against the user's
own inventory (and ``--limit``):

1. **probe** -- on every host: a private 0700 temp dir (``tempfile``; inside
   ``harness_workdir`` when the inventory names one), the agent zipapp
   (``copy``), then ``<python> agent.pyz probe`` for each interpreter of the
   host (``command`` with ``argv:``), and the temp dir removed in ``always:``.
   Each interpreter's stdout, read from the runner's events, goes through
   :func:`harness.remote.read_messages`; the fingerprint goes to
   ``_Sweep.prepare_env``, which plans the cells.
2. **run** -- one play per batch of hosts (hosts that report the same
   machine-id and boot-id land in different batches, so they never run at the
   same time; ``--parallel-same-machine`` makes one batch). On each host: a
   fresh temp dir, the agent and its plan files, then for each interpreter,
   one after another, ``<python> agent.pyz run PLAN`` with its output
   written to a file on the host and ``fetch``\\ ed back as soon as it ends,
   so cells are committed interpreter by interpreter while other hosts still
   run. ``always:`` stops a leftover agent and removes the temp dir.

Values from the inventory (host names, interpreter paths) reach Ansible only
in a vars file where every string is tagged ``!unsafe`` (never templated),
and reach the host only as ``argv`` elements: no shell line is built from
them. The two small shell scripts used (``sh -c SCRIPT harness ARGS...``) are
constants that take everything as positional parameters.

Host keys are checked: ``StrictHostKeyChecking=yes`` (``accept-new`` with
``--accept-new-host-keys``) is put first on ssh's command line through
``ANSIBLE_SSH_ARGS``, and ``--known-hosts`` adds its file before
``~/.ssh/known_hosts``. Ansible's control sockets, local temp files and the
runner's artifacts live in one private temp dir that is removed at the end
(the ssh masters are told to exit first).

Unlike the ssh engine, lines are not streamed while an interpreter runs: its
cells land when its run ends (a run that exceeds its time budget is stopped
and what it wrote is still read). Ansible needs a Python for its own modules
on each host (interpreter discovery, as for any playbook).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import CommandFailed, HarnessError, ProtocolError
from harness.plan.inventory import Host, find_ansible_inventory
from harness.remote.session import PROBE_TIMEOUT_S, read_messages

if TYPE_CHECKING:
    from harness.sweep import EnvRecorder, _Sweep

__all__ = ["AnsibleEngine", "machine_batches", "run_ansible", "unsafe_yaml"]

# Seconds added to every whole-playbook bound (ansible start-up, connections, copies).
PLAYBOOK_SLACK_S = 600.0
CONNECT_TIMEOUT_S = 15
# The run wrapper: ``sh -c RUN harness OUT PLAN PYTHON AGENT run PLAN``, the plan on
# stdin. The agent's stdout goes to OUT; its pid sits in OUT.pid while it runs.
RUN_SCRIPT = (
    'out=$1; plan=$2; shift 2; cat > "$plan" || exit 125; '
    '"$@" > "$out" & p=$!; echo "$p" > "$out.pid"; '
    'wait "$p"; rc=$?; rm -f -- "$out.pid"; exit "$rc"'
)
# ``sh -c STOP harness DIR [rm]``: stop agents still running in DIR (TERM, then KILL
# after 5 s), then remove DIR when asked.
STOP_SCRIPT = (
    'd=$1; [ -d "$d" ] || exit 0; '
    'for f in "$d"/*.pid; do [ -s "$f" ] || continue; p=$(cat "$f"); '
    'kill -TERM "$p" 2>/dev/null || continue; i=0; '
    'while kill -0 "$p" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i+1)); done; '
    'kill -KILL "$p" 2>/dev/null; done; '
    'if [ "$2" = rm ]; then cd / && rm -rf -- "$d"; fi; exit 0'
)

_PLAY_VARS = {
    "harness_me": "{{ harness_engine[inventory_hostname] }}",
    "ansible_interpreter_python_fallback": "{{ harness_me.fallback }}",
}

_CLEANUP_TASK: dict[str, Any] = {
    "name": "harness cleanup",
    "ansible.builtin.command": {
        "argv": "{{ ['sh', '-c', harness_stop_script, 'harness', harness_dir, 'rm'] }}",
    },
    "changed_when": False,
}

# Phase 1, per host: a private temp dir, the agent, a probe per interpreter. The dir
# stays for phase 2 (which removes it); a host failing here removes it at once.
_PROBE_BLOCK: dict[str, Any] = {
    "when": "inventory_hostname in harness_engine",
    "block": [
        {
            "name": "harness workdir parent",
            "ansible.builtin.file": {"path": "{{ harness_me.workdir }}", "state": "directory"},
            "when": "harness_me.workdir is not none",
        },
        {
            "name": "harness workdir",
            "ansible.builtin.tempfile": {
                "state": "directory", "prefix": "harness.",
                "path": "{{ harness_me.workdir if harness_me.workdir is not none else omit }}",
            },
            "register": "harness_tmp",
        },
        {
            "name": "harness agent",
            "ansible.builtin.copy": {
                "src": "{{ harness_agent }}", "dest": "{{ harness_dir }}/agent.pyz",
                "mode": "0600",
            },
        },
        {
            "name": "harness probe",
            "ansible.builtin.command": {
                # Through sh, as over ssh: a missing interpreter is status 127, "not found".
                "argv": "{{ ['sh', '-c', 'exec \"$@\"', 'harness', item,"
                        " harness_dir ~ '/agent.pyz', 'probe'] }}",
                "chdir": "{{ harness_dir }}",
            },
            "loop": "{{ harness_me.pythons }}",
            "timeout": int(PROBE_TIMEOUT_S),
            "changed_when": False,
            "failed_when": False,
            "ignore_errors": True,
        },
    ],
    "rescue": [{**_CLEANUP_TASK, "when": "harness_tmp.path is defined"}],
}

# Phase 2, per interpreter (an included file, looped): run, stop it if it overran, fetch.
_RUN_ONE_TASKS: list[dict[str, Any]] = [
    {
        "name": "harness agent run",
        "ansible.builtin.command": {
            "argv": (
                "{{ ['sh', '-c', harness_run_script, 'harness', harness_run.name ~ '.jsonl',"
                " harness_run.name ~ '.json', harness_run.python,"
                " harness_dir ~ '/agent.pyz', 'run', harness_dir ~ '/' ~ harness_run.name"
                " ~ '.json'] }}"
            ),
            "chdir": "{{ harness_dir }}",
            "stdin": "{{ harness_run.plan }}",
        },
        "timeout": "{{ harness_run.timeout }}",
        "register": "harness_result",
        "changed_when": False,
        "failed_when": False,
        "ignore_errors": True,
    },
    {
        "name": "harness stop agent",
        "ansible.builtin.command": {
            "argv": "{{ ['sh', '-c', harness_stop_script, 'harness', harness_dir] }}",
        },
        "when": "harness_result is failed",
        "changed_when": False,
        "failed_when": False,
    },
    {
        "name": "harness fetch",
        "ansible.builtin.fetch": {
            "src": "{{ harness_dir }}/{{ harness_run.name }}.jsonl",
            "dest": "{{ harness_run.dest }}", "flat": True, "fail_on_missing": False,
        },
        "ignore_errors": True,
    },
]


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


def machine_batches(
    hosts: Sequence[str], machine_of: Mapping[str, tuple[str, str] | None], parallel: bool
) -> list[list[str]]:
    """Split hosts into batches in which no two hosts are the same machine.

    ``machine_of`` maps a host to its (machine-id, boot-id), or None when the
    agent could not tell (such a host is its own machine). Batch ``i`` holds
    the ``i``-th host of every machine, in inventory order.
    """
    if parallel:
        return [list(hosts)] if hosts else []
    groups: dict[object, list[str]] = {}
    for host in hosts:
        key: object = machine_of.get(host) or ("host", host)
        groups.setdefault(key, []).append(host)
    depth = max((len(g) for g in groups.values()), default=0)
    return [[g[i] for g in groups.values() if len(g) > i] for i in range(depth)]


_PLAIN_PATH = re.compile(r"^[\w./+-]+$")


def module_python_fallback(host: Host, pythons: Sequence[str]) -> list[str]:
    """Where Ansible's interpreter discovery looks for a Python to run its modules.

    The inventory's ``ansible_interpreter_python_fallback`` wins. Otherwise the
    system ``/usr/bin/python3`` first, then the host's benchmark interpreters
    (plain paths or names only: Ansible quotes them into a shell line), then
    ``python3``. Ansible's own default prefers ``python3.13`` etc. on PATH,
    which can be a broken shim (pyenv) on a benchmark host.
    """
    own = host.vars.get("ansible_interpreter_python_fallback")
    if isinstance(own, (list, tuple)) and own:
        return [str(p) for p in own]
    found = ["/usr/bin/python3", *(p for p in pythons if _PLAIN_PATH.match(p)), "python3"]
    return list(dict.fromkeys(found))


def _one_line(text: object, limit: int = 300) -> str:
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    line = re.sub(r"\s+", " ", lines[-1] if lines else "")
    return line[:limit] + ("…" if len(line) > limit else "")


def _first_line(text: object, limit: int = 300) -> str:
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    line = re.sub(r"\s+", " ", lines[0] if lines else "")
    return line[:limit] + ("…" if len(line) > limit else "")


def _task_failure(host: str, event: str, res: Mapping[str, Any], task: str) -> str:
    """A one-line reason for a host that ansible could not reach or whose task failed."""
    msg = res.get("msg") or res.get("stderr") or res.get("module_stderr") or ""
    if event == "runner_on_unreachable":
        return f"{host}: unreachable (ansible): {_first_line(msg) or 'no reason given'}"
    return f"{host}: ansible task {task!r} failed: {_first_line(msg) or 'no reason given'}"


def _command_failure(host: str, python: str, res: Mapping[str, Any]) -> CommandFailed:
    rc = res.get("rc")
    tail = str(res.get("stderr") or "") or str(res.get("msg") or "")
    return CommandFailed(f"{host}: {python} exited {rc}", int(rc) if rc is not None else -1,
                         tail)


@dataclass
class _Run:
    """One host × interpreter of the run phase."""

    index: int
    host: Host
    recorder: EnvRecorder
    dest: Path
    result: Mapping[str, Any] | None = None
    done: bool = False

    @property
    def name(self) -> str:
        return f"r{self.index}"


@dataclass
class _HostState:
    host: Host
    runs: list[_Run] = field(default_factory=list)
    results_seen: int = 0
    fetches_seen: int = 0
    lost: str | None = None


class AnsibleEngine:
    """Runs one sweep's probe and run phases through ansible-runner."""

    def __init__(self, sweep: _Sweep, forks: int) -> None:
        from harness.plan.inventory import host_pythons

        self.sweep = sweep
        self.forks = forks
        self.hosts = {h.name: h for h in sweep.hosts}
        self.pythons = {name: list(host_pythons(h)) for name, h in self.hosts.items()}
        # Host -> its temp dir, from creation until a cleanup task reports it removed.
        self.dirs: dict[str, str] = {}
        self._error: BaseException | None = None

    # -- ansible-runner --------------------------------------------------------

    def _envvars(self, private: Path) -> dict[str, str]:
        options = self.sweep.options
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

    def _write_vars(self, private: Path, name: str, per_host: Mapping[str, Any],
                    extra: Mapping[str, Any] | None = None) -> str:
        data: dict[str, Any] = {
            "harness_engine": per_host,
            "harness_agent": str(self.sweep.agent_pyz.resolve()),
            "harness_run_script": RUN_SCRIPT,
            "harness_stop_script": STOP_SCRIPT,
            **(extra or {}),
        }
        path = private / "project" / f"{name}_vars.yml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(unsafe_yaml(data) + "\n")
        return str(path)

    def _run_playbook(self, private: Path, name: str, plays: list[dict[str, Any]],
                      timeout: float, handler: Any) -> tuple[str, int | None, str]:
        """Run ``plays``; return (runner status, rc, the last line ansible printed)."""
        import ansible_runner

        project = private / "project"
        project.mkdir(exist_ok=True)
        playbook = project / f"{name}.json"
        playbook.write_text(json.dumps(plays, indent=1))

        def on_event(event: dict[str, Any]) -> bool:
            data = event.get("event_data") or {}
            host = data.get("host")
            res = data.get("res") or {}
            if (data.get("task") == "harness cleanup" and event.get("event") == "runner_on_ok"
                    and isinstance(host, str)):
                self.dirs.pop(host, None)
            elif (data.get("task") == "harness workdir" and event.get("event") == "runner_on_ok"
                    and isinstance(host, str) and isinstance(res.get("path"), str)):
                self.dirs[host] = res["path"]
            try:
                handler(event)
            except BaseException as exc:  # kept and raised once ansible has stopped
                if self._error is None:
                    self._error = exc
            return False

        runner = ansible_runner.run(
            private_data_dir=str(private), playbook=str(playbook),
            inventory=str(Path(self.sweep.options.inventory).expanduser().resolve()),
            limit=self.sweep.options.limit, forks=self.forks, quiet=True,
            envvars=self._envvars(private), event_handler=on_event,
            suppress_env_files=True, ident=name, timeout=int(timeout),
        )
        last = ""
        with contextlib.suppress(Exception), runner.stdout as out:
            last = _one_line(out.read()[-4000:])
        if self._error is not None:
            raise self._error
        return runner.status, runner.rc, last

    def _stop_masters(self, private: Path) -> None:
        """Ask the ssh control masters of this sweep to exit (they would linger 60 s)."""
        cp = private / "cp"
        if not cp.is_dir():
            return
        for sock in cp.iterdir():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "harness"],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=10)

    # -- the sweep --------------------------------------------------------------

    def run(self) -> None:
        with tempfile.TemporaryDirectory(prefix="harness-ansible-") as tmp:
            private = Path(tmp)
            os.chmod(private, 0o700)
            try:
                envs = self.probe_phase(private)
                self.run_phase(private, envs)
            finally:
                try:
                    self.cleanup_leftovers(private)
                finally:
                    self._stop_masters(private)

    def cleanup_leftovers(self, private: Path) -> None:
        """Remove temp dirs that no cleanup task reported removed (the run phase broke)."""
        if not self.dirs:
            return
        per_host = {h: {"dir": d, "fallback": module_python_fallback(
            self.hosts[h], self.pythons[h])} for h, d in self.dirs.items()}
        vars_file = self._write_vars(private, "cleanup", per_host)
        play = {"name": "harness cleanup", "hosts": "all", "gather_facts": False,
                "vars_files": [vars_file],
                "vars": {**_PLAY_VARS, "harness_dir": "{{ harness_me.dir }}"},
                "tasks": [{**_CLEANUP_TASK, "when": "inventory_hostname in harness_engine",
                           "ignore_errors": True, "ignore_unreachable": True}]}
        with contextlib.suppress(HarnessError):
            self._run_playbook(private, "cleanup", [play], PLAYBOOK_SLACK_S, lambda e: None)

    def probe_phase(self, private: Path) -> dict[tuple[str, str], dict[str, Any]]:
        """Probe every host × interpreter; failures are recorded; return the fingerprints."""
        sweep = self.sweep
        pythons = self.pythons
        per_host = {name: {"pythons": pythons[name], "workdir": h.workdir,
                           "fallback": module_python_fallback(h, pythons[name])}
                    for name, h in self.hosts.items()}
        play = {
            "name": "harness probe", "hosts": "all", "gather_facts": False,
            "vars_files": [self._write_vars(private, "probe", per_host)],
            "vars": {**_PLAY_VARS, "harness_dir": "{{ harness_tmp.path }}"},
            "tasks": [_PROBE_BLOCK],
        }
        envs: dict[tuple[str, str], dict[str, Any]] = {}
        settled: set[str] = set()

        def on_event(event: Mapping[str, Any]) -> None:
            kind = event.get("event")
            data = event.get("event_data") or {}
            name = data.get("host")
            host = self.hosts.get(name) if isinstance(name, str) else None
            if host is None or name in settled:
                return
            res = data.get("res") or {}
            task = str(data.get("task") or "")
            if kind == "runner_on_unreachable" or (
                    kind == "runner_on_failed" and task != "harness probe"
                    and not data.get("ignore_errors")):
                settled.add(host.name)
                sweep.fail_env(host, None, _task_failure(host.name, kind, res, task))
            elif task == "harness probe" and kind in ("runner_on_ok", "runner_on_failed"):
                settled.add(host.name)
                results = res.get("results")
                if not isinstance(results, list):
                    # The whole loop failed (e.g. a timeout): every interpreter failed.
                    sweep.fail_env(host, None, _task_failure(host.name, kind, res, task))
                    return
                seen = set()
                for item in results:
                    python = str(item.get("item"))
                    seen.add(python)
                    env = self._probe_result(host, python, item)
                    if env is not None:
                        envs[(host.name, python)] = env
                for python in pythons[host.name]:
                    if python not in seen:
                        sweep.fail_env(host, python,
                                       f"{host.name}: ansible did not probe {python!r}")

        hosts_n = max(len(self.hosts), 1)
        most = max((len(p) for p in pythons.values()), default=1)
        bound = PROBE_TIMEOUT_S * most * math.ceil(hosts_n / self.forks) + PLAYBOOK_SLACK_S
        sweep.observer.note(f"ansible engine: probing {len(self.hosts)} hosts "
                            f"(forks {self.forks})")
        status, rc, last = self._run_playbook(private, "probe", [play], bound, on_event)
        for name, host in self.hosts.items():
            if name not in settled:
                sweep.fail_env(host, None, f"{name}: ansible reported nothing for this host "
                               f"(ansible-playbook {status}, rc {rc}: {last or 'no output'})")
        return envs

    def _probe_result(self, host: Host, python: str,
                      item: Mapping[str, Any]) -> dict[str, Any] | None:
        from harness.remote.session import describe_failure

        sweep = self.sweep
        rc = item.get("rc")
        if rc != 0:
            if rc is None and item.get("failed"):
                sweep.fail_env(host, python, f"{host.name}: probe under {python!r}: "
                               f"{_first_line(item.get('msg')) or 'failed'}")
            else:
                exc = describe_failure(_command_failure(host.name, python, item),
                                       host.name, python)
                sweep.fail_env(host, python, str(exc))
            return None
        env: dict[str, Any] | None = None
        try:
            for msg in read_messages(str(item.get("stdout") or "").splitlines(),
                                     host.name, python):
                if msg["type"] == "env":
                    env = msg["env"]
                elif msg["type"] in ("error", "protocol_error"):
                    raise ProtocolError(f"{host.name}: probe under {python!r}: "
                                        f"{msg['message']}")
            if env is None:
                raise ProtocolError(f"{host.name}: probe under {python!r} sent no env line")
        except HarnessError as exc:
            sweep.fail_env(host, python, str(exc))
            return None
        return env

    def run_phase(self, private: Path, envs: Mapping[tuple[str, str], dict[str, Any]]) -> None:
        """Plan each probed environment, then run the plans host batch by host batch."""
        sweep = self.sweep
        outdir = private / "out"
        outdir.mkdir(exist_ok=True)
        states: dict[str, _HostState] = {}
        plans: dict[int, str] = {}
        machine_of: dict[str, tuple[str, str] | None] = {}
        counter = 0
        for name, host in self.hosts.items():
            for python in self.pythons[name]:
                env = envs.get((name, python))
                if env is None:
                    continue
                if env.get("machine_id") and env.get("boot_id"):
                    machine_of.setdefault(name, (str(env["machine_id"]), str(env["boot_id"])))
                recorder = sweep.prepare_env(host, python, env)
                if recorder is None or name not in self.dirs:
                    continue
                counter += 1
                plans[counter] = json.dumps(recorder.plan(recorder.cells))
                state = states.setdefault(name, _HostState(host))
                state.runs.append(_Run(counter, host, recorder, outdir / f"{counter}.jsonl"))
        idle = [h for h in self.dirs if h not in states]
        batches = machine_batches(list(states), machine_of, sweep.options.parallel_same_machine)
        if len(batches) > 1:
            for batch_no, batch in enumerate(batches, 1):
                sweep.observer.note(
                    f"ansible batch {batch_no}/{len(batches)}: {', '.join(batch)} (hosts that "
                    "are the same machine run in different batches, one after another)")
        per_host: dict[str, Any] = {}
        for name, directory in self.dirs.items():
            st = states.get(name)
            per_host[name] = {
                "dir": directory,
                "fallback": module_python_fallback(self.hosts[name], self.pythons[name]),
                "runs": [
                    {"name": r.name, "python": r.recorder.python, "plan": plans[r.index],
                     "dest": str(r.dest), "timeout": int(math.ceil(r.recorder.timeout))}
                    for r in (st.runs if st else [])],
            }
        if not per_host:
            return
        vars_file = self._write_vars(private, "run", per_host,
                                     {"harness_batches": batches, "harness_idle": idle})
        include = private / "project" / "harness_run_one.json"
        include.write_text(json.dumps(_RUN_ONE_TASKS, indent=1))
        play_vars = {**_PLAY_VARS, "harness_dir": "{{ harness_me.dir }}"}
        plays = []
        for i in range(len(batches)):
            plays.append({
                "name": f"harness run (batch {i + 1} of {len(batches)})",
                "hosts": "all", "gather_facts": False, "vars_files": [vars_file],
                "vars": play_vars,
                "tasks": [{
                    "when": f"inventory_hostname in harness_batches[{i}]",
                    "block": [{
                        "name": "harness runs",
                        "ansible.builtin.include_tasks": str(include),
                        "loop": "{{ harness_me.runs }}",
                        "loop_control": {"loop_var": "harness_run"},
                    }],
                    "always": [_CLEANUP_TASK],
                }],
            })
        if idle:
            plays.append({
                "name": "harness cleanup (hosts with nothing to run)",
                "hosts": "all", "gather_facts": False, "vars_files": [vars_file],
                "vars": play_vars,
                "tasks": [{**_CLEANUP_TASK, "when": "inventory_hostname in harness_idle"}],
            })

        def on_event(event: Mapping[str, Any]) -> None:
            kind = event.get("event")
            data = event.get("event_data") or {}
            state = states.get(data.get("host")) if isinstance(data.get("host"), str) else None
            if state is None or state.lost:
                return
            res = data.get("res") or {}
            task = str(data.get("task") or "")
            if kind == "runner_on_unreachable" or (
                    kind == "runner_on_failed" and not data.get("ignore_errors")
                    and task != "harness cleanup"):
                state.lost = _task_failure(state.host.name, kind, res, task)
                return
            if kind not in ("runner_on_ok", "runner_on_failed"):
                return
            if task == "harness agent run" and state.results_seen < len(state.runs):
                state.runs[state.results_seen].result = dict(res)
                state.results_seen += 1
            elif task == "harness fetch" and state.fetches_seen < len(state.runs):
                run = state.runs[state.fetches_seen]
                state.fetches_seen += 1
                self._finish(run)

        total = sum(r.recorder.timeout for st in states.values() for r in st.runs)
        if states:
            sweep.observer.note(
                f"ansible engine: running {sum(len(s.runs) for s in states.values())} "
                f"environments on {len(states)} hosts in {len(batches)} "
                f"batch{'es' if len(batches) > 1 else ''} (forks {self.forks})")
        try:
            status, rc, last = self._run_playbook(private, "run", plays,
                                                  total + PLAYBOOK_SLACK_S, on_event)
        finally:
            for st in states.values():
                for run in st.runs:
                    if run.done:
                        continue
                    reason = st.lost or (
                        f"{st.host.name}: ansible did not run {run.recorder.python!r}")
                    run.done = True
                    run.recorder.abort(_EngineError(reason))
        if status != "successful" and any(st.lost is None for st in states.values()):
            sweep.observer.note(f"ansible-playbook {status} (rc {rc}): {last}")

    def _finish(self, run: _Run) -> None:
        """Feed one interpreter's fetched output into its recorder."""
        from harness.remote.session import describe_failure

        run.done = True
        host, python, recorder = run.host.name, run.recorder.python, run.recorder
        res = run.result or {}
        lines = _read_lines(run.dest)
        rc = res.get("rc")
        failure: HarnessError | None = None
        if rc is None:
            reason = _first_line(res.get("msg")) or "the run did not finish"
            failure = _EngineError(f"{host}: agent under {python!r}: {reason}")
        elif rc != 0:
            failure = describe_failure(_command_failure(host, python, res), host, python)
        try:
            for msg in read_messages(lines, host, python):
                recorder.feed(msg)
        except ProtocolError as exc:
            recorder.abort(failure or exc)
            return
        if failure is not None:
            recorder.abort(failure)
        else:
            recorder.close()


class _EngineError(HarnessError):
    exit_code = 1


def _read_lines(path: Path) -> Iterable[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return [line.rstrip("\r\n") for line in fh]
    except FileNotFoundError:
        return []


def run_ansible(sweep: _Sweep, forks: int) -> None:
    """Run ``sweep``'s hosts through ansible-runner (see the module docstring)."""
    AnsibleEngine(sweep, forks).run()
