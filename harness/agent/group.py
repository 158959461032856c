"""One group of cells run in interleaved blocks (stdlib only, Python 3.9+).

A group is one workload at one set of params: its ``sequential`` cell and every
model's cell. They share one ``setup``, warm up one after another, then run as blocks
(harness.agent.blocks): each block runs one timed repeat of every cell in a balanced
random order, until the group's calibration stops it. Each timed sample carries its
block, its position in the block and the speed probe timed just before it.
"""

import importlib
import multiprocessing
import os
import shutil
import sys
import tempfile
import time

from harness.agent import blocks, measure, models, noise, numa
from harness.agent.output import one_line_error, sample_fields


class GroupRun:
    """The run of one group's cells by a harness.agent.runner.Runner (which writes the
    lines and watches the repeats); :meth:`run` does it all."""

    def __init__(self, runner, cells, base):
        self.runner = runner
        self.out = runner.out
        self.cells = cells  # the cells that still run once the group is set up
        self.base = base
        self.module = None
        self.setup = None
        self.params = {}  # cell_id -> the params its samples carry
        self.start_methods = {}  # cell_id -> start method, for process models
        self.deadline = None
        self.by_id = {}
        self.counts = {}  # cell_id -> repeats run so far (warmups included)
        self.alive = []  # ids of the cells not ended yet
        self.extras = {}  # cell_id -> the extra every sample of the cell starts from
        self.cpus = {}  # cell_id -> the CPUs its workers are pinned to (None: not pinned)
        self.exclude = ()

    def run(self):
        """Run the group: every cell starts at once; cells that cannot run here end at
        once (not applicable, unknown model); the others share one ``setup`` (their
        params are the same), warm up one after another, then run in blocks."""
        started_unix = time.time()
        for cell in self.cells:
            self.runner.start_cell(cell)
        first = self.cells[0]
        try:
            self.module = importlib.import_module("workloads." + first.implementation)
        except Exception as exc:
            reason = "cannot load workload implementation %r: %s" % (
                first.implementation, one_line_error(exc))
            for cell in self.cells:
                self.runner.end_cell(cell, "failed", reason)
            return
        self.cells = self._runnable()
        if not self.cells:
            return
        facts = noise.cell_noise()
        facts["cell_start_unix"] = round(started_unix, 6)
        self.deadline = time.monotonic() + sum(c.timeout_s for c in self.cells)
        workdir = tempfile.mkdtemp(prefix="group-", dir=self.base)
        try:
            try:
                self.setup = self.module.setup(first.params, workdir)
            except Exception as exc:
                reason = "setup failed: " + one_line_error(exc)
                for cell in self.cells:
                    self.runner.end_cell(cell, "failed", reason)
                return
            resolved = clean_params(self.setup.params)
            for cell in self.cells:
                self.params[cell.cell_id] = dict(resolved)
                if cell.cell_id in self.start_methods:
                    self.params[cell.cell_id]["start_method"] = self.start_methods[cell.cell_id]
            self._blocks(facts)
        finally:
            if self.setup is not None:
                try:
                    self.module.teardown(self.setup)
                except Exception as exc:
                    sys.stderr.write("harness agent: teardown of %s failed: %s\n"
                                     % (first.cell_id, one_line_error(exc)))
            shutil.rmtree(workdir, ignore_errors=True)

    def _runnable(self):
        """The cells that can run here; the others end now, saying why."""
        runnable = []
        for cell in self.cells:
            status, reason = self._applicable(cell)
            if reason is not None:
                self.runner.end_cell(cell, status, reason)
            else:
                runnable.append(cell)
        return runnable

    def _applicable(self, cell):
        """``(status, reason)`` of a cell that cannot run here, else ``(None, None)``;
        fills ``start_methods`` for process models."""
        if cell.model not in models.MODELS:
            return "failed", "unknown model %r" % cell.model
        reason = models.not_applicable_reason(cell.model, self.module)
        if reason is not None:
            return "not_applicable", reason
        if cell.model in models.PROCESS_MODELS:
            start_method = cell.params.get("start_method") or models.default_start_method()
            if start_method not in multiprocessing.get_all_start_methods():
                return "not_applicable", "start method %r is not available here" % (
                    start_method,)
            self.start_methods[cell.cell_id] = start_method
        return None, None

    def _cpus(self, cell):
        pinning = cell.params.get("pinning", "none")
        if pinning == "none":
            return None
        return numa.numa_plan(self.runner.numa_nodes(), cell.workers)["pinning"][pinning]

    # -- the blocks

    def _blocks(self, facts):
        """Warmups of every cell, then blocks until the group's calibration stops.

        A block's samples are held back until the block is complete and then written
        together, so an agent that dies in a block leaves no part of it: the block is
        measured again whole. Block numbers go on from the earlier runs' (``prior``).
        The stop decision (blocks.BlockCalibration) is written into the extra of each
        cell's last sample: ``calib_stop``, ``calib_reached_rel_ci`` (the width of the
        cell's speedup interval) and ``calib_repeats`` (blocks, earlier runs included).
        """
        cells = self.cells
        ids = [c.cell_id for c in cells]
        self.by_id = dict(zip(ids, cells))
        baseline = None
        if len(cells) > 1:
            baseline = next((c.cell_id for c in cells if c.model == blocks.BASELINE_MODEL),
                            None)
        calib = group_calibration(cells)
        prior = prior_blocks(cells)
        done = [prior[b] for b in sorted(prior)]
        next_block = max(prior) + 1 if prior else 0
        seed = "%s/%s" % (self.runner.plan.seed or os.urandom(8).hex(), cells[0].group or ids[0])
        self.exclude = tuple(self.setup.exclude_pids)
        self.cpus = {cell.cell_id: self._cpus(cell) for cell in cells}
        self.extras = {cell.cell_id: self._base_extra(cell, facts, calib) for cell in cells}
        self.counts = dict.fromkeys(ids, 0)
        self.alive = list(ids)
        if not self._warm_up():
            return self._timeout()
        t_start = time.monotonic()
        stop = None
        while self.alive and stop is None:
            if time.monotonic() > self.deadline:
                return self._timeout()
            block = next_block
            next_block += 1
            order = [cid for cid in blocks.block_order(ids, block, seed) if cid in self.alive]
            held, record, failed = self._one_block(order, block)
            for cid in failed:
                self.alive.remove(cid)
            done.append(record)
            live_baseline = baseline if baseline in self.alive else None
            if self.alive:
                stop = calib.stop_reason(done, self.alive, live_baseline,
                                         time.monotonic() - t_start)
            if stop is not None:
                self._mark_stop(held, stop, done, live_baseline)
            for fields in held:
                self.out.send("sample", **fields)
            for cid in failed:
                error = next(f["error"] for f in held if f["cell_id"] == cid)
                self.runner.finish_cell(self.by_id[cid], "failed", "repeat %d failed: %s" % (
                    self.counts[cid] - 1, error), self.params[cid])
        for cid in self.alive:
            self.runner.finish_cell(self.by_id[cid], "ok", None, self.params[cid])
        return None

    def _base_extra(self, cell, facts, calib):
        """What every sample of ``cell`` carries in its extra: the group's noise facts,
        its calibration and the CPUs the cell is pinned to."""
        extra = dict(facts)
        extra.update(calib_min_repeats=calib.min_blocks, calib_max_repeats=calib.max_blocks,
                     calib_target_rel_ci=calib.target_rel_ci,
                     calib_budget_s=calib.budget_s, calib_unit="blocks")
        cpus = self.cpus[cell.cell_id]
        if cpus:
            extra["pinned_cpus"] = ",".join(str(c) for c in cpus)
        return extra

    def _warm_up(self):
        """Every cell's warmups, one cell after another; a cell whose warmup fails ends.
        False when the group's deadline passed."""
        for cell in self.cells:
            for _ in range(cell.warmups):
                if cell.cell_id not in self.alive:
                    break
                if time.monotonic() > self.deadline:
                    return False
                fields, wall = self._repeat(cell.cell_id, True)
                self.out.send("sample", **fields)
                if wall is None:
                    self.alive.remove(cell.cell_id)
                    self.runner.finish_cell(cell, "failed", "repeat %d failed: %s" % (
                        fields["repeat"], fields["error"]), self.params[cell.cell_id])
        return True

    def _one_block(self, order, block):
        """One timed repeat of each cell in ``order``: the samples (held back), the
        ``{cell_id: wall_s}`` of the repeats that worked, the ids of those that failed."""
        held = []
        record = {}
        failed = []
        for pos, cid in enumerate(order):
            fields, wall = self._repeat(cid, False, block, pos)
            held.append(fields)
            if wall is None:
                failed.append(cid)
            else:
                record[cid] = wall
        return held, record, failed

    def _mark_stop(self, held, stop, done, baseline):
        """Write the stop decision into the extra of the last samples of live cells."""
        widths = blocks.group_widths(done, self.alive, baseline)
        for fields in held:
            if fields["cell_id"] in self.alive:
                width = widths.get(fields["cell_id"])
                fields["extra"] = dict(
                    fields["extra"], calib_stop=stop, calib_repeats=len(done),
                    calib_reached_rel_ci=None if width is None else round(width, 6))

    def _timeout(self):
        timeout_s = sum(c.timeout_s for c in self.cells)
        for cell in self.cells:
            if cell.cell_id in self.alive:
                self.runner.finish_cell(
                    cell, "timeout",
                    "group exceeded its timeout of %.0f s after %d runs of this cell"
                    % (timeout_s, self.counts[cell.cell_id]), self.params[cell.cell_id])

    # -- one repeat

    def _repeat(self, cid, warmup, block=None, pos=None):
        cell = self.by_id[cid]
        result = self.measure(cell, self.params[cid], self.start_methods.get(cid),
                              self.cpus[cid], warmup, self.counts[cid], self.extras[cid],
                              block, pos)
        self.counts[cid] += 1
        return result

    def measure(self, cell, params, start_method, cpus, warmup, repeat, base_extra, block,
                pos):
        """One repeat of ``cell``: the speed probe, then the timed window; returns
        ``(sample fields, wall_s or None when it failed)``."""
        probe_s = noise.speed_probe()
        self.runner.repeat_started(cell, repeat, warmup, params, self.deadline)
        error = None
        results = None
        extra = {}
        before = noise.cpu_times()
        window = measure.Window(exclude=self.exclude)
        try:
            with window:
                try:
                    results, extra = models.run(cell.model, self.module, self.setup,
                                                cell.workers, start_method,
                                                params.get("chunksize"), cpus)
                except Exception as exc:
                    error = one_line_error(exc)
        finally:
            self.runner.repeat_ended()
        shares = noise.window_shares(before, noise.cpu_times())
        if error is None:
            try:
                extra = dict(extra)
                extra.update(self.module.check(self.setup, results) or {})
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
        fields = sample_fields(cell, repeat, warmup, params, window.result, ok=ok,
                               error=error, extra=extra,
                               block=None if warmup else block,
                               block_pos=None if warmup else pos, probe_s=probe_s)
        return fields, (window.result.wall_s if ok else None)


def group_calibration(cells):
    """The group's block calibration: the most blocks its cells ask for, the narrowest
    target, and the sum of their time budgets (a block runs every cell once)."""
    low = max(c.min_repeats or c.repeats for c in cells)
    high = max([low] + [c.max_repeats or c.repeats for c in cells])
    targets = [c.target_rel_ci for c in cells if c.target_rel_ci is not None]
    budgets = [c.budget_s for c in cells if c.budget_s is not None]
    return blocks.BlockCalibration(low, high, min(targets) if targets else None,
                                   sum(budgets) if budgets else None)


def prior_blocks(cells):
    """``{block: {cell_id: wall_s}}`` of the earlier runs' timed samples of ``cells``."""
    found = {}
    for cell in cells:
        for block, wall in cell.prior or ():
            found.setdefault(block, {})[cell.cell_id] = wall
    return found


def clean_params(params):
    """The params a setup resolved, with string keys and NaN as None."""
    clean = {}
    for key, value in params.items():
        if isinstance(value, float) and value != value:
            value = None
        clean[str(key)] = value
    return clean
