"""A sweep: every selected host × interpreter runs its cells; results land as they finish.

Hosts run in parallel, a thread each (the transports are blocking I/O: the
guide's own case for threads). On one host, cells run strictly one after
another. Hosts whose agents report the same machine-id and boot-id take turns
through a per-machine lock, so two inventory names for one box never disturb
each other's numbers. Every finished cell is committed to the warehouse at
once; a host that fails is recorded with its reason and the others go on.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from harness import __version__
from harness.bundle import build_agent
from harness.calibration import CalibrationStore, measured_hints
from harness.catalog import Workload, load_catalog
from harness.errors import HarnessError, Interrupted, OptionError, TransportError
from harness.inventory import Host, load_inventory
from harness.plan import (
    Cell,
    Profile,
    canonical_json,
    check_dimensions,
    check_models,
    env_id,
    get_profile,
    plan_cells,
    plan_document,
    profile_id,
    select_workloads,
)
from harness.remote import AgentSession
from harness.transport.factory import open_transport
from harness.warehouse import Warehouse

CONNECT_RETRIES = 3
RETRY_BACKOFF_S = 1.0
# Times a host whose connection broke mid-sweep is reconnected before it is given up.
MAX_RECONNECTS = 2


@dataclass(frozen=True)
class SweepOptions:
    """Everything ``harness sweep`` was asked to do."""

    inventory: Path
    results: Path
    profile: str = "quick"
    limit: str | None = None
    workloads: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    resume: str | None = None
    accept_new_host_keys: bool = False
    parallel_same_machine: bool = False
    known_hosts: Path | None = None
    engine: str = "ssh"
    forks: int = 8
    dimensions: bool | None = None  # plan the dimension cells (None: the profile's default)
    dimension_names: tuple[str, ...] = ()  # only these dimensions (implies dimensions)
    recalibrate: bool = False  # measure the CPU rate again instead of reusing the stored one


@dataclass(frozen=True)
class Failure:
    """Something that did not run, and why."""

    host: str
    python: str | None
    reason: str


@dataclass(frozen=True)
class SweepResult:
    sweep_id: str
    cells_run: int
    failures: tuple[Failure, ...]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


class Observer(Protocol):
    """What a progress display is told."""

    def host_planned(self, host: str, total: int) -> None: ...
    def cell_started(self, host: str, python: str, cell: Cell) -> None: ...
    def cell_finished(self, host: str, python: str, cell: Cell, status: str) -> None: ...
    def failed(self, failure: Failure) -> None: ...
    def note(self, text: str) -> None: ...


def new_sweep_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)


def host_pythons(host: Host) -> tuple[str, ...]:
    """The interpreters to benchmark; a local host with none named uses this one."""
    named = "harness_pythons" in host.vars or "ansible_python_interpreter" in host.vars
    if host.connection == "local" and not named:
        return (sys.executable,)
    return host.pythons


@dataclass
class _MachineLocks:
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


def measurement_rows(
    cell: Cell, eid: str, samples: Sequence[Mapping[str, Any]], done: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The warehouse rows of one finished cell (one per sample, at least one)."""
    status = done["status"]
    reason = done.get("reason")
    base = {
        "env_id": eid, "cell_id": cell.cell_id, "cell_key": cell.cell_key,
        "workload": cell.workload, "model": cell.model, "workers": cell.workers,
        "headline": cell.headline, "status": status,
    }
    rows = []
    for s in samples:
        rows.append({
            **base,
            "params": canonical_json(s.get("params") or done.get("params") or dict(cell.params)),
            "repeat": s["repeat"], "warmup": s["warmup"], "wall_s": s["wall_s"],
            "cpu_user_s": s["cpu_user_s"], "cpu_sys_s": s["cpu_sys_s"],
            "peak_rss_bytes": s["peak_rss_bytes"], "ok": s["ok"],
            "error": s["error"] if s["error"] is not None else (None if s["ok"] else reason),
            "extra": canonical_json(s.get("extra") or {}),
            "block": s.get("block"), "block_pos": s.get("block_pos"),
            "block_group": s.get("block_group"), "probe_s": s.get("probe_s"),
        })
    if not rows:
        rows.append({
            **base, "params": canonical_json(done.get("params") or dict(cell.params)),
            "repeat": 0, "warmup": False, "wall_s": None, "cpu_user_s": None,
            "cpu_sys_s": None, "peak_rss_bytes": None, "ok": False,
            "error": reason or f"cell ended {status} without samples", "extra": "{}",
        })
    return rows


