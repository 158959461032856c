"""A sweep: every selected host × interpreter runs its cells; results land as they finish.

Hosts run in parallel, a thread each (the transports are blocking I/O: the
guide's own case for threads). On one host, cells run strictly one after
another. Hosts whose agents report the same machine-id and boot-id take turns
through a per-machine lock, so two inventory names for one box never disturb
each other's numbers. Every finished cell is committed to the warehouse at
once; a host that fails is recorded with its reason and the others go on.
"""

from __future__ import annotations

import json
import secrets
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
from harness.catalog import Workload, load_catalog
from harness.errors import HarnessError, OptionError, TransportError
from harness.inventory import Host, load_inventory
from harness.plan import (
    Cell,
    Profile,
    canonical_json,
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
                 eid: str, cells: Sequence[Cell]) -> None:
        self.sweep = sweep
        self.host_record = host
        self.host = host.name
        self.python = python
        self.env = env
        self.eid = eid
        self.cells = tuple(cells)
        self._by_id = {c.cell_id: c for c in cells}
        self.finished: set[str] = set()
        self._current: Cell | None = None
        self._samples: list[Mapping[str, Any]] = []

    @property
    def timeout(self) -> float:
        return sum(c.timeout_s for c in self.cells) + 60.0

    def _fail(self, reason: str) -> None:
        self.sweep.record_failure(Failure(self.host, self.python, reason))

    def _mark_incomplete(self, reason: str) -> None:
        self.sweep.warehouse.add_environment(self.sweep.sweep_id, environment_row(
            self.host_record, self.python, self.eid, self.env, reason))

    def _commit(self, cell: Cell, done: Mapping[str, Any]) -> None:
        rows = measurement_rows(cell, self.eid, self._samples, done)
        self.sweep.commit_cell(self.eid, cell, rows)
        self.finished.add(cell.cell_id)
        self.sweep.observer.cell_finished(self.host, self.python, cell, done["status"])
        self._current, self._samples = None, []

    def feed(self, msg: Mapping[str, Any]) -> None:
        kind = msg["type"]
        if kind == "cell_start":
            self._current = self._by_id.get(msg["cell_id"])
            self._samples = []
            if self._current is not None:
                self.sweep.observer.cell_started(self.host, self.python, self._current)
        elif kind == "sample" and self._current is not None:
            self._samples.append(msg)
        elif kind == "cell_done" and msg["cell_id"] in self._by_id:
            cell = self._by_id[msg["cell_id"]]
            self._commit(cell, msg)
            if msg["status"] in ("failed", "timeout"):
                self._fail(f"{cell.workload}/{cell.model}: {msg.get('reason') or msg['status']}")
        elif kind in ("error", "protocol_error"):
            self._fail(msg["message"])

    def abort(self, exc: HarnessError) -> None:
        """The stream broke: the cell in flight failed with ``exc``; count what did not run."""
        current = self._current
        if current is not None and current.cell_id not in self.finished:
            self._commit(current, {"status": "failed", "reason": str(exc),
                                   "params": dict(current.params)})
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
        try:
            transport = self.connect()
        except HarnessError as exc:
            reason = str(exc) if self.host.name in str(exc) else f"{self.host.name}: {exc}"
            self.sweep.fail_env(self.host, None, reason)
            return
        try:
            with transport:
                session = AgentSession(transport, self.sweep.agent_pyz, self.host.name)
                for python in host_pythons(self.host):
                    self.run_python(session, python)
        except _HostLost:
            return
        except HarnessError as exc:
            self.sweep.fail_env(self.host, None, str(exc))

    def run_python(self, session: AgentSession, python: str) -> None:
        sweep = self.sweep
        try:
            env = session.probe(python)
        except HarnessError as exc:
            sweep.fail_env(self.host, python, str(exc))
            return
        recorder = sweep.prepare_env(self.host, python, env)
        if recorder is None:
            return
        lock, note = sweep.machine_locks.lock_for(env, self.host.name)
        if note:
            sweep.observer.note(note)
        if lock is None:
            self.run_cells(session, recorder)
        else:
            with lock:
                self.run_cells(session, recorder)

    def run_cells(self, session: AgentSession, recorder: EnvRecorder) -> None:
        try:
            for msg in session.run(recorder.python, plan_document(recorder.cells),
                                   timeout=recorder.timeout):
                recorder.feed(msg)
        except HarnessError as exc:
            recorder.abort(exc)
            if isinstance(exc, TransportError):
                raise _HostLost(str(exc)) from exc
            return
        recorder.close()


class _HostLost(Exception):
    """The connection to a host broke; its failure is already recorded."""


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
        self.hosts = load_inventory(options.inventory, options.limit)
        self.warehouse = Warehouse(options.results)
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
                           usable_cpus=int(env.get("usable_cpus") or 1), models=self.models)
        self.observer.host_planned(f"{host.name} {python}", len(cells))
        # Written again on a resume: the host answered, whatever failed before.
        self.warehouse.add_environment(
            self.sweep_id, environment_row(host, python, eid, env, None))
        done = self.warehouse.done_cells(self.sweep_id)
        todo = [c for c in cells if (eid, c.cell_id) not in done]
        for cell in cells:
            if (eid, cell.cell_id) in done:
                self.observer.cell_finished(host.name, python, cell, "resumed")
        return EnvRecorder(self, host, python, env, eid, todo) if todo else None

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
        try:
            with tempfile.TemporaryDirectory(prefix="harness-agent-") as tmp:
                self.agent_pyz = build_agent(Path(tmp))
                if self.options.engine == "ansible":
                    from harness.engines.ansible import run_ansible

                    run_ansible(self, self.options.forks)
                    threads = []
                else:
                    threads = [threading.Thread(target=_HostRun(self, h), name=f"host-{h.name}",
                                                daemon=True) for h in self.hosts]
                for t in threads:
                    t.start()
                for t in threads:
                    while t.is_alive():
                        t.join(0.2)
            status = "failed" if self._failures else "complete"
        finally:
            self.warehouse.set_sweep_status(
                self.sweep_id, status, finished_at=datetime.now(UTC))
        return SweepResult(self.sweep_id, self.cells_run, tuple(self._failures))


def run_sweep(options: SweepOptions, observer: Observer) -> SweepResult:
    """Run (or resume) a sweep; bad input raises before anything is written."""
    return _Sweep(options, observer).run()


ObserverFactory = Callable[[], Observer]
