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
from harness.errors import HarnessError, TransportError
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
    row: dict[str, Any] = {"host": host.name, "python": python, "env_id": eid,
                           "status": "failed" if error else "ok", "error": error}
    if env is not None:
        row.update({k: v for k, v in env.items() if k != "numa_cpus"})
        row["numa_cpus"] = json.dumps(env.get("numa_cpus"))
        row["profile_id"] = profile_id(env)
        row["probe"] = canonical_json(env)
    return row


class _HostRun:
    """Everything one host does in a sweep, in its own thread."""

    def __init__(self, sweep: _Sweep, host: Host) -> None:
        self.sweep = sweep
        self.host = host

    def fail(self, python: str | None, reason: str, env: Mapping[str, Any] | None = None) -> None:
        failure = Failure(self.host.name, python, reason)
        self.sweep.record_failure(failure)
        pythons = [python] if python else list(host_pythons(self.host))
        for py in pythons:
            eid = env_id(self.sweep.sweep_id, self.host.name, py)
            if self.sweep.warehouse.has_environment(self.sweep.sweep_id, eid):
                continue
            self.sweep.warehouse.add_environment(
                self.sweep.sweep_id, environment_row(self.host, py, eid, env, reason))

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
            self.fail(None, f"{self.host.name}: {exc}" if self.host.name not in str(exc)
                      else str(exc))
            return
        try:
            with transport:
                session = AgentSession(transport, self.sweep.agent_pyz, self.host.name)
                for python in host_pythons(self.host):
                    self.run_python(session, python)
        except _HostLost:
            return
        except HarnessError as exc:
            self.fail(None, str(exc))

    def run_python(self, session: AgentSession, python: str) -> None:
        sweep = self.sweep
        eid = env_id(sweep.sweep_id, self.host.name, python)
        try:
            env = session.probe(python)
        except HarnessError as exc:
            self.fail(python, str(exc))
            return
        cells = plan_cells(sweep.workloads, sweep.profile, host=self.host.name, python=python,
                           usable_cpus=int(env.get("usable_cpus") or 1), models=sweep.models)
        sweep.observer.host_planned(f"{self.host.name} {python}", len(cells))
        if not sweep.warehouse.has_environment(sweep.sweep_id, eid):
            sweep.warehouse.add_environment(
                sweep.sweep_id, environment_row(self.host, python, eid, env, None))
        done = sweep.warehouse.done_cells(sweep.sweep_id)
        todo = [c for c in cells if (eid, c.cell_id) not in done]
        for cell in cells:
            if cell not in todo:
                sweep.observer.cell_finished(self.host.name, python, cell, "resumed")
        if not todo:
            return
        lock, note = sweep.machine_locks.lock_for(env, self.host.name)
        if note:
            sweep.observer.note(note)
        if lock is None:
            self.run_cells(session, python, eid, todo)
        else:
            with lock:
                self.run_cells(session, python, eid, todo)

    def run_cells(self, session: AgentSession, python: str, eid: str, cells: list[Cell]) -> None:
        sweep = self.sweep
        by_id = {c.cell_id: c for c in cells}
        finished: set[str] = set()
        current: Cell | None = None
        samples: list[Mapping[str, Any]] = []
        timeout = sum(c.timeout_s for c in cells) + 60.0
        try:
            for msg in session.run(python, plan_document(cells), timeout=timeout):
                kind = msg["type"]
                if kind == "cell_start":
                    current = by_id.get(msg["cell_id"])
                    samples = []
                    if current is not None:
                        sweep.observer.cell_started(self.host.name, python, current)
                elif kind == "sample" and current is not None:
                    samples.append(msg)
                elif kind == "cell_done" and msg["cell_id"] in by_id:
                    cell = by_id[msg["cell_id"]]
                    sweep.commit_cell(eid, cell, measurement_rows(cell, eid, samples, msg))
                    finished.add(cell.cell_id)
                    sweep.observer.cell_finished(self.host.name, python, cell, msg["status"])
                    if msg["status"] in ("failed", "timeout"):
                        sweep.record_failure(Failure(
                            self.host.name, python,
                            f"{cell.workload}/{cell.model}: {msg.get('reason') or msg['status']}"))
                    current, samples = None, []
                elif kind in ("error", "protocol_error"):
                    sweep.record_failure(Failure(self.host.name, python, msg["message"]))
        except HarnessError as exc:
            if current is not None and current.cell_id not in finished:
                done = {"status": "failed", "reason": str(exc), "params": dict(current.params)}
                sweep.commit_cell(eid, current, measurement_rows(current, eid, samples, done))
                sweep.observer.cell_finished(self.host.name, python, current, "failed")
                finished.add(current.cell_id)
            missing = len(cells) - len(finished)
            sweep.record_failure(
                Failure(self.host.name, python, f"{exc} ({missing} cells not run)"))
            if isinstance(exc, TransportError):
                raise _HostLost(str(exc)) from exc
            return
        missing = len(cells) - len(finished)
        if missing:
            sweep.record_failure(Failure(
                self.host.name, python, f"agent finished without running {missing} cells"))


class _HostLost(Exception):
    """The connection to a host broke; its failure is already recorded."""


class _Sweep:
    def __init__(self, options: SweepOptions, observer: Observer) -> None:
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
