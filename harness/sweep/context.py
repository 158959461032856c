"""Sweep: one sweep's context -- its options, plan, hosts, warehouse and failures -- and
what an engine asks of it: plan an environment (``prepare_env``), record what could not
run (``fail_env``, ``record_failure``), commit a cell, start a host's thread, and know
when the user stopped the sweep.

The sweep gets its engine from :mod:`harness.engines.registry` and never knows which
one runs; :func:`harness.sweep.run.run_sweep` runs it from start to end.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.engines.registry import get_engine
from harness.errors import DiskFull, OptionError
from harness.plan.calibration import CalibrationStore
from harness.plan.catalog import Workload, load_catalog, user_modules
from harness.plan.cells import (
    Cell,
    Profile,
    check_dimensions,
    check_models,
    env_id,
    get_profile,
    plan_cells,
    select_workloads,
)
from harness.plan.inventory import Host, host_pythons, load_inventory
from harness.remote.owner import host_lock_spec, this_controller
from harness.remote.provisioned import expand_provisioned
from harness.sweep.options import Failure, Observer, SweepOptions, SweepResult
from harness.sweep.recorder import EnvRecorder
from harness.sweep.rows import environment_row
from harness.warehouse import Warehouse

if TYPE_CHECKING:
    from harness.engines.base import Engine


def _close_quietly(transport: Any) -> None:
    with contextlib.suppress(Exception):
        transport.close()


def new_sweep_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)


class Sweep:
    """One sweep: what it runs, where it stores it, what failed; shared by the hosts'
    threads (the counters and the lists of failures, transports and threads are locked).
    """

    def __init__(self, options: SweepOptions, observer: Observer) -> None:
        self.options = options
        self.observer = observer
        self.engine: Engine = get_engine(options.engine)
        self.profile: Profile = get_profile(options.profile)
        catalog = load_catalog(extra=options.workload_dirs)
        self.workload_modules = user_modules(options.workload_dirs)  # for the agent
        self.workloads: tuple[Workload, ...] = select_workloads(catalog, options.workloads)
        self.models = check_models(options.models)
        self.dimension_names = check_dimensions(self.workloads, options.dimension_names)
        if self.dimension_names and options.dimensions is False:
            raise OptionError("--dimension needs the dimension cells",
                              hint="drop --no-dimensions")
        self.dimensions = ((bool(self.dimension_names) or self.profile.dimensions)
                           if options.dimensions is None else options.dimensions)
        # ``harness_pythons: provisioned`` becomes the paths the hosts' manifests list.
        self.hosts = expand_provisioned(load_inventory(options.inventory, options.limit),
                                        accept_new_host_keys=options.accept_new_host_keys,
                                        known_hosts=options.known_hosts)
        self.warehouse = Warehouse(options.results)
        self.warehouse.check_schema()  # never add to a warehouse a newer harness wrote
        self.calibration = CalibrationStore(options.results)
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
        self.controller = this_controller()
        # What every agent's plan carries: the host lock's holder and wait, the owner marker.
        self.host_lock = host_lock_spec(self.sweep_id, options.host_wait, self.controller)
        self.agent_pyz = Path()
        self.stop_event = threading.Event()
        self._transports: set[Any] = set()
        self._threads: list[threading.Thread] = []
        self.disk_full: DiskFull | None = None  # the write that found no room: stop

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

    def open_transports(self) -> list[Any]:
        """The transports open now (an interrupt closes them)."""
        with self._lock:
            return list(self._transports)

    def stop_for(self, exc: DiskFull) -> None:
        """A write under the results dir found no room: keep the first such error and
        stop every host (nothing more could be stored)."""
        with self._lock:
            if self.disk_full is None:
                self.disk_full = exc
            open_now = list(self._transports)
        self.stop_event.set()
        for transport in open_now:  # stop the other hosts' agents (as an interrupt does)
            threading.Thread(target=_close_quietly, args=(transport,), daemon=True).start()

    def spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        """Start ``target`` in a daemon thread an interrupt waits for; a full disk met
        in it stops the sweep (:meth:`stop_for`)."""
        def run() -> None:
            try:
                target()
            except DiskFull as exc:
                self.stop_for(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()
        return thread

    def threads(self) -> list[threading.Thread]:
        """The threads started with :meth:`spawn`."""
        with self._lock:
            return list(self._threads)

    def record_failure(self, failure: Failure) -> None:
        with self._lock:
            self._failures.append(failure)
        self.observer.failed(failure)

    @property
    def failures(self) -> tuple[Failure, ...]:
        with self._lock:
            return tuple(self._failures)

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

    def result(self) -> SweepResult:
        return SweepResult(self.sweep_id, self.cells_run, self.failures)
