"""The processes an agent starts: killing them all, and child agents.

A cell that needs its own environment variables (``PYTHON_GIL``) or a ``numactl``
prefix runs in a child agent: this agent starts ``python -c`` with the same bundle on
``sys.path``, sends it the cells as a plan on stdin and relays its lines (stdlib only,
Python 3.9+).
"""

import contextlib
import importlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading

from harness.agent import protocol
from harness.agent.output import one_line_error
from harness.agent.plan import grace

CHILD_GRACE_S = 30.0
CPU_RATE_USERS = ("cpu", "transfer")  # implementations whose loop size is cpu.rate()


def _own_children():
    pids = set()
    task_dir = "/proc/%d/task" % os.getpid()
    try:
        tids = os.listdir(task_dir)
    except OSError:
        tids = []
    for tid in tids:
        try:
            with open(os.path.join(task_dir, tid, "children")) as fh:
                pids.update(int(x) for x in fh.read().split())
        except (OSError, ValueError):
            continue
    for proc in multiprocessing.active_children():
        if proc.pid:
            pids.add(proc.pid)
    return pids


def kill_own_children():
    """SIGKILL the processes this agent started (its direct children)."""
    for pid in _own_children():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def child_hints(hints, cells):
    """The hints for a child agent: the plan's, plus this agent's CPU rate (measured
    here when the plan brought none), so that every child runs the same loop sizes
    as its parent (e.g. the PYTHON_GIL=0 and =1 cells of one free-threaded build)."""
    found = dict(hints or {})
    if "cpu_rate" not in found and any(c.implementation in CPU_RATE_USERS for c in cells):
        cpu = importlib.import_module("workloads.cpu")
        found["cpu_rate_measured"] = cpu.rate()[0]  # measured in this sweep, by the parent
    return found


def _cell_plan(cell):
    plan = dict(cell._asdict())
    plan["env"] = None  # the child runs with the env already set
    return {k: v for k, v in plan.items() if v is not None}


def run_child(runner, cells, env_items, prefix):
    """Run ``cells`` in a child agent (own env vars / numactl) and relay its lines
    through ``runner`` (a harness.agent.runner.Runner); a cell the child did not end
    ends failed."""
    plan = {"protocol": protocol.PROTOCOL_VERSION, "keepalive_s": runner.plan.keepalive_s,
            "child": True, "cells": [_cell_plan(c) for c in cells],
            "seed": runner.plan.seed,
            "hints": child_hints(runner.plan.hints, cells)}
    boot = ("import sys\nsys.path[:0] = %r\nfrom harness.agent.__main__ import main\n"
            "main(['run', '-'])\n" % ([p for p in sys.path if p],))
    argv = list(prefix) + [sys.executable, "-c", boot]
    env = dict(os.environ)
    env.update(dict(env_items))
    done = set()
    reason = None
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env=env, close_fds=True)
    except OSError as exc:
        proc = None
        reason = "cannot start a child agent: %s" % one_line_error(exc)
    if proc is not None:
        limit = sum(c.timeout_s + grace(c) for c in cells) + CHILD_GRACE_S
        timer = threading.Timer(limit, proc.kill)
        timer.daemon = True
        timer.start()
        try:
            proc.stdin.write(json.dumps(plan).encode("utf-8"))
            proc.stdin.close()
        except OSError:
            pass
        try:
            _relay(runner.out, proc.stdout, env_items, prefix, done)
        finally:
            code = proc.wait()
            timer.cancel()
        reason = "child agent exited with status %d" % code
    for cell in cells:
        if cell.cell_id not in done:
            runner.start_cell(cell)
            runner.end_cell(cell, "failed", reason)


def _relay(out, lines, env_items, prefix, done):
    """Write the child's cell lines to ``out`` (its samples say how it ran); the ids of
    the cells it ended go into ``done``."""
    for line in lines:
        try:
            msg = protocol.parse_line(line)
        except protocol.ProtocolViolation as exc:
            sys.stderr.write("harness agent: child line dropped: %s\n" % exc)
            continue
        kind = msg.pop("type")
        if kind in ("hello", "env", "eof", "keepalive"):
            continue
        if kind == "cell_done":
            done.add(msg["cell_id"])
        if kind == "sample":
            msg["extra"] = dict(msg["extra"], child_env=",".join(
                "%s=%s" % kv for kv in env_items) or None,
                child_prefix=" ".join(prefix) or None)
        out.send(kind, **msg)
