"""The lease of a running sweep: which controller runs it, and proof that it still does.

While a sweep runs, its controller keeps ``RESULTS/leases/<sweep id>.json``::

    {"sweep_id", "host", "pid", "boot_id", "started", "heartbeat", "interval_s"}

written atomically (harness.files) at the start and again every ``interval_s`` by a
daemon thread, and removed once the sweep's final status is stored. A sweep stored as
``running`` whose lease is missing or expired has lost its controller (SIGKILL, OOM,
power): ``harness sweeps`` shows it as ``abandoned`` and ``harness sweep --resume``
takes it over. The lease expires when its heartbeat is older than EXPIRY_INTERVALS
intervals, or at once when it names this machine (same boot id) and its pid is dead,
or another boot of this host.

``HARNESS_LEASE_INTERVAL_S`` sets the heartbeat interval (default 5 s; tests use less);
a reader judges a lease by the interval written in it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.agent.hostlock import pid_alive
from harness.errors import BadInput, HarnessError
from harness.files import write_atomic
from harness.remote.owner import Controller, positive_env
from harness.warehouse.disk import check_writable
from harness.warehouse.layout import Layout

LEASE_INTERVAL_ENV = "HARNESS_LEASE_INTERVAL_S"
DEFAULT_INTERVAL_S = 5.0
EXPIRY_INTERVALS = 3


class SweepInUse(BadInput):
    """``--resume`` of a sweep whose controller still runs it."""


@dataclass(frozen=True)
class LeaseState:
    """What a sweep's lease says: whether its controller still runs, and who it was."""

    alive: bool
    why: str  # for people: "controller h pid 12 is gone", "heartbeat 40 s old", ...
    holder: str  # "host pid N", or "" when there is no lease


def read_lease(root: Path, sweep_id: str) -> dict[str, Any] | None:
    try:
        data = json.loads(Layout(Path(root)).lease(sweep_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def lease_state(data: dict[str, Any] | None, me: Controller, now: float | None = None
                ) -> LeaseState:
    """Judge a lease (see the module docstring); ``me``: the controller reading it."""
    if data is None:
        return LeaseState(False, "no lease: its controller stopped without storing a status",
                          "")
    now = time.time() if now is None else now
    holder = f"{data.get('host')} pid {data.get('pid')}"
    if data.get("boot_id") and data.get("boot_id") == me.boot_id:
        if not pid_alive(data.get("pid")):
            return LeaseState(False, f"controller {holder} is gone", holder)
    elif data.get("host") == me.host and data.get("boot_id") != me.boot_id:
        return LeaseState(False, f"controller {holder} ran before this host rebooted", holder)
    try:
        age = now - float(data.get("heartbeat", 0.0))
        interval = float(data.get("interval_s") or DEFAULT_INTERVAL_S)
    except (TypeError, ValueError):
        return LeaseState(False, "its lease is unreadable", holder)
    if age > EXPIRY_INTERVALS * interval:
        return LeaseState(False, f"controller {holder}: last heartbeat {age:.0f} s ago",
                          holder)
    return LeaseState(True, f"controller {holder}: heartbeat {max(age, 0.0):.0f} s ago",
                      holder)


def shown_status(root: Path, sweep_id: str, status: str, me: Controller) -> str:
    """The status ``harness sweeps`` shows: a stored ``running`` without a live lease is
    ``abandoned``."""
    if status != "running":
        return status
    return "running" if lease_state(read_lease(root, sweep_id), me).alive else "abandoned"


class Lease:
    """The lease this controller keeps on one sweep while it runs it."""

    def __init__(self, root: Path, sweep_id: str, controller: Controller,
                 interval_s: float | None = None) -> None:
        self.path = Layout(Path(root)).lease(sweep_id)
        self.sweep_id = sweep_id
        self.controller = controller
        self.interval_s = interval_s or positive_env(LEASE_INTERVAL_ENV, DEFAULT_INTERVAL_S)
        self.started = datetime.now(UTC).isoformat()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self) -> None:
        """Take the sweep over: SweepInUse when another live controller holds it."""
        state = lease_state(read_lease(self.path.parents[1], self.sweep_id), self.controller)
        if state.alive and state.holder != self.controller.label:
            raise SweepInUse(
                f"sweep {self.sweep_id} is running: {state.why}",
                hint="wait for it, or stop that controller; a sweep whose controller died "
                     "shows as abandoned in `harness sweeps` once its lease expires")
        check_writable(self.path.parents[1])  # a bad --results is bad input (exit 2)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write()
        self._thread = threading.Thread(target=self._beat, name="sweep-lease", daemon=True)
        self._thread.start()

    def _write(self) -> None:
        me = self.controller
        write_atomic(self.path, json.dumps({
            "sweep_id": self.sweep_id, "host": me.host, "pid": me.pid, "boot_id": me.boot_id,
            "started": self.started, "heartbeat": time.time(),
            "interval_s": self.interval_s}), fsync=False)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            # A missed heartbeat (a full disk) is no reason to stop a sweep; a reader
            # then sees the lease expire.
            with contextlib.suppress(OSError, HarnessError):
                self._write()

    def release(self) -> None:
        """Stop the heartbeat and remove the lease (the sweep's status is stored)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval_s + 5.0)
        with contextlib.suppress(OSError):
            self.path.unlink()
