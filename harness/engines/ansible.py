"""The ``--engine ansible`` sweep: ansible-runner drives every host, ``--forks`` at a time.

Two generated playbooks, one ansible-runner run each, against the user's own
inventory (and ``--limit``). Every task is the ``harness_agent`` action
(:mod:`harness.engines.action_plugins.harness_agent`), which runs in Ansible's
worker on the controller and uses only the host's connection: no Ansible module,
so a host needs no Python of Ansible's own, and no file transfer subsystem.

1. **probe** -- one task per host: a private 0700 temp dir (inside
   ``harness_workdir`` when the inventory names one) holding the agent, then for
   each interpreter of the host an agent that sends its fingerprint and waits on
   the host for its plan (``agent.pyz run +SECONDS``: one agent start per
   interpreter both probes and runs, as with the ssh engine). Each host's result
   event is read as it comes (each interpreter's lines through
   :func:`harness.remote.session.read_messages`); the fingerprint goes to
   ``Sweep.prepare_env``, which plans the cells.
2. **run** -- one play per batch of hosts (hosts that report the same
   machine-id and boot-id land in different batches, so they never run at the
   same time; ``--parallel-same-machine`` makes one batch). On each host, one task
   looping over its interpreters, one after another: the plan on stdin, handed to
   that interpreter's waiting agent, its output written on the controller as soon
   as it ends.
   Each interpreter's loop event arrives as it ends and its cells are committed
   then, while other hosts still run. The host's last run also stops leftover
   agents (those of interpreters with nothing to run) and removes the temp dir; a
   host whose loop broke keeps it until a cleanup play at the end, which stops its
   waiting agents too.

Each phase's values reach the action in a JSON file per host (never parsed or
templated by Ansible); the plays hold only host names, run names and limits, as
play ``vars`` where every string is tagged ``!unsafe`` (never templated). Values
reach the host only as quoted positional parameters of constant ``sh -c``
scripts: no shell line is built from them unquoted.

The playbooks' texts, the per-host files and the call to ansible-runner are
:mod:`harness.engines.playbooks`.

Host keys are checked: ``StrictHostKeyChecking=yes`` (``accept-new`` with
``--accept-new-host-keys``) is put first on ssh's command line through
``ANSIBLE_SSH_ARGS``, and ``--known-hosts`` adds its file before
``~/.ssh/known_hosts``. Ansible's control sockets, local temp files and the
runner's artifacts live in one private temp dir that is removed at the end
(the ssh masters are told to exit first).

Unlike the ssh engine, lines are not streamed while an interpreter runs: its
cells land when its run ends (a run that exceeds its time budget is stopped on
the host and what it wrote is still read).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.engines.playbooks import (
    PLAYBOOK_SLACK_S,
    TASK_SLACK_S,
    PlaybookRunner,
    cleanup_play,
    probe_play,
    run_plays,
)
from harness.errors import CommandFailed, HarnessError, ProtocolError
from harness.formatting import one_line
from harness.plan.inventory import Host, host_pythons
from harness.remote.session import PROBE_TIMEOUT_S, describe_failure, read_messages

if TYPE_CHECKING:
    from harness.sweep.context import Sweep
    from harness.sweep.recorder import EnvRecorder

__all__ = ["AnsibleEngine", "machine_batches"]

# How long a probed agent waits on its host for its plan: the probes of every host, the
# planning and, for hosts of one machine run batch after batch, the earlier batches'
# runs come first. Past it the agent ends (its run then fails as "no longer waiting");
# a sweep that ends or breaks stops waiting agents itself (the cleanup plays).
AGENT_WAIT_S = 24 * 3600


class AnsibleEngine:
    """``--engine ansible``: the probe and run playbooks, ``--forks`` hosts at a time."""

    name = "ansible"
    # An interpreter's cells run in one agent run (its output is fetched when it ends).
    spreads_runs = False

    def run(self, sweep: Sweep) -> None:
        AnsibleSweep(sweep).run()


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


def _task_failure(host: str, event: str, res: Mapping[str, Any], task: str) -> str:
    """A one-line reason for a host that ansible could not reach or whose task failed."""
    msg = res.get("msg") or res.get("stderr") or ""
    if event == "runner_on_unreachable":
        return f"{host}: unreachable (ansible): {one_line(msg) or 'no reason given'}"
    return f"{host}: ansible task {task!r} failed: {one_line(msg) or 'no reason given'}"


def _command_failure(host: str, python: str, res: Mapping[str, Any]) -> CommandFailed:
    rc = res.get("rc")
    tail = str(res.get("stderr") or "") or str(res.get("msg") or "")
    return CommandFailed(f"{host}: {python} exited {rc}", int(rc) if rc is not None else -1,
                         tail)


@dataclass(frozen=True)
class _Probed:
    """One probed host × interpreter: its fingerprint, and its agent waiting for a plan."""

    env: dict[str, Any]
    agent: str  # its name in the host's temp dir
    hello: str  # the first line it sent


@dataclass
class _Run:
    """One host × interpreter of the run phase."""

    index: int
    host: Host
    recorder: EnvRecorder
    dest: Path
    probed: _Probed  # its agent, waiting in the host's temp dir since the probe
    result: Mapping[str, Any] | None = None
    done: bool = False

    @property
    def name(self) -> str:
        return f"r{self.index}"


@dataclass
class _HostState:
    host: Host
    runs: list[_Run] = field(default_factory=list)
    lost: str | None = None



class AnsibleSweep:
    """One sweep's probe and run phases through ansible-runner."""

    def __init__(self, sweep: Sweep) -> None:
        self.sweep = sweep
        self.forks = sweep.options.forks
        self.hosts = {h.name: h for h in sweep.hosts}
        self.pythons = {name: list(host_pythons(h)) for name, h in self.hosts.items()}

    def run(self) -> None:
        with tempfile.TemporaryDirectory(prefix="harness-ansible-") as tmp:
            private = Path(tmp)
            os.chmod(private, 0o700)
            runner = PlaybookRunner(private, self.sweep.options, self.sweep.agent_pyz)
            try:
                envs = self.probe_phase(runner)
                self.run_phase(runner, envs)
            finally:
                try:
                    self.cleanup_leftovers(runner)
                finally:
                    runner.stop_masters()

    def cleanup_leftovers(self, runner: PlaybookRunner) -> None:
        """Remove temp dirs that no cleanup task reported removed (the run phase broke)."""
        if not runner.dirs:
            return
        values = runner.write_phase("cleanup", {h: {"dir": d} for h, d in runner.dirs.items()},
                                       {h: {} for h in runner.dirs})
        with contextlib.suppress(HarnessError):
            runner.run("cleanup", [cleanup_play(values)], PLAYBOOK_SLACK_S, lambda e: None)

    # -- phase 1: probe -----------------------------------------------------------

    def probe_phase(self, runner: PlaybookRunner) -> dict[tuple[str, str], _Probed]:
        """Probe every host × interpreter; failures are recorded; return the probed ones."""
        sweep = self.sweep
        pythons = self.pythons
        data = {name: {"pythons": pythons[name], "workdir": h.workdir,
                       "timeout": PROBE_TIMEOUT_S, "wait": AGENT_WAIT_S}
                for name, h in self.hosts.items()}
        limits = {name: {"limit": int(PROBE_TIMEOUT_S * max(len(pythons[name]), 1)
                                      + TASK_SLACK_S)}
                  for name in self.hosts}
        play = probe_play(runner.write_phase("probe", data, limits))
        envs: dict[tuple[str, str], _Probed] = {}
        settled: set[str] = set()

        def on_event(event: Mapping[str, Any]) -> None:
            data = event.get("event_data") or {}
            name = data.get("host")
            host = self.hosts.get(name) if isinstance(name, str) else None
            if host is not None and name not in settled:
                self._probe_event(host, event.get("event"), data, envs, settled)

        hosts_n = max(len(self.hosts), 1)
        most = max((len(p) for p in pythons.values()), default=1)
        bound = PROBE_TIMEOUT_S * most * math.ceil(hosts_n / self.forks) + PLAYBOOK_SLACK_S
        sweep.observer.note(f"ansible engine: probing {len(self.hosts)} hosts "
                            f"(forks {self.forks})")
        status, rc, last = runner.run("probe", [play], bound, on_event)
        for name, host in self.hosts.items():
            if name not in settled:
                sweep.fail_env(host, None, f"{name}: ansible reported nothing for this host "
                               f"(ansible-playbook {status}, rc {rc}: {last or 'no output'})")
        return envs

    def _probe_event(self, host: Host, kind: Any, data: Mapping[str, Any],
                     envs: dict[tuple[str, str], _Probed], settled: set[str]) -> None:
        """One runner event of a host not yet settled: a failure, or its probes' results."""
        sweep = self.sweep
        res = data.get("res") or {}
        task = str(data.get("task") or "")
        if kind in ("runner_on_unreachable", "runner_on_failed"):
            settled.add(host.name)
            sweep.fail_env(host, None, _task_failure(host.name, kind, res, task))
        elif task == "harness probe" and kind == "runner_on_ok":
            settled.add(host.name)
            seen = set()
            for item in res.get("results") or []:
                python = str(item.get("item"))
                seen.add(python)
                probed = self._probe_result(host, python, item)
                if probed is not None:
                    envs[(host.name, python)] = probed
            for python in self.pythons[host.name]:
                if python not in seen:
                    sweep.fail_env(host, python,
                                   f"{host.name}: ansible did not probe {python!r}")

    def _probe_result(self, host: Host, python: str,
                      item: Mapping[str, Any]) -> _Probed | None:
        sweep = self.sweep
        rc = item.get("rc")
        if rc != 0:
            if item.get("timed_out"):
                sweep.fail_env(host, python, f"{host.name}: probe under {python!r}: "
                               f"{one_line(item.get('stderr')) or 'timed out'}")
            else:
                exc = describe_failure(_command_failure(host.name, python, item),
                                       host.name, python)
                sweep.fail_env(host, python, str(exc))
            return None
        env: dict[str, Any] | None = None
        lines = str(item.get("stdout") or "").splitlines()
        try:
            # The agent waits for its plan after env: its eof comes with the run.
            for msg in read_messages([*lines, '{"type": "eof", "cells": 0}'], host.name,
                                     python):
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
        return _Probed(env, str(item.get("agent") or ""), lines[0])

    # -- phase 2: run -------------------------------------------------------------

    def run_phase(self, runner: PlaybookRunner,
                  envs: Mapping[tuple[str, str], _Probed]) -> None:
        """Plan each probed environment, then run the plans host batch by host batch."""
        sweep = self.sweep
        outdir = runner.private / "out"
        outdir.mkdir(exist_ok=True)
        states, plans, machine_of = self._plan_runs(runner, envs, outdir)
        idle = [h for h in runner.dirs if h not in states]
        batches = machine_batches(list(states), machine_of, sweep.options.parallel_same_machine)
        if len(batches) > 1:
            for batch_no, batch in enumerate(batches, 1):
                sweep.observer.note(
                    f"ansible batch {batch_no}/{len(batches)}: {', '.join(batch)} (hosts that "
                    "are the same machine run in different batches, one after another)")
        data, per_host = self._run_values(runner, states, plans)
        if not per_host:
            return
        values = runner.write_phase("run", data, per_host,
                                       {"harness_batches": batches, "harness_idle": idle})
        plays = run_plays(values, len(batches), bool(idle))
        total = sum(r.recorder.timeout for st in states.values() for r in st.runs)
        if states:
            sweep.observer.note(
                f"ansible engine: running {sum(len(s.runs) for s in states.values())} "
                f"environments on {len(states)} hosts in {len(batches)} "
                f"batch{'es' if len(batches) > 1 else ''} (forks {self.forks})")
        try:
            status, rc, last = runner.run("run", plays, total + PLAYBOOK_SLACK_S,
                                          lambda event: self._run_event(states, event))
        finally:
            self._abort_unfinished(states)
        if status != "successful" and any(st.lost is None for st in states.values()):
            sweep.observer.note(f"ansible-playbook {status} (rc {rc}): {last}")

    def _plan_runs(
        self, runner: PlaybookRunner, envs: Mapping[tuple[str, str], _Probed],
        outdir: Path,
    ) -> tuple[dict[str, _HostState], dict[int, str], dict[str, tuple[str, str] | None]]:
        """Plan every probed environment that has cells left and a temp dir on its host:
        the hosts' runs, each run's plan (JSON, by run number), each host's machine."""
        states: dict[str, _HostState] = {}
        plans: dict[int, str] = {}
        machine_of: dict[str, tuple[str, str] | None] = {}
        counter = 0
        for name, host in self.hosts.items():
            for python in self.pythons[name]:
                probed = envs.get((name, python))
                if probed is None:
                    continue
                env = probed.env
                if env.get("machine_id") and env.get("boot_id"):
                    machine_of.setdefault(name, (str(env["machine_id"]), str(env["boot_id"])))
                recorder = self.sweep.prepare_env(host, python, env)
                if recorder is None or name not in runner.dirs:
                    continue
                counter += 1
                state = states.setdefault(name, _HostState(host))
                state.runs.append(_Run(counter, host, recorder, outdir / f"{counter}.jsonl",
                                       probed))
        for state in states.values():
            # The host's last agent lets the host go at once (no agent of ours follows).
            state.runs[-1].recorder.last_on_host = True
            for run in state.runs:
                plans[run.index] = json.dumps(run.recorder.plan(run.recorder.cells))
        return states, plans, machine_of

    def _run_values(self, runner: PlaybookRunner, states: Mapping[str, _HostState],
                    plans: Mapping[int, str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The run phase's values for every host with a temp dir (runs may be none): the
        action's (the dir, each run's plan, output file and limit) and the plays' (the
        runs' names and Ansible's limit for each)."""
        data: dict[str, Any] = {}
        per_host: dict[str, Any] = {}
        for name, directory in runner.dirs.items():
            st = states.get(name)
            runs = st.runs if st else []
            limits = {r.name: int(math.ceil(r.recorder.timeout)) for r in runs}
            data[name] = {
                "dir": directory,
                "runs": {r.name: {"agent": r.probed.agent, "plan": plans[r.index],
                                  "dest": str(r.dest), "timeout": limits[r.name],
                                  "last": r is runs[-1]}
                         for r in runs},
            }
            per_host[name] = {"runs": [r.name for r in runs],
                              "limits": {n: t + TASK_SLACK_S for n, t in limits.items()}}
        return data, per_host

    def _run_event(self, states: Mapping[str, _HostState], event: Mapping[str, Any]) -> None:
        """One runner event of the run phase: a host lost, or one interpreter's run ended
        (its output is on the controller already: its cells are committed now)."""
        kind = event.get("event")
        data = event.get("event_data") or {}
        state = states.get(data.get("host")) if isinstance(data.get("host"), str) else None
        if state is None or state.lost:
            return
        res = data.get("res") or {}
        task = str(data.get("task") or "")
        if task == "harness agent run" and kind in ("runner_item_on_ok",
                                                    "runner_item_on_failed"):
            run = next((r for r in state.runs
                        if r.name == res.get("harness_run_name") and not r.done), None)
            if run is not None:
                run.result = dict(res)
                self._finish(run)
        elif kind == "runner_on_unreachable" or (
                kind == "runner_on_failed" and task != "harness cleanup"):
            state.lost = _task_failure(state.host.name, str(kind), res, task)

    def _abort_unfinished(self, states: Mapping[str, _HostState]) -> None:
        """Runs whose output never came back: their recorders count what did not run."""
        for st in states.values():
            for run in st.runs:
                if run.done:
                    continue
                reason = st.lost or f"{st.host.name}: ansible did not run {run.recorder.python!r}"
                run.done = True
                run.recorder.abort(_EngineError(reason))

    def _finish(self, run: _Run) -> None:
        """Feed one interpreter's fetched output into its recorder."""
        run.done = True
        host, python, recorder = run.host.name, run.recorder.python, run.recorder
        res = run.result or {}
        lines = [run.probed.hello, *_read_lines(run.dest)]  # its output goes on from hello
        rc = res.get("rc")
        failure: HarnessError | None = None
        if rc is None or res.get("timed_out"):
            reason = (one_line(res.get("msg")) or one_line(res.get("stderr"))
                      or "the run did not finish")
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
