"""Running a plan: groups of cells in interleaved blocks, JSON lines out.

The plan's cells come in *groups* (``cell.group``: one workload at one set of
params, its ``sequential`` cell and every model's cell). A group runs as blocks
(harness.agent.blocks): every cell warms up, then each block runs one timed
repeat of every cell in a balanced random order, until the group's calibration
stops it; each timed sample carries its block, its position in the block and
the speed probe timed just before it.

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

from harness.agent import (
    AGENT_VERSION,
    blocks,
    measure,
    models,
    noise,
    numa,
    probe,
    protocol,
)

WATCHDOG_GRACE_S = 10.0  # at most; 1 s + 10 % of timeout_s below that
_IMPL_RE = re.compile(r"^[a-z_][a-z0-9_]*$")

Cell = collections.namedtuple(
    "Cell", "cell_id workload implementation model workers params warmups repeats timeout_s "
            "min_repeats max_repeats target_rel_ci budget_s env prior group",
    defaults=(None, None, None, None, None, (), None))
Plan = collections.namedtuple("Plan", "keepalive_s cells child hints seed",
                              defaults=(False, None, None))

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
                        isinstance(x, list) and len(x) == 2 and _is_int(x[0]) and x[0] >= 0
                        and _is_num(x[1]) and x[1] >= 0 for x in v)),
                    ("group", lambda v: isinstance(v, str) and v))
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
                          tuple((int(b), float(x)) for b, x in raw.get("prior") or ()),
                          raw.get("group")))
    seed = data.get("seed")
    if seed is not None and not isinstance(seed, str):
        raise PlanError("plan.seed must be a string")
    return Plan(float(keepalive_s), tuple(cells), bool(data.get("child", False)), dict(hints),
                seed)


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
            with self._state_lock:
                others = [v for k, v in self._open.items() if k != cell.cell_id]
            why = "its group stopped: a repeat of %s/%s hung" % (cell.workload, cell.model)
            for other, other_params in others:
                self.out.send("sample", cell_id=other.cell_id, repeat=0, warmup=False,
                              wall_s=None, cpu_user_s=None, cpu_sys_s=None,
                              peak_rss_bytes=None, ok=False, error="timeout: " + why,
                              params=other_params, extra={})
                self.out.send("cell_done", cell_id=other.cell_id, status="timeout",
                              reason=why, params=other_params)
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
                    self.run_child(cells, *detail)
                elif where == "not_applicable":
                    for cell in cells:
                        self.not_applicable(cell, detail)
                else:
                    self.run_group(cells, base)
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
        self._start(cell)
        self._end_cell(cell, "not_applicable", reason)

    def run_child(self, cells, env_items, prefix):
        """Run ``cells`` in a child agent (own env vars / numactl) and relay its lines."""
        plan = {"protocol": protocol.PROTOCOL_VERSION, "keepalive_s": self.plan.keepalive_s,
                "child": True, "cells": [_cell_plan(c) for c in cells],
                "seed": self.plan.seed,
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
                self._start(cell)
                self._end_cell(cell, "failed", reason)

    # -- one cell
    def _sample_fields(self, cell, repeat, warmup, params, measurement=None, ok=False,
                       error=None, extra=None, block=None, block_pos=None, probe_s=None):
        m = measurement
        return dict(cell_id=cell.cell_id, repeat=repeat, warmup=warmup,
                    wall_s=m.wall_s if m else None,
                    cpu_user_s=m.cpu_user_s if m else None,
                    cpu_sys_s=m.cpu_sys_s if m else None,
                    peak_rss_bytes=m.peak_rss_bytes if m else None,
                    ok=ok, error=error, params=params, extra=_clean_extra(extra or {}),
                    block=block, block_pos=block_pos, block_group=cell.group,
                    probe_s=None if probe_s is None else round(probe_s, 9))

    def _sample(self, cell, repeat, warmup, params, measurement=None, ok=False, error=None,
                extra=None):
        self.out.send("sample", **self._sample_fields(cell, repeat, warmup, params, measurement,
                                                      ok, error, extra))

    def _start(self, cell):
        with self._state_lock:
            self._open[cell.cell_id] = (cell, dict(cell.params))
        self.out.send("cell_start", cell_id=cell.cell_id, workload=cell.workload,
                      model=cell.model, workers=cell.workers)

    def _finish(self, cell, status, reason, params):
        with self._state_lock:
            self._open.pop(cell.cell_id, None)
        self.out.send("cell_done", cell_id=cell.cell_id, status=status, reason=reason,
                      params=params)

    def _end_cell(self, cell, status, reason, params=None):
        """A cell that ends before (or without) timed repeats: one sample saying why."""
        params = dict(cell.params) if params is None else params
        self._sample(cell, 0, False, params, error=reason)
        self._finish(cell, status, reason, params)

    def run_group(self, cells, base):
        """Run a group of cells (one workload at one set of params) in interleaved blocks.

        Every cell starts at once; cells that cannot run here end at once (not
        applicable, unknown model); the others share one ``setup`` (their params are
        the same), warm up one after another, then run :meth:`_blocks`.
        """
        started_unix = time.time()
        for cell in cells:
            self._start(cell)
        first = cells[0]
        try:
            module = importlib.import_module("workloads." + first.implementation)
        except Exception as exc:
            reason = "cannot load workload implementation %r: %s" % (
                first.implementation, one_line_error(exc))
            for cell in cells:
                self._end_cell(cell, "failed", reason)
            return
        runnable = []
        start_methods = {}
        for cell in cells:
            status, reason = self._applicable(cell, module, start_methods)
            if reason is not None:
                self._end_cell(cell, status, reason)
            else:
                runnable.append(cell)
        if not runnable:
            return
        facts = noise.cell_noise()
        facts["cell_start_unix"] = round(started_unix, 6)
        deadline = time.monotonic() + sum(c.timeout_s for c in runnable)
        workdir = tempfile.mkdtemp(prefix="group-", dir=base)
        setup = None
        try:
            try:
                setup = module.setup(first.params, workdir)
            except Exception as exc:
                reason = "setup failed: " + one_line_error(exc)
                for cell in runnable:
                    self._end_cell(cell, "failed", reason)
                return
            resolved = _clean_params(setup.params)
            params = {}
            for cell in runnable:
                params[cell.cell_id] = dict(resolved)
                if cell.cell_id in start_methods:
                    params[cell.cell_id]["start_method"] = start_methods[cell.cell_id]
            self._blocks(runnable, module, setup, params, start_methods, deadline, facts)
        finally:
            if setup is not None:
                try:
                    module.teardown(setup)
                except Exception as exc:
                    sys.stderr.write("harness agent: teardown of %s failed: %s\n"
                                     % (first.cell_id, one_line_error(exc)))
            shutil.rmtree(workdir, ignore_errors=True)

    def _applicable(self, cell, module, start_methods):
        """``(status, reason)`` of a cell that cannot run here, else ``(None, None)``;
        fills ``start_methods`` for process models."""
        if cell.model not in models.MODELS:
            return "failed", "unknown model %r" % cell.model
        reason = models.not_applicable_reason(cell.model, module)
        if reason is not None:
            return "not_applicable", reason
        if cell.model in models.PROCESS_MODELS:
            start_method = cell.params.get("start_method") or models.default_start_method()
            if start_method not in multiprocessing.get_all_start_methods():
                return "not_applicable", "start method %r is not available here" % (
                    start_method,)
            start_methods[cell.cell_id] = start_method
        return None, None

    def _cpus(self, cell):
        pinning = cell.params.get("pinning", "none")
        if pinning == "none":
            return None
        return numa.numa_plan(self.numa_nodes(), cell.workers)["pinning"][pinning]

    def _blocks(self, cells, module, setup, params, start_methods, deadline, facts):
        """Warmups of every cell, then blocks until the group's calibration stops.

        A block's samples are held back until the block is complete and then written
        together, so an agent that dies in a block leaves no part of it: the block is
        measured again whole. Block numbers go on from the earlier runs' (``prior``).
        The stop decision (blocks.BlockCalibration) is written into the extra of each
        cell's last sample: ``calib_stop``, ``calib_reached_rel_ci`` (the width of the
        cell's speedup interval) and ``calib_repeats`` (blocks, earlier runs included).
        """
        ids = [c.cell_id for c in cells]
        by_id = dict(zip(ids, cells))
        baseline = None
        if len(cells) > 1:
            baseline = next((c.cell_id for c in cells if c.model == blocks.BASELINE_MODEL),
                            None)
        calib = _group_calibration(cells)
        prior = _prior_blocks(cells)
        done = [prior[b] for b in sorted(prior)]
        next_block = max(prior) + 1 if prior else 0
        seed = "%s/%s" % (self.plan.seed or os.urandom(8).hex(), cells[0].group or ids[0])
        exclude = tuple(setup.exclude_pids)
        extras = {}
        for cell in cells:
            extra = dict(facts)
            extra.update(calib_min_repeats=calib.min_blocks, calib_max_repeats=calib.max_blocks,
                         calib_target_rel_ci=calib.target_rel_ci,
                         calib_budget_s=calib.budget_s, calib_unit="blocks")
            cpus = self._cpus(cell)
            if cpus:
                extra["pinned_cpus"] = ",".join(str(c) for c in cpus)
            extras[cell.cell_id] = extra
        counts = dict.fromkeys(ids, 0)
        alive = list(ids)

        def repeat(cid, warmup, block=None, pos=None):
            cell = by_id[cid]
            fields, wall = self._repeat(cell, module, setup, params[cid],
                                        start_methods.get(cid), self._cpus(cell), warmup,
                                        counts[cid], deadline, exclude, extras[cid],
                                        block, pos)
            counts[cid] += 1
            return fields, wall

        for cell in cells:
            for _ in range(cell.warmups):
                if cell.cell_id not in alive:
                    break
                if time.monotonic() > deadline:
                    return self._timeout(cells, alive, params, counts)
                fields, wall = repeat(cell.cell_id, True)
                self.out.send("sample", **fields)
                if wall is None:
                    alive.remove(cell.cell_id)
                    self._finish(cell, "failed", "repeat %d failed: %s" % (
                        fields["repeat"], fields["error"]), params[cell.cell_id])
        t_start = time.monotonic()
        stop = None
        while alive and stop is None:
            if time.monotonic() > deadline:
                return self._timeout(cells, alive, params, counts)
            block = next_block
            next_block += 1
            order = [cid for cid in blocks.block_order(ids, block, seed) if cid in alive]
            held = []
            record = {}
            failed = []
            for pos, cid in enumerate(order):
                fields, wall = repeat(cid, False, block, pos)
                held.append(fields)
                if wall is None:
                    failed.append(cid)
                else:
                    record[cid] = wall
            for cid in failed:
                alive.remove(cid)
            done.append(record)
            if alive:
                stop = calib.stop_reason(done, alive, baseline if baseline in alive else None,
                                         time.monotonic() - t_start)
            if stop is not None:
                widths = blocks.group_widths(done, alive, baseline if baseline in alive
                                             else None)
                for fields in held:
                    if fields["cell_id"] in alive:
                        width = widths.get(fields["cell_id"])
                        fields["extra"] = dict(
                            fields["extra"], calib_stop=stop, calib_repeats=len(done),
                            calib_reached_rel_ci=None if width is None else round(width, 6))
            for fields in held:
                self.out.send("sample", **fields)
            for cid in failed:
                error = next(f["error"] for f in held if f["cell_id"] == cid)
                self._finish(by_id[cid], "failed", "repeat %d failed: %s" % (
                    counts[cid] - 1, error), params[cid])
        for cid in alive:
            self._finish(by_id[cid], "ok", None, params[cid])
        return None

    def _timeout(self, cells, alive, params, counts):
        timeout_s = sum(c.timeout_s for c in cells)
        for cell in cells:
            if cell.cell_id in alive:
                self._finish(cell, "timeout",
                             "group exceeded its timeout of %.0f s after %d runs of this cell"
                             % (timeout_s, counts[cell.cell_id]), params[cell.cell_id])

    def _repeat(self, cell, module, setup, params, start_method, cpus, warmup, repeat,
                deadline, exclude, base_extra, block, pos):
        """One repeat of ``cell``: the speed probe, then the timed window; returns
        ``(sample fields, wall_s or None when it failed)``."""
        probe_s = noise.speed_probe()
        with self._state_lock:
            self._current = (cell, repeat, warmup, params, deadline)
        error = None
        results = None
        extra = {}
        before = noise.cpu_times()
        window = measure.Window(exclude=exclude)
        try:
            with window:
                try:
                    results, extra = models.run(cell.model, module, setup, cell.workers,
                                                start_method, params.get("chunksize"), cpus)
                except Exception as exc:
                    error = one_line_error(exc)
        finally:
            with self._state_lock:
                self._current = None
        shares = noise.window_shares(before, noise.cpu_times())
        if error is None:
            try:
                extra = dict(extra)
                extra.update(module.check(setup, results) or {})
            except Exception as exc:
                error = "wrong result: " + one_line_error(exc)
        if window.result is not None and window.result.excluded_cpu_s is not None:
            extra = dict(extra, server_cpu_s=round(window.result.excluded_cpu_s, 4))
        extra = dict(base_extra, **extra)
        extra.update(shares)
        extra["window_start_unix"] = None if window.started_unix is None else round(
            window.started_unix, 6)
        extra["worker_peak_rss_bytes"] = window.worker_peak_rss_bytes
        extra["procs_peak"] = window.procs_peak
        ok = error is None and window.result is not None
        fields = self._sample_fields(cell, repeat, warmup, params, window.result, ok=ok,
                                     error=error, extra=extra,
                                     block=None if warmup else block,
                                     block_pos=None if warmup else pos, probe_s=probe_s)
        return fields, (window.result.wall_s if ok else None)


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


def _group_calibration(cells):
    """The group's block calibration: the most blocks its cells ask for, the narrowest
    target, and the sum of their time budgets (a block runs every cell once)."""
    low = max(c.min_repeats or c.repeats for c in cells)
    high = max([low] + [c.max_repeats or c.repeats for c in cells])
    targets = [c.target_rel_ci for c in cells if c.target_rel_ci is not None]
    budgets = [c.budget_s for c in cells if c.budget_s is not None]
    return blocks.BlockCalibration(low, high, min(targets) if targets else None,
                                   sum(budgets) if budgets else None)


def _prior_blocks(cells):
    """``{block: {cell_id: wall_s}}`` of the earlier runs' timed samples of ``cells``."""
    found = {}
    for cell in cells:
        for block, wall in cell.prior or ():
            found.setdefault(block, {})[cell.cell_id] = wall
    return found


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
