"""Running a plan: cells one after another, JSON lines out.

Output goes through one :class:`LineWriter` (a lock, a flush after every line),
shared with the keepalive/watchdog thread. The watchdog ends the agent when a
repeat overruns its cell's ``timeout_s`` (plus a grace period): it writes the
timed-out sample, ``cell_done`` with status ``timeout`` and ``eof``, kills the
processes this agent started, and exits 0 (the protocol is complete).
"""

import collections
import contextlib
import importlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from harness.agent import AGENT_VERSION, measure, models, noise, numa, probe, protocol, stats

WATCHDOG_GRACE_S = 10.0  # at most; 1 s + 10 % of timeout_s below that
_IMPL_RE = re.compile(r"^[a-z_][a-z0-9_]*$")

Cell = collections.namedtuple(
    "Cell", "cell_id workload implementation model workers params warmups repeats timeout_s "
            "min_repeats max_repeats target_rel_ci budget_s env prior",
    defaults=(None, None, None, None, None, ()))
Plan = collections.namedtuple("Plan", "keepalive_s cells child hints", defaults=(False, None))

# Params every workload accepts, read by the agent itself (the dimensions).
AGENT_PARAMS = {
    "chunksize": lambda v: _is_int(v) and v >= 1,
    "start_method": lambda v: isinstance(v, str),
    "pinning": lambda v: v in ("none", "compact", "spread"),
    "memory": lambda v: v in ("local", "remote"),
    "gil": lambda v: v in (0, 1) and not isinstance(v, bool),
}
_ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
NUMA_ROOT = numa.NODE_ROOT
CHILD_GRACE_S = 30.0


class PlanError(ValueError):
    """The plan file is not a valid plan."""


# ---------------------------------------------------------------- plan

