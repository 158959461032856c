"""The lease of a running sweep: written, judged and released on real files, with a
real dead process and a real heartbeat thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.remote.owner import Controller, this_controller
from harness.sweep.lease import Lease, SweepInUse, lease_state, read_lease, shown_status

SID = "20260101T000000Z-abcdef"


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_lease_beats_and_is_removed(tmp_path: Path) -> None:
    me = this_controller()
    lease = Lease(tmp_path, SID, me, interval_s=0.05)
    lease.take()
    first = read_lease(tmp_path, SID)
    assert first is not None and first["pid"] == os.getpid() and first["boot_id"] == me.boot_id
    time.sleep(0.3)
    later = read_lease(tmp_path, SID)
    assert later is not None and later["heartbeat"] > first["heartbeat"]
    assert lease_state(later, me).alive
    assert shown_status(tmp_path, SID, "running", me) == "running"
    lease.release()
    assert read_lease(tmp_path, SID) is None
    assert shown_status(tmp_path, SID, "running", me) == "abandoned"
    assert shown_status(tmp_path, SID, "complete", me) == "complete"


def test_a_dead_controller_on_this_machine_is_abandoned_at_once() -> None:
    me = this_controller()
    data = {"host": me.host, "pid": _dead_pid(), "boot_id": me.boot_id,
            "heartbeat": time.time(), "interval_s": 5.0}
    state = lease_state(data, me)
    assert not state.alive and "is gone" in state.why


def test_a_remote_controller_expires_after_three_intervals() -> None:
    me = this_controller()
    far = {"host": "elsewhere", "pid": 1, "boot_id": "other-boot", "interval_s": 2.0}
    assert lease_state(dict(far, heartbeat=time.time() - 5), me).alive
    old = lease_state(dict(far, heartbeat=time.time() - 7), me)
    assert not old.alive and "last heartbeat 7 s ago" in old.why


def test_this_host_before_a_reboot_is_abandoned() -> None:
    me = this_controller()
    data = {"host": me.host, "pid": os.getpid(), "boot_id": "before",
            "heartbeat": time.time(), "interval_s": 5.0}
    assert not lease_state(data, me).alive


def test_a_live_lease_of_another_controller_refuses_a_take_over(tmp_path: Path) -> None:
    me = this_controller()
    other = Controller(me.host, os.getppid(), me.boot_id)  # alive: our parent
    theirs = Lease(tmp_path, SID, other, interval_s=60)
    theirs.take()
    try:
        with pytest.raises(SweepInUse, match=f"sweep {SID} is running: controller"):
            Lease(tmp_path, SID, me, interval_s=60).take()
    finally:
        theirs.release()
    path = tmp_path / "leases" / f"{SID}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"host": me.host, "pid": _dead_pid(), "boot_id": me.boot_id,
                                "heartbeat": time.time(), "interval_s": 60}))
    mine = Lease(tmp_path, SID, me, interval_s=60)
    mine.take()  # a dead controller's lease is taken over
    assert read_lease(tmp_path, SID)["pid"] == os.getpid()
    mine.release()


def test_the_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    from harness.errors import OptionError

    monkeypatch.setenv("HARNESS_LEASE_INTERVAL_S", "0.25")
    assert Lease(tmp_path, SID, this_controller()).interval_s == 0.25
    monkeypatch.setenv("HARNESS_LEASE_INTERVAL_S", "soon")
    with pytest.raises(OptionError, match="HARNESS_LEASE_INTERVAL_S"):
        Lease(tmp_path, SID, this_controller())
