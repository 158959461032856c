"""Running a plan: its cells by group, here or in a child agent, JSON lines out.

The plan's cells come in *groups* (``cell.group``: one workload at one set of
params, its ``sequential`` cell and every model's cell). A group runs here as
interleaved blocks (harness.agent.group), or in a child agent when its cells need
their own environment variables or a ``numactl`` prefix (harness.agent.children).

Output goes through one :class:`~harness.agent.output.LineWriter` (a lock, a flush
after every line), shared with the keepalive/watchdog thread. The watchdog ends the
agent when a repeat overruns its cell's ``timeout_s`` (plus a grace period): it writes
the timed-out sample, ``cell_done`` with status ``timeout`` and ``eof``, kills the
processes this agent started, and exits 0 (the protocol is complete).
"""

import collections
import importlib
import os
import shutil
import sys
import tempfile
import threading
import time

from harness.agent import numa, probe
from harness.agent.children import kill_own_children, run_child
from harness.agent.group import GroupRun
from harness.agent.output import hello, one_line_error, sample_fields
from harness.agent.plan import grace, parse_plan
from harness.agent.turn import Turn

NUMA_ROOT = numa.NODE_ROOT


class Runner:
    """Runs one plan's cells, writing their lines to ``out``; see the module docstring."""

    def __init__(self, out, plan):
        self.out = out
        self.plan = plan
        self.cells_done = 0
        self._state_lock = threading.Lock()
        self._current = None  # (cell, repeat, warmup, params, deadline) while a repeat runs
        self._open = {}  # cell_id -> (cell, params): started, not yet done
        self._stop = threading.Event()

    # -- background: keepalives and the hard timeout
    def _background(self):
        interval = max(0.05, self.plan.keepalive_s / 2.0)
        while not self._stop.wait(min(interval, 1.0)):
            if time.monotonic() - self.out.last_write >= interval:
                self.out.send("keepalive", t=time.time())
            with self._state_lock:
                current = self._current
            if current is not None and time.monotonic() > current[4] + grace(current[0]):
                self._hard_timeout(*current)

    def _hard_timeout(self, cell, repeat, warmup, params, deadline):
        reason = "repeat %d exceeded the cell timeout of %.0f s" % (repeat, cell.timeout_s)
        with self.out.lock:
            with self._state_lock:
                others = [v for k, v in self._open.items() if k != cell.cell_id]
            self.out.send("sample", **sample_fields(cell, repeat, warmup, params,
                                                    error="timeout: " + reason))
            self.finish_cell(cell, "timeout", reason, params)
            why = "its group stopped: a repeat of %s/%s hung" % (cell.workload, cell.model)
            for other, other_params in others:
                self.out.send("sample", **sample_fields(other, 0, False, other_params,
                                                        error="timeout: " + why))
                self.finish_cell(other, "timeout", why, other_params)
            self.out.send("error", message="agent stopped after a timed-out cell; "
                                           "later cells were not run")
            self.out.send("eof", cells=self.cells_done + 1 + len(others))
            self.out.close()
        kill_own_children()
        os._exit(0)

    def run(self):
        thread = threading.Thread(target=self._background, name="keepalive", daemon=True)
        thread.start()
        base = tempfile.mkdtemp(prefix="harness-agent-")
        importlib.import_module("workloads").set_hints(self.plan.hints)
        try:
            groups = self.groups()
            i = 0
            while i < len(groups):
                where, detail = groups[i][0]
                cells = list(groups[i][1])
                if where == "child":
                    # consecutive groups with the same env run in one child agent
                    while i + 1 < len(groups) and groups[i + 1][0] == (where, detail):
                        i += 1
                        cells.extend(groups[i][1])
                    run_child(self, cells, *detail)
                elif where == "not_applicable":
                    for cell in cells:
                        self.not_applicable(cell, detail)
                else:
                    GroupRun(self, cells, base).run()
                self.cells_done += len(cells)
                i += 1
        finally:
            self._stop.set()
            thread.join(timeout=5)
            shutil.rmtree(base, ignore_errors=True)

    def groups(self):
        """``[((where, detail), cells)]``: the plan's cells by group, in order of first
        appearance; a cell without a group, or a group whose cells would not all run
        in the same place, runs alone."""
        by_group = collections.OrderedDict()
        for cell in self.plan.cells:
            key = cell.group if cell.group is not None else ("", cell.cell_id)
            by_group.setdefault(key, []).append(cell)
        out = []
        for cells in by_group.values():
            places = [self.placement(c) for c in cells]
            if all(p == places[0] for p in places):
                out.append((places[0], cells))
            else:
                out.extend(((p, [c]) for p, c in zip(places, cells)))
        return out

    def numa_nodes(self):
        if not hasattr(self, "_nodes"):
            self._nodes = numa.read_nodes(NUMA_ROOT)
        return self._nodes

    def placement(self, cell):
        """``("here", None)``, ``("child", (env, prefix))`` or ``("not_applicable", reason)``."""
        params = cell.params
        env = dict(cell.env or {})
        prefix = ()
        if ("gil" in params or "PYTHON_GIL" in env) and not probe_free_threaded():
            return "not_applicable", ("PYTHON_GIL=%s needs a free-threaded build "
                                      "(this is a standard build)" % params.get("gil", "?"))
        if params.get("pinning", "none") != "none" or "memory" in params:
            reason = numa.not_applicable(self.numa_nodes())
            if reason is not None:
                return "not_applicable", reason
        if "memory" in params and not self.plan.child:
            tool = shutil.which("numactl")
            if tool is None:
                return "not_applicable", "numactl is not installed"
            pairs = numa.membind_pairs(self.numa_nodes())
            cpu_node, mem_node = pairs[params["memory"]]
            prefix = (tool, "--cpunodebind=%d" % cpu_node, "--membind=%d" % mem_node)
        if self.plan.child or (not env and not prefix):
            return "here", None
        return "child", (tuple(sorted(env.items())), prefix)

    def not_applicable(self, cell, reason):
        self.start_cell(cell)
        self.end_cell(cell, "not_applicable", reason)

    # -- the lines of one cell, and the repeat the watchdog watches

    def start_cell(self, cell):
        with self._state_lock:
            self._open[cell.cell_id] = (cell, dict(cell.params))
        self.out.send("cell_start", cell_id=cell.cell_id, workload=cell.workload,
                      model=cell.model, workers=cell.workers)

    def finish_cell(self, cell, status, reason, params):
        with self._state_lock:
            self._open.pop(cell.cell_id, None)
        self.out.send("cell_done", cell_id=cell.cell_id, status=status, reason=reason,
                      params=params)

    def end_cell(self, cell, status, reason, params=None):
        """A cell that ends before (or without) timed repeats: one sample saying why."""
        params = dict(cell.params) if params is None else params
        self.out.send("sample", **sample_fields(cell, 0, False, params, error=reason))
        self.finish_cell(cell, status, reason, params)

    def repeat_started(self, cell, repeat, warmup, params, deadline):
        """A repeat of ``cell`` runs now; the watchdog ends the agent when it overruns
        ``deadline`` (a monotonic time) by more than the cell's grace."""
        with self._state_lock:
            self._current = (cell, repeat, warmup, params, deadline)

    def repeat_ended(self):
        with self._state_lock:
            self._current = None


