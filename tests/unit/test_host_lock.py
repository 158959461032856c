"""The agent's host lock and the owner markers of working directories, on real files,
real flock locks and real processes (a child python holds a lock, then is killed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.agent import workdirs
from harness.agent.hostlock import HostLock, boot_id, describe

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_holder_waits_then_gets_the_holder(tmp_path: Path) -> None:
    first = HostLock("sweep-a", "box pid 1", str(tmp_path), keep_s=0)
    second = HostLock("sweep-b", "box pid 2", str(tmp_path), keep_s=0)
    assert first.acquire(0) is None and first.held
    seen = []
    holder = second.acquire(0.3, seen.append, poll_s=0.05)
    assert holder is not None and not second.held
    assert describe(holder).startswith("sweep sweep-a from controller box pid 1 since ")
    assert seen and seen[0]["sweep"] == "sweep-a" and seen[0]["pid"] == os.getpid()
    assert seen[0]["boot_id"] == boot_id()
    first.release()
    assert second.acquire(0) is None
    second.release()
    assert not list(tmp_path.glob("harness-host.*.lock"))  # the last one tidies up
    assert not (tmp_path / "harness-host.json").exists()


def test_agents_of_one_sweep_share_the_host(tmp_path: Path) -> None:
    a1 = HostLock("s", "box pid 1", str(tmp_path), keep_s=0)
    a2 = HostLock("s", "box pid 1", str(tmp_path), keep_s=0)
    other = HostLock("s", "box pid 9", str(tmp_path))  # the same sweep resumed elsewhere
    assert a1.acquire(0) is None and a2.acquire(0) is None
    a1.release()
    assert other.acquire(0) is not None  # a2 still holds it
    a2.release()
    assert other.acquire(0) is None
    other.release()


def test_a_dead_holder_is_taken_over(tmp_path: Path) -> None:
    code = ("import sys, time; sys.path.insert(0, %r); from harness.agent.hostlock import "
            "HostLock; HostLock('dead', 'elsewhere pid 5', %r).acquire(0); print('held', "
            "flush=True); time.sleep(60)" % (str(ROOT), str(tmp_path)))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        mine = HostLock("live", "box pid 2", str(tmp_path))
        assert mine.acquire(0)["sweep"] == "dead"
    finally:
        child.kill()
        child.wait()
    assert mine.acquire(0) is None
    holder = json.loads((tmp_path / "harness-host.json").read_text())
    assert holder["sweep"] == "live" and holder["pid"] == os.getpid()
    mine.release()


def test_a_holder_keeps_the_host_between_its_agents(tmp_path: Path) -> None:
    first = HostLock("a", "box pid 1", str(tmp_path), keep_s=0.5)
    again = HostLock("a", "box pid 1", str(tmp_path), keep_s=0.5)
    other = HostLock("b", "box pid 2", str(tmp_path))
    assert first.acquire(0) is None
    since = json.loads((tmp_path / "harness-host.json").read_text())["since"]
    first.release()
    assert other.acquire(0)["sweep"] == "a"  # a's next agent comes first
    assert again.acquire(0) is None  # and keeps the holder's start time
    assert json.loads((tmp_path / "harness-host.json").read_text())["since"] == since
    again.release()
    assert other.acquire(2, poll_s=0.05) is None  # taken once the moment is over
    other.release()


def _workdir(parent: Path, name: str, marker: dict | None, age_s: float = 0.0) -> Path:
    d = parent / name
    d.mkdir(mode=0o700)
    (d / "agent.pyz").write_text("x")
    if marker is not None:
        m = d / workdirs.MARKER
        m.write_text(json.dumps(marker))
        t = time.time() - age_s
        os.utime(m, (t, t))
    return d


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_only_dead_owners_workdirs_are_removed(tmp_path: Path) -> None:
    boot = boot_id()
    dead = _dead_pid()
    local_dead = {"sweep": "s1", "controller_host": "here", "controller_boot_id": boot,
                  "controller_pid": dead, "agent_pid": dead, "agent_boot_id": boot}
    local_live = dict(local_dead, sweep="s2", controller_pid=os.getpid())
    remote_fresh = dict(local_dead, sweep="s3", controller_boot_id="elsewhere")
    remote_old = dict(remote_fresh, sweep="s4")
    agent_live = dict(remote_old, sweep="s5", agent_pid=os.getpid())
    other_boot = dict(agent_live, sweep="s6", agent_boot_id="before-reboot")
    made = {
        "dead": _workdir(tmp_path, "harness.dead", local_dead),
        "live": _workdir(tmp_path, "harness.live", local_live),
        "fresh": _workdir(tmp_path, "harness.fresh", remote_fresh, age_s=10),
        "old": _workdir(tmp_path, "harness.old", remote_old, age_s=1000),
        "agent": _workdir(tmp_path, "harness.agent", agent_live, age_s=1000),
        "reboot": _workdir(tmp_path, "harness.reboot", other_boot),
        "nomarker": _workdir(tmp_path, "harness.nomarker", None),
        "notours": _workdir(tmp_path, "other.dead", local_dead),
        "mine": _workdir(tmp_path, "harness.mine", local_dead),
    }
    (tmp_path / "harness.link").symlink_to(made["dead"])
    removed = workdirs.remove_dead_workdirs(str(tmp_path), str(made["mine"]), stale_s=300)
    assert sorted(Path(p).name for p in removed) == ["harness.dead", "harness.old",
                                                     "harness.reboot"]
    for name in ("live", "fresh", "agent", "nomarker", "notours", "mine"):
        assert made[name].is_dir(), name
    assert (tmp_path / "harness.link").is_symlink()


def test_a_live_sibling_keeps_its_controllers_idle_workdir(tmp_path: Path) -> None:
    boot = boot_id()
    dead = _dead_pid()
    idle = {"sweep": "s", "controller_host": "far", "controller_boot_id": "elsewhere",
            "controller_pid": 7, "agent_pid": dead, "agent_boot_id": boot}
    _workdir(tmp_path, "harness.idle", idle, age_s=1000)
    _workdir(tmp_path, "harness.busy", dict(idle, agent_pid=os.getpid()))
    assert workdirs.dead_workdirs(str(tmp_path), None, stale_s=300) == []


def test_write_marker_names_the_owner(tmp_path: Path) -> None:
    assert workdirs.write_marker(str(tmp_path), {"sweep": "s", "controller_pid": 3})
    data = json.loads((tmp_path / workdirs.MARKER).read_text())
    assert data["sweep"] == "s" and data["agent_pid"] == os.getpid()
    assert oct((tmp_path / workdirs.MARKER).stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("bad", [
    [], {}, {"sweep": "s", "controller": "c"}, {"sweep": "", "controller": "c", "wait_s": 1},
    {"sweep": "s", "controller": "c", "wait_s": -1},
    {"sweep": "s", "controller": "c", "wait_s": 1, "stale_s": 0},
    {"sweep": "s", "controller": "c", "wait_s": 1, "owner": []},
])
def test_a_bad_host_lock_is_a_plan_error(bad: object) -> None:
    from harness.agent.plan import PlanError, parse_plan

    with pytest.raises(PlanError, match="host_lock"):
        parse_plan({"protocol": 3, "cells": [], "host_lock": bad})