def _is_num(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def parse_plan(data):
    """A :class:`Plan` from decoded JSON; raise PlanError on anything wrong."""
    if not isinstance(data, dict):
        raise PlanError("the plan must be a JSON object")
    if data.get("protocol") != protocol.PROTOCOL_VERSION:
        raise PlanError("plan protocol %r is not %d" % (data.get("protocol"),
                                                       protocol.PROTOCOL_VERSION))
    keepalive_s = data.get("keepalive_s", 5)
    if not _is_num(keepalive_s) or not 0 < keepalive_s <= 3600:
        raise PlanError("keepalive_s must be a number in (0, 3600]")
    hints = data.get("hints") or {}
    if not isinstance(hints, dict) or not all(
            isinstance(k, str) and _is_num(v) for k, v in hints.items()):
        raise PlanError("plan.hints must be an object of numbers")
    raw_cells = data.get("cells")
    if not isinstance(raw_cells, list):
        raise PlanError("plan.cells must be a list")
    cells = []
    for i, raw in enumerate(raw_cells):
        where = "cells[%d]" % i
        if not isinstance(raw, dict):
            raise PlanError("%s must be an object" % where)
        checks = (("cell_id", lambda v: isinstance(v, str) and v),
                  ("workload", lambda v: isinstance(v, str) and v),
                  ("implementation", lambda v: isinstance(v, str) and _IMPL_RE.match(v)),
                  ("model", lambda v: isinstance(v, str) and v),
                  ("workers", lambda v: _is_int(v) and v >= 1),
                  ("params", lambda v: isinstance(v, dict)),
                  ("warmups", lambda v: _is_int(v) and v >= 0),
                  ("repeats", lambda v: _is_int(v) and v >= 1),
                  ("timeout_s", lambda v: _is_num(v) and v > 0))
        for key, ok in checks:
            if key not in raw:
                raise PlanError("%s lacks %r" % (where, key))
            if not ok(raw[key]):
                raise PlanError("%s.%s has an invalid value %r" % (where, key, raw[key]))
        for key, value in raw["params"].items():
            if not isinstance(value, (str, int, float, bool)):
                raise PlanError("%s.params.%s must be a number, string or bool" % (where, key))
            if key in AGENT_PARAMS and not AGENT_PARAMS[key](value):
                raise PlanError("%s.params.%s has an invalid value %r" % (where, key, value))
        optional = (("min_repeats", lambda v: _is_int(v) and v >= 1),
                    ("max_repeats", lambda v: _is_int(v) and v >= 1),
                    ("target_rel_ci", lambda v: _is_num(v) and v > 0),
                    ("budget_s", lambda v: _is_num(v) and v > 0),
                    ("env", lambda v: isinstance(v, dict) and all(
                        isinstance(k, str) and _ENV_NAME_RE.match(k) and isinstance(x, str)
                        for k, x in v.items())),
                    ("prior", lambda v: isinstance(v, list) and all(
                        _is_num(x) and x >= 0 for x in v)))
        for key, ok in optional:
            if raw.get(key) is not None and not ok(raw[key]):
                raise PlanError("%s.%s has an invalid value %r" % (where, key, raw[key]))
        min_r = raw.get("min_repeats") or raw["repeats"]
        max_r = raw.get("max_repeats") or max(min_r, raw["repeats"])
        if max_r < min_r:
            raise PlanError("%s: max_repeats %d < min_repeats %d" % (where, max_r, min_r))
        cells.append(Cell(raw["cell_id"], raw["workload"], raw["implementation"],
                          raw["model"], raw["workers"], dict(raw["params"]),
                          raw["warmups"], raw["repeats"], float(raw["timeout_s"]),
                          min_r, max_r, raw.get("target_rel_ci"), raw.get("budget_s"),
                          dict(raw.get("env") or {}),
                          tuple(float(x) for x in raw.get("prior") or ())))
    return Plan(float(keepalive_s), tuple(cells), bool(data.get("child", False)), dict(hints))


# ---------------------------------------------------------------- output

class LineWriter:
    """Protocol lines to one stream, whole lines only, flushed, thread-safe."""

    def __init__(self, stream):
        self._stream = stream
        self.lock = threading.RLock()
        self.last_write = time.monotonic()
        self.closed = False

    def send(self, msg_type, **fields):
        line = protocol.encode(msg_type, **fields)
        with self.lock:
            if self.closed:
                return
            self._stream.write(line + "\n")
            self._stream.flush()
            self.last_write = time.monotonic()

    def close(self):
        with self.lock:
            self.closed = True


def hello(out):
    import platform  # noqa: PLC0415

    out.send("hello", protocol=protocol.PROTOCOL_VERSION, agent_version=AGENT_VERSION,
             python=platform.python_version())


def one_line_error(exc):
    """``Type: message`` on one line; the first leaf of an exception group."""
    for _ in range(10):
        inner = getattr(exc, "exceptions", None)
        if not inner:
            break
        exc = inner[0]
    text = str(exc).replace("\r", " ").replace("\n", " ").strip()
    name = type(exc).__name__
    return ("%s: %s" % (name, text) if text else name)[:2000]


# ---------------------------------------------------------------- own processes

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


# ---------------------------------------------------------------- the run

class Runner:
    def __init__(self, out, plan):
        self.out = out
        self.plan = plan
        self.cells_done = 0
        self._state_lock = threading.Lock()
        self._current = None  # (cell, repeat, warmup, params, deadline) while a repeat runs
        self._stop = threading.Event()

    # -- background: keepalives and the hard timeout
    def _background(self):
        interval = max(0.05, self.plan.keepalive_s / 2.0)
        while not self._stop.wait(min(interval, 1.0)):
            if time.monotonic() - self.out.last_write >= interval:
                self.out.send("keepalive", t=time.time())
            with self._state_lock:
                current = self._current
            if current is not None and time.monotonic() > current[4] + _grace(current[0]):
                self._hard_timeout(*current)

    def _hard_timeout(self, cell, repeat, warmup, params, deadline):
        reason = "repeat %d exceeded the cell timeout of %.0f s" % (repeat, cell.timeout_s)
        with self.out.lock:
            self.out.send("sample", cell_id=cell.cell_id, repeat=repeat, warmup=warmup,
                          wall_s=None, cpu_user_s=None, cpu_sys_s=None, peak_rss_bytes=None,
                          ok=False, error="timeout: " + reason, params=params, extra={})
            self.out.send("cell_done", cell_id=cell.cell_id, status="timeout", reason=reason,
                          params=params)
            self.out.send("error", message="agent stopped after a timed-out cell; "
                                           "later cells were not run")
            self.out.send("eof", cells=self.cells_done + 1)
            self.out.close()
        kill_own_children()
        os._exit(0)

    def run(self):
        thread = threading.Thread(target=self._background, name="keepalive", daemon=True)
        thread.start()
        base = tempfile.mkdtemp(prefix="harness-agent-")
        importlib.import_module("workloads").set_hints(self.plan.hints)
        try:
            cells = list(self.plan.cells)
            i = 0
            while i < len(cells):
                cell = cells[i]
                where, detail = self.placement(cell)
                if where == "child":
                    group = [cell]
                    while i + len(group) < len(cells) and \
                            self.placement(cells[i + len(group)]) == (where, detail):
                        group.append(cells[i + len(group)])
                    self.run_child(group, *detail)
                    self.cells_done += len(group)
                    i += len(group)
                    continue
                if where == "not_applicable":
                    self.not_applicable(cell, detail)
                else:
                    self.run_cell(cell, base)
                self.cells_done += 1
                i += 1
        finally:
            self._stop.set()
            thread.join(timeout=5)
            shutil.rmtree(base, ignore_errors=True)

    # -- where a cell runs: here, in a child agent (env vars, numactl), or not at all
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
        self.out.send("cell_start", cell_id=cell.cell_id, workload=cell.workload,
                      model=cell.model, workers=cell.workers)
        params = dict(cell.params)
        self._sample(cell, 0, False, params, error=reason)
        self._finish(cell, "not_applicable", reason, params)

    def run_child(self, cells, env_items, prefix):
        """Run ``cells`` in a child agent (own env vars / numactl) and relay its lines."""
        plan = {"protocol": protocol.PROTOCOL_VERSION, "keepalive_s": self.plan.keepalive_s,
                "child": True, "cells": [_cell_plan(c) for c in cells],
                "hints": _child_hints(self.plan.hints, cells)}
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
            limit = sum(c.timeout_s + _grace(c) for c in cells) + CHILD_GRACE_S
            timer = threading.Timer(limit, proc.kill)
            timer.daemon = True
            timer.start()
            try:
                proc.stdin.write(json.dumps(plan).encode("utf-8"))
                proc.stdin.close()
            except OSError:
                pass
            try:
                for line in proc.stdout:
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
                    self.out.send(kind, **msg)
            finally:
                code = proc.wait()
                timer.cancel()
            reason = "child agent exited with status %d" % code
        for cell in cells:
            if cell.cell_id not in done:
                self.out.send("cell_start", cell_id=cell.cell_id, workload=cell.workload,
                              model=cell.model, workers=cell.workers)
                params = dict(cell.params)
                self._sample(cell, 0, False, params, error=reason)
                self._finish(cell, "failed", reason, params)

    # -- one cell
    def _sample(self, cell, repeat, warmup, params, measurement=None, ok=False, error=None,
                extra=None):
        m = measurement
        self.out.send("sample", cell_id=cell.cell_id, repeat=repeat, warmup=warmup,
                      wall_s=m.wall_s if m else None,
                      cpu_user_s=m.cpu_user_s if m else None,
                      cpu_sys_s=m.cpu_sys_s if m else None,
                      peak_rss_bytes=m.peak_rss_bytes if m else None,
                      ok=ok, error=error, params=params, extra=_clean_extra(extra or {}))

    def _finish(self, cell, status, reason, params):
        self.out.send("cell_done", cell_id=cell.cell_id, status=status, reason=reason,
                      params=params)

    def run_cell(self, cell, base):
        started_unix = time.time()
        out = self.out
        out.send("cell_start", cell_id=cell.cell_id, workload=cell.workload, model=cell.model,
                 workers=cell.workers)
        params = dict(cell.params)
        try:
            module = importlib.import_module("workloads." + cell.implementation)
        except Exception as exc:
            reason = "cannot load workload implementation %r: %s" % (
                cell.implementation, one_line_error(exc))
            self._sample(cell, 0, False, params, error=reason)
            return self._finish(cell, "failed", reason, params)
        if cell.model not in models.MODELS:
            reason = "unknown model %r" % cell.model
            self._sample(cell, 0, False, params, error=reason)
            return self._finish(cell, "failed", reason, params)
        reason = models.not_applicable_reason(cell.model, module)
        if reason is not None:
            self._sample(cell, 0, False, params, error=reason)
            return self._finish(cell, "not_applicable", reason, params)
        start_method = None
        if cell.model in models.PROCESS_MODELS:
            start_method = params.get("start_method") or models.default_start_method()
            if start_method not in multiprocessing.get_all_start_methods():
                reason = "start method %r is not available here" % (start_method,)
                self._sample(cell, 0, False, params, error=reason)
                return self._finish(cell, "not_applicable", reason, params)
        cpus = None
        pinning = params.get("pinning", "none")
        if pinning != "none":
            cpus = numa.numa_plan(self.numa_nodes(), cell.workers)["pinning"][pinning]
        facts = noise.cell_noise()
        facts["cell_start_unix"] = round(started_unix, 6)
        deadline = time.monotonic() + cell.timeout_s
        workdir = tempfile.mkdtemp(prefix="cell-", dir=base)
        setup = None
        try:
            try:
                setup = module.setup(cell.params, workdir)
            except Exception as exc:
                reason = "setup failed: " + one_line_error(exc)
                self._sample(cell, 0, False, params, error=reason)
                return self._finish(cell, "failed", reason, params)
            params = _clean_params(setup.params)
            if start_method is not None:
                params["start_method"] = start_method
            status, reason = self._repeats(cell, module, setup, params, start_method, deadline,
                                           facts, cpus)
        finally:
            if setup is not None:
                try:
                    module.teardown(setup)
                except Exception as exc:
                    sys.stderr.write("harness agent: teardown of %s failed: %s\n"
                                     % (cell.cell_id, one_line_error(exc)))
            shutil.rmtree(workdir, ignore_errors=True)
        return self._finish(cell, status, reason, params)

    def _repeats(self, cell, module, setup, params, start_method, deadline, facts=None,
                 cpus=None):
        """Warmups, then timed repeats until the calibration says stop (stats.Calibration).

        ``cell.prior`` are timed samples of this cell from earlier agent runs of the
        sweep (the controller spreads a cell's repeats over several agent processes):
        the stopping rule counts them, and the repeat counts are totals with them.
        """
        min_r = cell.min_repeats or cell.repeats
        max_r = max(min_r, cell.max_repeats or cell.repeats)
        calib = stats.Calibration(min_r, max_r, cell.target_rel_ci, cell.budget_s)
        prior = list(cell.prior or ())
        total = cell.warmups + max(1, max_r - len(prior))
        base_extra = dict(facts or {})
        base_extra["calib_min_repeats"] = min_r
        base_extra["calib_max_repeats"] = max_r
        base_extra["calib_target_rel_ci"] = cell.target_rel_ci
        base_extra["calib_budget_s"] = cell.budget_s
        if cpus:
            base_extra["pinned_cpus"] = ",".join(str(c) for c in cpus)
        chunksize = params.get("chunksize")
        timed = prior
        t_start = time.monotonic()
        for repeat in range(total):
            warmup = repeat < cell.warmups
            if time.monotonic() > deadline:
                return "timeout", "cell exceeded its timeout of %.0f s after %d of %d runs" % (
                    cell.timeout_s, repeat, total)
            with self._state_lock:
                self._current = (cell, repeat, warmup, params, deadline)
            error = None
            results = None
            extra = {}
            window = measure.Window(exclude=setup.exclude_pids)
            try:
                with window:
                    try:
                        results, extra = models.run(cell.model, module, setup, cell.workers,
                                                    start_method, chunksize, cpus)
                    except Exception as exc:
                        error = one_line_error(exc)
            finally:
                with self._state_lock:
                    self._current = None
            if error is None:
                try:
                    extra = dict(extra)
                    extra.update(module.check(setup, results) or {})
                except Exception as exc:
                    error = "wrong result: " + one_line_error(exc)
            if window.result is not None and window.result.excluded_cpu_s is not None:
                extra = dict(extra, server_cpu_s=round(window.result.excluded_cpu_s, 4))
            extra = dict(base_extra, **extra)
            extra["window_start_unix"] = None if window.started_unix is None else round(
                window.started_unix, 6)
            extra["worker_peak_rss_bytes"] = window.worker_peak_rss_bytes
            extra["procs_peak"] = window.procs_peak
            stop = None
            if error is None and not warmup and window.result is not None:
                timed.append(window.result.wall_s)
                stop = calib.stop_reason(timed, time.monotonic() - t_start)
                if stop is None and repeat == total - 1:
                    stop = "max_repeats"
                if stop is not None:
                    width = stats.rel_ci_width(timed)
                    extra["calib_stop"] = stop
                    extra["calib_reached_rel_ci"] = None if width is None else round(width, 6)
                    extra["calib_repeats"] = len(timed)
            self._sample(cell, repeat, warmup, params, window.result, ok=error is None,
                         error=error, extra=extra)
            if error is not None:
                return "failed", "repeat %d failed: %s" % (repeat, error)
            if stop is not None:
                break
        return "ok", None


def probe_free_threaded():
    import sysconfig  # noqa: PLC0415

    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


CPU_RATE_USERS = ("cpu", "transfer")  # implementations whose loop size is cpu.rate()


def _child_hints(hints, cells):
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


def _grace(cell):
    return min(WATCHDOG_GRACE_S, 1.0 + 0.1 * cell.timeout_s)


def _clean_params(params):
    clean = {}
    for key, value in params.items():
        if isinstance(value, float) and value != value:
            value = None
        clean[str(key)] = value
    return clean


def _clean_extra(extra):
    clean = {}
    for key, value in extra.items():
        if isinstance(value, float) and (value != value or value in (float("inf"),
                                                                     float("-inf"))):
            value = None
        clean[str(key)] = value
    return clean


def probe_main(out):
    hello(out)
    out.send("env", env=probe.fingerprint())
    out.send("eof", cells=0)
    return 0


def run_main(out, plan_source):
    import json  # noqa: PLC0415

    hello(out)
    if plan_source == "-":
        # The fingerprint comes before the plan is read: the controller plans the cells
        # from it and writes them to stdin, so one agent start both probes and runs.
        out.send("env", env=probe.fingerprint())
    try:
        if plan_source == "-":
            text = sys.stdin.read()
        else:
            with open(plan_source, encoding="utf-8") as fh:
                text = fh.read()
        plan = parse_plan(json.loads(text))
    except (OSError, ValueError) as exc:
        out.send("error", message="bad plan %s: %s" % (plan_source, one_line_error(exc)))
        out.send("eof", cells=0)
        return 2
    if plan_source != "-":
        out.send("env", env=probe.fingerprint())
    runner = Runner(out, plan)
    try:
        runner.run()
    except Exception as exc:
        out.send("error", message="agent failure: " + one_line_error(exc))
        out.send("eof", cells=runner.cells_done)
        return 1
    out.send("eof", cells=runner.cells_done)
    return 0
