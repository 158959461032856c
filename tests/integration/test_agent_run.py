"""``python -m harness.agent run``: keepalives, timeouts, failures; the agent carries on."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.agent.protocol import parse_line

ROOT = Path(__file__).resolve().parents[2]


def run(plan, timeout=120):
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "harness.agent", "run", "-"], cwd=str(ROOT),
                          input=json.dumps(plan).encode(), capture_output=True,
                          timeout=timeout)
    msgs = [parse_line(line) for line in proc.stdout.decode().splitlines()]
    return proc, msgs, time.monotonic() - t0


def cell(cell_id, impl, model, params, workers=2, warmups=0, repeats=1, timeout_s=60):
    workload = {"cpu": "cpu_bound", "net": "net_high_latency", "disk": "disk_io"}.get(impl, impl)
    return {"cell_id": cell_id, "workload": workload, "implementation": impl, "model": model,
            "workers": workers, "params": params, "warmups": warmups, "repeats": repeats,
            "timeout_s": timeout_s}


def done_by_id(msgs):
    return {m["cell_id"]: m for m in msgs if m["type"] == "cell_done"}


def test_keepalives_while_a_long_cell_runs():
    plan = {"protocol": 2, "keepalive_s": 0.2,
            "cells": [cell("slow", "net", "sequential", {"delay_s": 0.3, "tasks": 4},
                           workers=1)]}
    proc, msgs, _ = run(plan)
    assert proc.returncode == 0
    types = [m["type"] for m in msgs]
    assert types.count("keepalive") >= 2
    # between cell_start and cell_done (~1.2 s) no gap without a line is longer than ~keepalive
    assert types[0] == "hello" and types[-1] == "eof"
    assert done_by_id(msgs)["slow"]["status"] == "ok"


def test_failures_are_recorded_and_later_cells_still_run():
    plan = {"protocol": 2, "keepalive_s": 5, "cells": [
        cell("noimpl", "no_such_workload", "threads", {}),
        cell("badmodel", "cpu", "fibers", {"task_s": 0.002, "tasks": 2}),
        cell("badparams", "cpu", "threads", {"task_s": -1, "tasks": 2}),
        cell("badstart", "cpu", "processes", {"task_s": 0.002, "tasks": 2,
                                              "start_method": "teleport"}),
        cell("good", "cpu", "threads", {"task_s": 0.002, "tasks": 2}, warmups=1, repeats=2),
    ]}
    proc, msgs, _ = run(plan)
    assert proc.returncode == 0
    done = done_by_id(msgs)
    assert done["noimpl"]["status"] == "failed"
    assert done["badmodel"]["status"] == "failed"
    assert done["badparams"]["status"] == "failed"
    assert "setup failed" in done["badparams"]["reason"]
    assert done["badstart"]["status"] == "not_applicable"
    assert done["good"]["status"] == "ok"
    failed_samples = [m for m in msgs if m["type"] == "sample" and not m["ok"]]
    assert {m["cell_id"] for m in failed_samples} == {"noimpl", "badmodel", "badparams",
                                                       "badstart"}
    assert all(m["error"] and m["wall_s"] is None for m in failed_samples)
    assert msgs[-1] == {"type": "eof", "cells": 5}


def test_soft_timeout_between_repeats():
    plan = {"protocol": 2, "keepalive_s": 5, "cells": [
        cell("t", "net", "sequential", {"delay_s": 0.1, "tasks": 2}, workers=1, repeats=50,
             timeout_s=0.5),
        cell("after", "cpu", "sequential", {"task_s": 0.002, "tasks": 2}, workers=1)]}
    proc, msgs, _ = run(plan)
    assert proc.returncode == 0
    done = done_by_id(msgs)
    assert done["t"]["status"] == "timeout"
    assert done["after"]["status"] == "ok"
    assert sum(1 for m in msgs if m["type"] == "sample" and m["cell_id"] == "t") < 50


@pytest.mark.slow
def test_hard_timeout_ends_the_agent_cleanly():
    plan = {"protocol": 2, "keepalive_s": 0.5, "cells": [
        cell("stuck", "net", "threads", {"delay_s": 30, "tasks": 2}, timeout_s=0.5),
        cell("never", "cpu", "sequential", {"task_s": 0.002, "tasks": 2}, workers=1)]}
    proc, msgs, elapsed = run(plan, timeout=60)
    assert proc.returncode == 0
    assert elapsed < 20
    done = done_by_id(msgs)
    assert done["stuck"]["status"] == "timeout"
    assert "never" not in done
    assert msgs[-1] == {"type": "eof", "cells": 1}
    assert any(m["type"] == "error" for m in msgs)


def test_sigterm_takes_the_agents_own_processes_down():
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415

    plan = {"protocol": 2, "keepalive_s": 0.2, "cells": [
        cell("long", "net", "processes", {"delay_s": 30, "tasks": 2}, timeout_s=120)]}
    proc = subprocess.Popen([sys.executable, "-m", "harness.agent", "run", "-"],
                            cwd=str(ROOT), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        proc.stdin.write(json.dumps(plan).encode())
        proc.stdin.close()
        seen = []
        for _ in range(1000):  # bounded: until the first sample window is running
            msg = parse_line(proc.stdout.readline())
            seen.append(msg["type"])
            if msg["type"] == "keepalive" and "cell_start" in seen:
                break
        time.sleep(0.5)
        children = set()
        for tid in os.listdir("/proc/%d/task" % proc.pid):
            with open("/proc/%d/task/%s/children" % (proc.pid, tid)) as fh:
                children.update(int(x) for x in fh.read().split())
        assert children  # the latency server and the pool workers
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10
        alive = children
        while alive and time.monotonic() < deadline:
            alive = {pid for pid in alive if os.path.exists("/proc/%d" % pid)
                     and "Z" not in _state(pid)}
            time.sleep(0.1)
        assert not alive
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_samples_carry_cell_and_window_start_times_in_order():
    """The harness's own cost per cell is computed from these (benchmarks/stability.py)."""
    plan = {"protocol": 2, "keepalive_s": 5, "cells": [
        cell("a", "empty", "threads", {"tasks": 10}, warmups=1, repeats=3),
        cell("b", "empty", "sequential", {"tasks": 10}, workers=1, repeats=2),
    ]}
    before = time.time()
    proc, msgs, _ = run(plan)
    after = time.time()
    assert proc.returncode == 0
    slack = 0.001  # time.time and perf_counter are different clocks
    previous_end = before
    for cell_id, windows in (("a", 4), ("b", 2)):
        samples = [m for m in msgs if m["type"] == "sample" and m["cell_id"] == cell_id]
        assert len(samples) == windows and all(s["ok"] for s in samples)
        starts = {s["extra"]["cell_start_unix"] for s in samples}
        assert len(starts) == 1
        cell_start = starts.pop()
        assert previous_end - slack <= cell_start
        for s in samples:
            t0 = s["extra"]["window_start_unix"]
            assert previous_end - slack <= t0 and cell_start <= t0
            previous_end = t0 + s["wall_s"]
    assert previous_end <= after + slack