def probe_free_threaded():
    import sysconfig  # noqa: PLC0415

    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def probe_main(out):
    hello(out)
    out.send("env", env=probe.fingerprint())
    out.send("eof", cells=0)
    return 0


def _plan_path_from_stdin(wait_s):
    """``run +SECONDS``: the path of the plan file, one line on stdin, waited for at most
    ``wait_s`` seconds (stdin is a FIFO the agent holds open itself: no end of file)."""
    import select  # noqa: PLC0415

    ready, _, _ = select.select([sys.stdin], [], [], wait_s)
    if not ready:
        raise OSError("no plan came within %g s" % wait_s)
    line = sys.stdin.readline().strip()
    if not line:
        raise OSError("stdin closed before a plan came")
    return line


def run_main(out, plan_source):
    """``run PLAN.json``: hello, env, the cells. ``run -`` and ``run +SECONDS`` send hello
    and env first and only then take the plan: the controller plans the cells from that
    fingerprint, so one agent start both probes and runs. ``-``: the plan is stdin (to
    its end); ``+SECONDS``: a line on stdin names the plan's file (the ansible engine
    starts the agent with a probe command and hands it the plan in a later one)."""
    import json  # noqa: PLC0415

    hello(out)
    waits = plan_source == "-" or plan_source.startswith("+")
    if waits:
        out.send("env", env=probe.fingerprint())
    try:
        if plan_source == "-":
            text = sys.stdin.read()
        else:
            path = (_plan_path_from_stdin(float(plan_source[1:]))
                    if plan_source.startswith("+") else plan_source)
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        plan = parse_plan(json.loads(text))
    except (OSError, ValueError) as exc:
        out.send("error", message="bad plan %s: %s" % (plan_source, one_line_error(exc)))
        out.send("eof", cells=0)
        return 2
    if not waits:
        out.send("env", env=probe.fingerprint())
    turn = Turn(out, plan.host_lock, plan.keepalive_s) if plan.host_lock else None
    if turn is not None and not turn.begin():  # another sweep kept the host: busy
        turn.end()
        out.send("eof", cells=0)
        return 0
    runner = Runner(out, plan)
    try:
        runner.run()
    except Exception as exc:
        out.send("error", message="agent failure: " + one_line_error(exc))
        out.send("eof", cells=runner.cells_done)
        return 1
    finally:
        if turn is not None:
            turn.end()
    out.send("eof", cells=runner.cells_done)
    return 0
