"""run_sweep: a sweep from start to end -- its lease taken, recorded as running, the agent
built, the engine run, the sweep's status stored -- and the user stopping it: Ctrl-C (or SIGTERM)
stops the agents on every host and says how to resume."""

from __future__ import annotations

import contextlib
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import DiskFull, Interrupted
from harness.remote.bundle import build_agent
from harness.sweep.context import Sweep
from harness.sweep.lease import Lease
from harness.sweep.options import Observer, SweepOptions, SweepResult

# Seconds an interrupt waits for the transports to close and the hosts' threads to end.
INTERRUPT_WAIT_S = 30.0


def run_sweep(options: SweepOptions, observer: Observer) -> SweepResult:
    """Run (or resume) a sweep; bad input raises before anything is written."""
    return execute(Sweep(options, observer))


def execute(sweep: Sweep) -> SweepResult:
    """Run ``sweep`` with its engine; Interrupted when the user stops it.

    The sweep's lease (harness.sweep.lease) is taken first -- a resume of a sweep another
    live controller runs is refused -- and removed once the final status is stored."""
    lease = Lease(sweep.warehouse.root, sweep.sweep_id, sweep.controller)
    lease.take()
    try:
        return _execute(sweep)
    finally:
        lease.release()


def _execute(sweep: Sweep) -> SweepResult:
    if sweep.resumed:
        sweep.warehouse.set_sweep_status(sweep.sweep_id, "running")
    else:
        sweep.warehouse.begin_sweep(
            sweep.sweep_id, started_at=sweep.started_at, harness_version=__version__,
            inventory=str(sweep.options.inventory), profile=sweep.profile.name,
            plan=sweep.plan_summary())
    status = "interrupted"
    restore = sigterm_interrupts()
    try:
        with tempfile.TemporaryDirectory(prefix="harness-agent-") as tmp:
            sweep.agent_pyz = build_agent(Path(tmp), extra_modules=sweep.workload_modules)
            sweep.engine.run(sweep)
        if sweep.disk_full is not None:
            raise sweep.disk_full
        status = "failed" if sweep.failures else "complete"
    except DiskFull as exc:
        # Nothing more can be stored; what was committed stays, --resume runs the rest.
        raise stopped_by(sweep, exc) from None
    except KeyboardInterrupt:
        interrupt(sweep)
        options = sweep.options
        raise Interrupted(
            f"sweep {sweep.sweep_id} interrupted; {sweep.cells_run} cells were stored in "
            f"{sweep.warehouse.root}",
            hint=f"resume it: harness sweep --resume {sweep.sweep_id} "
                 f"--inventory {options.inventory} --results {options.results}",
        ) from None
    finally:
        restore()
        try:
            sweep.warehouse.set_sweep_status(
                sweep.sweep_id, status, finished_at=datetime.now(UTC))
        except DiskFull as exc:
            if sweep.disk_full is None:  # the cells are stored; the status is not
                raise stopped_by(sweep, exc) from None
            # no room even for the status: the sweep's row stays 'running' (whole)
    return sweep.result()


def stopped_by(sweep: Sweep, exc: DiskFull) -> DiskFull:
    """The full disk that stopped ``sweep``, with the command that resumes it."""
    options = sweep.options
    return DiskFull(
        f"sweep {sweep.sweep_id} stopped: {exc.message}", path=exc.path,
        needed=exc.needed, free=exc.free,
        hint=f"{sweep.cells_run} cells were stored; free space under "
             f"{sweep.warehouse.root}, then resume: harness sweep --resume "
             f"{sweep.sweep_id} --inventory {options.inventory} --results "
             f"{options.results}",
    )


def interrupt(sweep: Sweep) -> None:
    """Stop every host: close its transport (which kills the agent's process group on
    the host and removes the agent's working directory), then wait for the threads."""
    sweep.stop_event.set()
    sweep.observer.note("interrupted: stopping the agents on every host")
    closers = [threading.Thread(target=close_quietly, args=(t,), daemon=True)
               for t in sweep.open_transports()]
    for c in closers:
        c.start()
    deadline = time.monotonic() + INTERRUPT_WAIT_S
    for t in [*closers, *sweep.threads()]:
        t.join(max(0.0, deadline - time.monotonic()))


def close_quietly(transport: Any) -> None:
    with contextlib.suppress(Exception):
        transport.close()


def sigterm_interrupts() -> Callable[[], None]:
    """Make SIGTERM stop the sweep like SIGINT (in the main thread); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)
