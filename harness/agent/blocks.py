"""Interleaved blocks: the order cells of one group run in, and when to stop.

The cells of a *group* share a speedup baseline (a workload's ``sequential``
cell and every model's cell at the same params). They run as *blocks*: a block
holds one timed repeat of every cell of the group, in a random order. A ratio of
two cells is then taken within each block (``seq_b / cell_b``), so a change of
the machine's speed that lasts seconds moves both sides of a ratio alike instead
of turning into a fake speedup (Google Benchmark's random interleaving, asv's
rounds, Abedi & Brecht's randomized multiple interleaved trials).

:func:`block_order` makes the orders balanced: over every ``k`` consecutive
blocks (``k`` cells) each cell comes first exactly once, the first cells in a
shuffled order, the rest of each block shuffled.

:class:`BlockCalibration` decides the number of blocks from the width of the
*speedup* intervals: after ``min_blocks``, blocks go on until the order-statistic
95% interval of the median block ratio of every cell of the group is at most
``target_rel_ci`` of that median wide, or ``budget_s`` is spent, or
``max_blocks`` is reached. A group without a baseline (one cell, or no
``sequential``) uses the width of each cell's own median interval instead.

Stdlib only, Python 3.9+.
"""

import random

from harness.agent import stats

BASELINE_MODEL = "sequential"


def block_order(cell_ids, block, seed):
    """The order of ``cell_ids`` in block number ``block`` (0, 1, ...) of a group.

    Deterministic for a (``seed``, ``block``): a resumed or re-started agent that
    continues at block ``b`` uses the order it would have used. Balanced: in every
    cycle of ``len(cell_ids)`` blocks each cell is first once.
    """
    ids = list(cell_ids)
    k = len(ids)
    if k <= 1:
        return ids
    cycle, slot = divmod(block, k)
    firsts = list(ids)
    random.Random("%s/cycle/%d" % (seed, cycle)).shuffle(firsts)
    first = firsts[slot]
    rest = [c for c in ids if c != first]
    random.Random("%s/block/%d" % (seed, block)).shuffle(rest)
    return [first] + rest


def block_ratios(blocks, baseline, cell_id):
    """The ratios ``baseline_b / cell_b`` over the blocks holding both (a list)."""
    out = []
    for block in blocks:
        seq = block.get(baseline)
        mine = block.get(cell_id)
        if seq is not None and mine:
            out.append(seq / mine)
    return out


def group_widths(blocks, cell_ids, baseline):
    """``{cell_id: relative width}`` of each cell's speedup interval (the median block
    ratio's interval over that median), or of its own median interval when the group has
    no baseline; None where it cannot be computed yet."""
    widths = {}
    for cell_id in cell_ids:
        if baseline is not None and cell_id != baseline:
            widths[cell_id] = stats.rel_ci_width(block_ratios(blocks, baseline, cell_id))
        elif baseline is None:
            xs = [b[cell_id] for b in blocks if b.get(cell_id) is not None]
            widths[cell_id] = stats.rel_ci_width(xs)
    return widths


class BlockCalibration:
    """When a group stops adding blocks: every interval narrow enough, budget spent, or
    the maximum number of blocks reached (counts include blocks of earlier runs)."""

    def __init__(self, min_blocks, max_blocks, target_rel_ci=None, budget_s=None):
        if min_blocks < 1 or max_blocks < min_blocks:
            raise ValueError("need 1 <= min_blocks <= max_blocks")
        self.min_blocks = int(min_blocks)
        self.max_blocks = int(max_blocks)
        self.target_rel_ci = target_rel_ci
        self.budget_s = budget_s

    def stop_reason(self, blocks, cell_ids, baseline, elapsed_s):
        """``target``, ``budget``, ``max_repeats`` or None, after ``blocks`` (a list of
        ``{cell_id: wall_s}``, complete blocks only) and ``elapsed_s`` in this run."""
        n = len(blocks)
        if n < self.min_blocks:
            return None
        if self.target_rel_ci is not None:
            widths = group_widths(blocks, cell_ids, baseline)
            if widths and all(w is not None and w <= self.target_rel_ci
                              for w in widths.values()):
                return "target"
        if n >= self.max_blocks:
            return "max_repeats"
        if self.budget_s is not None and elapsed_s >= self.budget_s:
            return "budget"
        return None
