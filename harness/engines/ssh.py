"""The ssh engine (``--engine ssh``, the default): a thread per host, each over its own
:mod:`harness.transport` connection (SSH, or a local subprocess).

Hosts run in parallel (the transports are blocking I/O: the guide's own case for
threads). On one host, cells run strictly one after another. Hosts whose agents
report the same machine-id and boot-id take turns through a per-machine lock
(:class:`MachineLocks`), so two inventory names for one box never disturb each
other's numbers. A cell's repeats are spread over the profile's runs, each a new
agent process. Only transport failures are retried: a host whose connection breaks
is reconnected (bounded, with backoff) and goes on where it stopped. Each agent holds
the host lock while it measures (harness.agent.turn): a host another sweep keeps past
``--host-wait`` is given up as busy, like an unreachable one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import DiskFull, HarnessError, TransportError
from harness.plan.inventory import Host, host_pythons
from harness.remote.owner import HostBusy
from harness.remote.session import AgentSession
from harness.transport.factory import open_transport
from harness.transport.shell_files import transfer_note

if TYPE_CHECKING:
    from harness.sweep.context import Sweep
    from harness.sweep.recorder import EnvRecorder

CONNECT_RETRIES = 3
RETRY_BACKOFF_S = 1.0
# Times a host whose connection broke mid-sweep is reconnected before it is given up.
MAX_RECONNECTS = 2


class SshEngine:
    """A thread per host (:class:`HostWorker`); the main thread waits for them all."""

    name = "ssh"
    spreads_runs = True

    def run(self, sweep: Sweep) -> None:
        locks = MachineLocks(parallel=sweep.options.parallel_same_machine)
        threads = [sweep.spawn(HostWorker(sweep, host, locks), name=f"host-{host.name}")
                   for host in sweep.hosts]
        for t in threads:
            while t.is_alive():
                t.join(0.2)


@dataclass
class MachineLocks:
    """One lock per physical machine (machine-id + boot-id)."""

    parallel: bool
    _locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict)
    _owners: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def lock_for(self, env: Mapping[str, Any], host: str) -> tuple[threading.Lock | None, str]:
        machine, boot = env.get("machine_id"), env.get("boot_id")
        if self.parallel or not machine or not boot:
            return None, ""
        key = (machine, boot)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
            owners = self._owners.setdefault(key, [])
            if host not in owners:
                owners.append(host)
            shared = [h for h in owners if h != host]
        note = (f"{host} is the same machine as {', '.join(shared)}: they run one after another"
                if shared else "")
        return lock, note


class HostWorker:
    """Everything one host does in a sweep (over SSH or locally), in its own thread."""

    def __init__(self, sweep: Sweep, host: Host, locks: MachineLocks) -> None:
        self.sweep = sweep
        self.host = host
        self.locks = locks
        self._said_transfer = False

    def connect(self) -> Any:
        delay = RETRY_BACKOFF_S
        for attempt in range(1, CONNECT_RETRIES + 1):
            try:
                transport = open_transport(
                    self.host, accept_new_host_keys=self.sweep.options.accept_new_host_keys,
                    known_hosts=self.sweep.options.known_hosts)
                if getattr(transport, "transfer", "") == "shell" and not self._said_transfer:
                    self._said_transfer = True  # once per host, not per reconnect
                    self.sweep.observer.note(transfer_note(
                        self.host.name, getattr(transport, "sftp_refused", "")))
                return transport
            except TransportError as exc:
                if not exc.retryable or attempt == CONNECT_RETRIES:
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def __call__(self) -> None:
        """Run every interpreter of the host; reconnect (bounded) when the connection breaks.

        Only transport failures are retried: the connection is opened again up to
        MAX_RECONNECTS times, with backoff, and the host goes on where it stopped (the
        cell in flight is stored as an attempt and runs again). Anything else is
        recorded and the host goes on with what it can still run.
        """
        sweep = self.sweep
        pythons = list(host_pythons(self.host))
        index = 0  # the interpreter being worked on
        pending: EnvRecorder | None = None  # its recorder, once probed
        lost = ""
        delay = RETRY_BACKOFF_S
        for round_ in range(MAX_RECONNECTS + 1):
            if sweep.stopping:
                return
            if round_:
                sweep.observer.note(f"{self.host.name}: connection lost ({lost}); "
                                    f"reconnecting (attempt {round_} of {MAX_RECONNECTS})")
            try:
                transport = self.connect()
            except HarnessError as exc:
                reason = str(exc) if self.host.name in str(exc) else f"{self.host.name}: {exc}"
                self._give_up(pythons, index, pending, reason)
                return
            try:
                with transport:
                    if not sweep.track(transport):
                        return
                    try:
                        session = AgentSession(transport, sweep.agent_pyz, self.host.name)
                        while index < len(pythons):
                            if sweep.stopping:
                                return
                            if pending is None:
                                pending = self.start_python(session, pythons[index])
                            if pending is not None:
                                pending.last_on_host = index == len(pythons) - 1
                                self.run_cells(session, pending)
                            pending = None
                            index += 1
                        return
                    finally:
                        sweep.untrack(transport)
            except DiskFull as exc:
                sweep.stop_for(exc)  # the results dir is full: every host stops
                return
            except (_HostLost, TransportError) as exc:
                lost = str(exc)
                if sweep.stopping:
                    return
                if sweep.stop_event.wait(delay):
                    return
                delay *= 2
            except HarnessError as exc:
                self._give_up(pythons, index, pending, str(exc))
                return
        self._give_up(pythons, index, pending,
                      f"{lost} (gave up after {MAX_RECONNECTS} reconnects)")

    def _give_up(self, pythons: Sequence[str], index: int, pending: EnvRecorder | None,
                 reason: str) -> None:
        """Record ``reason`` for the interpreter in progress and every one after it."""
        if self.sweep.stopping:
            return
        if pending is not None:
            pending.give_up(reason)
            index += 1
        if index == 0:
            self.sweep.fail_env(self.host, None, reason)
            return
        for python in pythons[index:]:
            self.sweep.fail_env(self.host, python, reason)

    def start_python(self, session: AgentSession, python: str) -> EnvRecorder | None:
        """Probe ``python`` and plan its cells; None when it has nothing to run.

        The agent that probed stays running and waits for its plan (``run_cells``
        gives it the cells), so an environment costs one agent start, not two.
        """
        sweep = self.sweep
        try:
            env = session.probe(python, keep=True)
        except TransportError:
            raise
        except HarnessError as exc:
            sweep.fail_env(self.host, python, str(exc))
            return None
        recorder = sweep.prepare_env(self.host, python, env)
        if recorder is None:
            session.release()
        return recorder

    def run_cells(self, session: AgentSession, recorder: EnvRecorder) -> None:
        """Run the recorder's remaining cells, one after another, on this host."""
        lock, note = self.locks.lock_for(recorder.env, self.host.name)
        if note and not recorder.noted:
            recorder.noted = True
            self.sweep.observer.note(note)
        if lock is None:
            self._run_cells(session, recorder)
            return
        if not lock.acquire(blocking=False):
            # Another host of this machine is running: the agent waiting for its plan
            # must not sit out that wait (nor its timeout); the run starts a new one.
            session.release()
            lock.acquire()
        try:
            self._run_cells(session, recorder)
        finally:
            lock.release()

    def _run_cells(self, session: AgentSession, recorder: EnvRecorder) -> None:
        """Run the agent until every cell is done or one run makes no progress.

        The cells' repeats are spread over ``recorder.runs`` agent runs, each a new
        agent process going through all the cells (pyperf's processes). Within a run, a
        run that ends early -- the agent stopped after a cell that hung past its
        timeout, or the agent died in a cell (that cell is skipped, and kept for
        --resume) -- is followed by a new agent for the cells after it.
        """
        sweep = self.sweep
        last_error = ""
        for run_no in range(recorder.run_no, recorder.runs + 1):  # after a reconnect: go on
            recorder.begin_run(run_no)
            last_error = self._one_run(session, recorder) or last_error
            if sweep.stopping or recorder.remaining() or not recorder.has_stash:
                break
        if sweep.stopping:
            recorder.save_stash("interrupted by the user")
            return
        if recorder.remaining() or recorder.skipped or recorder.has_stash:
            recorder.give_up(last_error or "the agent stopped early")

    def _one_run(self, session: AgentSession, recorder: EnvRecorder) -> str:
        """One agent run over the recorder's remaining cells; the last error, if any."""
        sweep = self.sweep
        last_error = ""
        for _ in range(len(recorder.cells) + 1):
            todo = recorder.remaining()
            if not todo or sweep.stopping:
                break
            before = len(todo)
            try:
                for msg in session.run(recorder.python, recorder.plan(todo),
                                       timeout=sum(c.timeout_s for c in todo) + 60.0
                                       + recorder.host_wait):
                    recorder.feed(msg)
            except TransportError as exc:
                reason = "interrupted by the user" if sweep.stopping else str(exc)
                recorder.lose_current(reason)
                if sweep.stopping:
                    recorder.save_stash(reason)
                raise _HostLost(reason) from exc
            except DiskFull:
                raise  # nothing more can be stored: the sweep stops (HostWorker)
            except HarnessError as exc:
                if sweep.stopping:
                    recorder.lose_current("interrupted by the user")
                    break
                last_error = str(exc)
                for lost in recorder.lose_current(last_error):
                    recorder.skipped.add(lost.cell_id)
                    recorder.fail(f"{lost.workload}/{lost.model}: {last_error}")
            else:
                if recorder.busy:  # another sweep kept the host: give the host up
                    raise HostBusy(recorder.busy)
                if recorder.remaining():
                    last_error = (f"agent finished without running "
                                  f"{len(recorder.remaining())} cells")
            if len(recorder.remaining()) >= before:
                break  # no progress: do not loop
        return last_error


class _HostLost(Exception):
    """The connection to a host broke while cells ran; the cell in flight is an attempt."""