def environment_row(
    host: Host, python: str, eid: str, env: Mapping[str, Any] | None, error: str | None
) -> dict[str, Any]:
    """The environments row: ok, incomplete (probed, then failed: error) or failed."""
    status = "ok" if error is None else ("incomplete" if env is not None else "failed")
    row: dict[str, Any] = {"host": host.name, "python": python, "env_id": eid,
                           "status": status, "error": error}
    if env is not None:
        row.update({k: v for k, v in env.items() if k != "numa_cpus"})
        row["numa_cpus"] = json.dumps(env.get("numa_cpus"))
        row["profile_id"] = profile_id(env)
        row["probe"] = canonical_json(env)
    return row


class EnvRecorder:
    """Turns one environment's agent messages into committed cells and recorded failures.

    Every engine feeds it the validated messages of one host × interpreter; the
    recorder commits each cell the moment its ``cell_done`` arrives.
    """

    def __init__(self, sweep: _Sweep, host: Host, python: str, env: Mapping[str, Any],
                 eid: str, cells: Sequence[Cell],
                 hints: Mapping[str, float] | None = None) -> None:
        self.sweep = sweep
        # Calibration for the agent's plan: the stored one, or once this sweep's agent has
        # measured it, that (a re-started agent then runs the same loop sizes).
        self.hints: dict[str, float] = dict(hints or {})
        self.host_record = host
        self.host = host.name
        self.python = python
        self.env = env
        self.eid = eid
        self.cells = tuple(cells)
        self._by_id = {c.cell_id: c for c in cells}
        self.finished: set[str] = set()
        # Cells left out of this sweep's later runs (the agent died in them): --resume runs them.
        self.skipped: set[str] = set()
        # The cells the agent started and has not finished (a group's cells run
        # interleaved, so several are open at once), with their samples so far.
        self._open: dict[str, list[Mapping[str, Any]]] = {}
        self.noted = False  # the same-machine note was shown
        # A cell's repeats are spread over `runs` agent processes (the ansible engine runs
        # one). Samples of the runs before the last wait in `_stash` until the last run
        # commits the cell with all of them; `_ran` holds the cells done in this run.
        self.runs = sweep.profile.runs if sweep.options.engine == "ssh" else 1
        self.run_no = 1
        self._stash: dict[str, list[Mapping[str, Any]]] = {}
        self._ran: set[str] = set()

    @property
    def timeout(self) -> float:
        return sum(c.timeout_s for c in self.cells) + 60.0

    def remaining(self) -> tuple[Cell, ...]:
        """The cells still to run in this agent run of the sweep, in plan order."""
        return tuple(c for c in self.cells
                     if c.cell_id not in self.finished and c.cell_id not in self.skipped
                     and c.cell_id not in self._ran)

    def keep_blocks(self, attempts: Mapping[str, Sequence[Mapping[str, Any]]],
                    done_groups: set[str]) -> None:
        """On a resume: the complete blocks of each group's interrupted attempt (every
        cell of the group to run has a good timed sample in the block) are kept, so a
        finished block is never measured again; the agent numbers its blocks on from
        them, and the cells' rows will hold them. A block the interruption cut is
        dropped and measured again whole. Groups with a cell already stored start afresh
        (their stored blocks and these would not pair)."""
        groups: dict[str, list[Cell]] = {}
        for cell in self.cells:
            groups.setdefault(cell.group, []).append(cell)
        for group, cells in groups.items():
            if not group or group in done_groups:
                continue
            # An attempt's rows are all stored as failed (it is not a result); a timed
            # row with a block and a wall time was a good sample (a repeat that failed
            # ends its cell, which is then stored, not left to an attempt).
            timed = {c.cell_id: {r["block"]: r for r in attempts.get(c.cell_id, ())
                                 if r.get("block") is not None and not r.get("warmup")
                                 and r.get("wall_s") is not None}
                     for c in cells}
            complete = set.intersection(*(set(rows) for rows in timed.values()))
            for cell in cells:
                kept = [dict(timed[cell.cell_id][b], ok=True, error=None)
                        for b in sorted(complete)]
                if kept:
                    self._stash[cell.cell_id] = kept

    @property
    def has_stash(self) -> bool:
        return bool(self._stash)

    def begin_run(self, run_no: int) -> None:
        if run_no != self.run_no:
            self.run_no = run_no
            self._ran = set()

    def plan(self, cells: Sequence[Cell]) -> dict[str, Any]:
        """The agent's plan for ``cells`` in this run (earlier runs' timed samples with it,
        as ``(block, wall_s)``, so the agent numbers its blocks on and counts them)."""
        prior = {cid: [(s["block"], s["wall_s"]) for s in samples
                       if not s["warmup"] and s["ok"] and s.get("block") is not None]
                 for cid, samples in self._stash.items()}
        return plan_document(cells, hints=self.hints, run=self.run_no, runs=self.runs,
                             prior=prior, seed=f"{self.sweep.sweep_id}/{self.eid}")

    def _tagged(self, samples: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        if self.runs <= 1:
            return list(samples)
        return [dict(s, extra=dict(s.get("extra") or {}, run=self.run_no)) for s in samples]

    def _merged(self, cell_id: str, samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Earlier runs' samples, then these, numbered 0, 1, ... in that order."""
        merged = [*self._stash.pop(cell_id, []), *self._tagged(samples)]
        return [dict(s, repeat=i) for i, s in enumerate(merged)]

    def save_stash(self, reason: str) -> None:
        """Cells that ran in an earlier run but not the last: their samples become
        attempts (kept, not results; --resume runs the cell again)."""
        for cell_id in list(self._stash):
            self._store_attempt(self._by_id[cell_id], [], reason)

    def _store_attempt(self, cell: Cell, samples: Sequence[Mapping[str, Any]],
                       reason: str) -> None:
        """The cell's samples so far (earlier runs' too) as an attempt: failed, not ok."""
        rows = measurement_rows(cell, self.eid, self._merged(cell.cell_id, samples), {
            "status": "failed", "reason": reason, "params": dict(cell.params)})
        for row in rows:
            row["status"], row["ok"] = "failed", False
            row["error"] = row["error"] or reason
        self.sweep.warehouse.add_attempt(self.sweep.sweep_id, self.eid, cell.cell_id, rows)

    def _fail(self, reason: str) -> None:
        self.sweep.record_failure(Failure(self.host, self.python, reason))

    def _mark_incomplete(self, reason: str) -> None:
        self.sweep.warehouse.add_environment(self.sweep.sweep_id, environment_row(
            self.host_record, self.python, self.eid, self.env, reason))

    def _commit(self, cell: Cell, done: Mapping[str, Any]) -> None:
        samples = self._open.pop(cell.cell_id, [])
        rows = measurement_rows(cell, self.eid, self._merged(cell.cell_id, samples), done)
        self.sweep.commit_cell(self.eid, cell, rows)
        self.finished.add(cell.cell_id)
        self.sweep.observer.cell_finished(self.host, self.python, cell, done["status"])

    def feed(self, msg: Mapping[str, Any]) -> None:
        kind = msg["type"]
        if kind == "cell_start":
            cell = self._by_id.get(msg["cell_id"])
            if cell is not None:
                self._open[cell.cell_id] = []
                self.sweep.observer.cell_started(self.host, self.python, cell)
        elif kind == "sample" and msg["cell_id"] in self._open:
            self._open[msg["cell_id"]].append(msg)
        elif kind == "cell_done" and msg["cell_id"] in self._by_id:
            cell = self._by_id[msg["cell_id"]]
            self._keep_calibration(msg.get("params") or {})
            if self.run_no < self.runs and msg["status"] == "ok":
                # more runs to come: keep the samples, commit with the last run
                self._stash[cell.cell_id] = [*self._stash.get(cell.cell_id, []),
                                             *self._tagged(self._open.pop(cell.cell_id, []))]
                self._ran.add(cell.cell_id)
                return
            self._commit(cell, msg)
            if msg["status"] in ("failed", "timeout"):
                self._fail(f"{cell.workload}/{cell.model}: {msg.get('reason') or msg['status']}")
        elif kind in ("error", "protocol_error"):
            self._fail(msg["message"])

    def _keep_calibration(self, params: Mapping[str, Any]) -> None:
        found = measured_hints(params)
        if found and any(self.hints.get(k) != v for k, v in found.items()):
            self.hints.update(found)
            self.sweep.calibration.save(self.host, self.python, self.env, self.hints,
                                        self.sweep.sweep_id)

    def lose_current(self, reason: str) -> list[Cell]:
        """The stream broke: store the cells in flight (a group's) as attempts, not results.

        ``--resume`` runs such cells again (the warehouse never counts an attempt as
        done). Returns the cells, empty when none was in flight.
        """
        lost = []
        for cell_id, samples in list(self._open.items()):
            del self._open[cell_id]
            cell = self._by_id[cell_id]
            if cell_id in self.finished:
                continue
            self._store_attempt(cell, samples, reason)
            self.sweep.observer.cell_finished(self.host, self.python, cell, "failed")
            lost.append(cell)
        return lost

    def give_up(self, reason: str) -> None:
        """Nothing more runs in this sweep: record why and what is missing."""
        self.save_stash(reason)
        missing = len(self.cells) - len(self.finished)
        if missing:
            why = f"{reason} ({missing} cells not run)"
            self._fail(why)
            self._mark_incomplete(why)

    def abort(self, exc: HarnessError) -> None:
        """The stream broke: the cell in flight failed with ``exc``; count what did not run."""
        self.lose_current(str(exc))
        self.save_stash(str(exc))
        missing = len(self.cells) - len(self.finished)
        reason = f"{exc} ({missing} cells not run)"
        self._fail(reason)
        self._mark_incomplete(reason)

    def close(self) -> None:
        """The stream ended cleanly; cells the agent never reported are failures."""
        missing = len(self.cells) - len(self.finished)
        if missing:
            reason = f"agent finished without running {missing} cells"
            self._fail(reason)
            self._mark_incomplete(reason)


class _HostRun:
    """Everything one host does in a sweep (SSH or local engine), in its own thread."""

    def __init__(self, sweep: _Sweep, host: Host) -> None:
        self.sweep = sweep
        self.host = host

    def connect(self) -> Any:
        delay = RETRY_BACKOFF_S
        for attempt in range(1, CONNECT_RETRIES + 1):
            try:
                return open_transport(
                    self.host, accept_new_host_keys=self.sweep.options.accept_new_host_keys,
                    known_hosts=self.sweep.options.known_hosts)
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
                                self.run_cells(session, pending)
                            pending = None
                            index += 1
                        return
                    finally:
                        sweep.untrack(transport)
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

    def run_python(self, session: AgentSession, python: str) -> None:
        recorder = self.start_python(session, python)
        if recorder is not None:
            self.run_cells(session, recorder)

    def run_cells(self, session: AgentSession, recorder: EnvRecorder) -> None:
        """Run the recorder's remaining cells, one after another, on this host."""
        lock, note = self.sweep.machine_locks.lock_for(recorder.env, self.host.name)
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
                                       timeout=sum(c.timeout_s for c in todo) + 60.0):
                    recorder.feed(msg)
            except TransportError as exc:
                reason = "interrupted by the user" if sweep.stopping else str(exc)
                recorder.lose_current(reason)
                if sweep.stopping:
                    recorder.save_stash(reason)
                raise _HostLost(reason) from exc
            except HarnessError as exc:
                if sweep.stopping:
                    recorder.lose_current("interrupted by the user")
                    break
                last_error = str(exc)
                for lost in recorder.lose_current(last_error):
                    recorder.skipped.add(lost.cell_id)
                    recorder._fail(f"{lost.workload}/{lost.model}: {last_error}")
            else:
                if recorder.remaining():
                    last_error = (f"agent finished without running "
                                  f"{len(recorder.remaining())} cells")
            if len(recorder.remaining()) >= before:
                break  # no progress: do not loop
        return last_error


class _HostLost(Exception):
    """The connection to a host broke while cells ran; the cell in flight is an attempt."""


class _Sweep:
    def __init__(self, options: SweepOptions, observer: Observer) -> None:
        if options.engine not in ("ssh", "ansible"):
            raise OptionError(f"--engine {options.engine!r} is not an engine",
                              hint="use ssh or ansible")
        if not 1 <= options.forks <= 1000:
            raise OptionError(f"--forks {options.forks} is out of range", hint="use 1 to 1000")
        self.options = options
        self.observer = observer
        self.profile: Profile = get_profile(options.profile)
        catalog = load_catalog()
        self.workloads: tuple[Workload, ...] = select_workloads(catalog, options.workloads)
        self.models = check_models(options.models)
        self.dimension_names = check_dimensions(self.workloads, options.dimension_names)
        if self.dimension_names and options.dimensions is False:
            raise OptionError("--dimension needs the dimension cells",
                              hint="drop --no-dimensions")
        self.dimensions = ((bool(self.dimension_names) or self.profile.dimensions)
                           if options.dimensions is None else options.dimensions)
        self.hosts = load_inventory(options.inventory, options.limit)
        self.warehouse = Warehouse(options.results)
        self.warehouse.check_schema()  # never add to a warehouse a newer harness wrote
        self.calibration = CalibrationStore(options.results)
        self.machine_locks = _MachineLocks(parallel=options.parallel_same_machine)
        self._failures: list[Failure] = []
        self._lock = threading.Lock()
        self.cells_run = 0
        now = datetime.now(UTC)
        if options.resume:
            self.sweep_id = self.warehouse.resolve_sweep_id(options.resume)
            self.resumed = True
        else:
            self.sweep_id = new_sweep_id(now)
            self.resumed = False
        self.started_at = now
        self.agent_pyz = Path()
        self.stop_event = threading.Event()
        self._transports: set[Any] = set()

    @property
    def stopping(self) -> bool:
        """The user interrupted the sweep: start nothing new."""
        return self.stop_event.is_set()

    def track(self, transport: Any) -> bool:
        """Remember an open transport so an interrupt can close it; False when stopping."""
        with self._lock:
            if self.stopping:
                return False
            self._transports.add(transport)
            return True

    def untrack(self, transport: Any) -> None:
        with self._lock:
            self._transports.discard(transport)

    def interrupt(self, threads: Sequence[threading.Thread]) -> None:
        """Stop every host: close its transport (which kills the agent's process group on
        the host and removes the agent's working directory), then wait for the threads."""
        self.stop_event.set()
        self.observer.note("interrupted: stopping the agents on every host")
        with self._lock:
            transports = list(self._transports)
        closers = [threading.Thread(target=_close_quietly, args=(t,), daemon=True)
                   for t in transports]
        for c in closers:
            c.start()
        deadline = time.monotonic() + INTERRUPT_WAIT_S
        for t in [*closers, *threads]:
            t.join(max(0.0, deadline - time.monotonic()))

    def record_failure(self, failure: Failure) -> None:
        with self._lock:
            self._failures.append(failure)
        self.observer.failed(failure)

    def fail_env(self, host: Host, python: str | None, reason: str) -> None:
        """Record that ``python`` (or every interpreter) of ``host`` could not run."""
        self.record_failure(Failure(host.name, python, reason))
        for py in [python] if python else list(host_pythons(host)):
            eid = env_id(self.sweep_id, host.name, py)
            if not self.warehouse.has_environment(self.sweep_id, eid):
                self.warehouse.add_environment(
                    self.sweep_id, environment_row(host, py, eid, None, reason))

    def prepare_env(self, host: Host, python: str, env: Mapping[str, Any]) -> EnvRecorder | None:
        """Store the fingerprint, plan the cells; a recorder for what is left to run."""
        eid = env_id(self.sweep_id, host.name, python)
        cells = plan_cells(self.workloads, self.profile, host=host.name, python=python,
                           usable_cpus=int(env.get("usable_cpus") or 1), models=self.models,
                           dimensions=self.dimensions, dimension_names=self.dimension_names)
        self.observer.host_planned(f"{host.name} {python}", len(cells))
        # Written again on a resume: the host answered, whatever failed before.
        self.warehouse.add_environment(
            self.sweep_id, environment_row(host, python, eid, env, None))
        done = self.warehouse.done_cells(self.sweep_id)
        todo = [c for c in cells if (eid, c.cell_id) not in done]
        for cell in cells:
            if (eid, cell.cell_id) in done:
                self.observer.cell_finished(host.name, python, cell, "resumed")
        hints = {} if self.options.recalibrate else self.calibration.load(host.name, python, env)
        if not todo:
            return None
        recorder = EnvRecorder(self, host, python, env, eid, todo, hints)
        if self.resumed:
            recorder.keep_blocks(self.warehouse.latest_attempts(self.sweep_id, eid),
                                 done_groups={c.group for c in cells
                                              if (eid, c.cell_id) in done})
        return recorder

    def commit_cell(self, eid: str, cell: Cell, rows: list[dict[str, Any]]) -> None:
        self.warehouse.add_cell(self.sweep_id, eid, cell.cell_id, rows)
        with self._lock:
            self.cells_run += 1

    def plan_summary(self) -> dict[str, Any]:
        return {
            "profile": self.profile.name,
            "workloads": [w.name for w in self.workloads],
            "models": list(self.models),
            "hosts": [h.name for h in self.hosts],
            "limit": self.options.limit,
            "dimensions": self.dimensions,
            "dimension_names": list(self.dimension_names),
        }

    def run(self) -> SweepResult:
        if self.resumed:
            self.warehouse.set_sweep_status(self.sweep_id, "running")
        else:
            self.warehouse.begin_sweep(
                self.sweep_id, started_at=self.started_at, harness_version=__version__,
                inventory=str(self.options.inventory), profile=self.profile.name,
                plan=self.plan_summary())
        status = "interrupted"
        threads: list[threading.Thread] = []
        restore = _sigterm_interrupts()
        try:
            with tempfile.TemporaryDirectory(prefix="harness-agent-") as tmp:
                self.agent_pyz = build_agent(Path(tmp))
                if self.options.engine == "ansible":
                    from harness.engines.ansible import run_ansible

                    run_ansible(self, self.options.forks)
                else:
                    threads = [threading.Thread(target=_HostRun(self, h), name=f"host-{h.name}",
                                                daemon=True) for h in self.hosts]
                for t in threads:
                    t.start()
                for t in threads:
                    while t.is_alive():
                        t.join(0.2)
            status = "failed" if self._failures else "complete"
        except KeyboardInterrupt:
            self.interrupt(threads)
            raise Interrupted(
                f"sweep {self.sweep_id} interrupted; {self.cells_run} cells were stored in "
                f"{self.warehouse.root}",
                hint=f"resume it: harness sweep --resume {self.sweep_id} "
                     f"--inventory {self.options.inventory} --results {self.options.results}",
            ) from None
        finally:
            restore()
            self.warehouse.set_sweep_status(
                self.sweep_id, status, finished_at=datetime.now(UTC))
        return SweepResult(self.sweep_id, self.cells_run, tuple(self._failures))


INTERRUPT_WAIT_S = 30.0


def _close_quietly(transport: Any) -> None:
    with contextlib.suppress(Exception):
        transport.close()


def _sigterm_interrupts() -> Callable[[], None]:
    """Make SIGTERM stop the sweep like SIGINT (in the main thread); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def run_sweep(options: SweepOptions, observer: Observer) -> SweepResult:
    """Run (or resume) a sweep; bad input raises before anything is written."""
    return _Sweep(options, observer).run()

