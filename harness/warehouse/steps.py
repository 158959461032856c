"""Change points in a series of sweeps: where a cell's time (or speedup) stepped.

The method, in words (docs/reference.md, ``harness history --help``): *binary
segmentation of an L1 piecewise-constant fit, each step kept only when it is both
significant and large enough*.

1. A series is one cell of one environment over its sweeps, oldest first: per sweep a
   value (the median) and its interval [low, high] (for a time the 97.5% order-statistic
   interval of that median, the one ``compare --by sweep`` combines: with two sweeps of
   2 or more repeats a cell steps exactly where compare calls it faster or slower by at
   least ``MIN_CHANGE``; for a speedup its interval). Sweeps without a value are left out.
2. A segment's level is the median of its sweeps' values (the L1 fit: one slow sweep
   among many moves a median, unlike a mean, by at most one rank), and its interval
   is [median of its sweeps' lows, median of its sweeps' highs]: a single sweep keeps
   its own interval, several sweeps the typical one.
3. Binary segmentation: split the series where the two parts' summed absolute
   deviations from their medians are smallest (on a tie: where the two medians differ
   most, then the earliest); keep
   the split when it passes the tests below and split both parts again; stop a part
   whose best split fails. At most ``MAX_STEPS`` steps per series.
4. Tests of a step between two adjacent segments: their intervals do not overlap (the
   change is beyond what each segment's own noise allows) AND the levels differ by at
   least ``MIN_CHANGE`` (5%) relative to the earlier one.
5. The steps found are checked again between the final adjacent segments (a split made
   against a longer, mixed segment may not hold against the final neighbour); a step
   failing now is dropped and its two segments merged, until every step passes.

asv (asv/step_detect.py) fits the same L1 piecewise-constant model by an exact
penalised dynamic programme with the penalty chosen by an information criterion;
this method trades that optimality for two tests a reader can check by eye on the
history table. Plain Python: a split costs O(n log n) for n sweeps (two heaps).
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MIN_CHANGE = 0.05
MAX_STEPS = 10
METHOD = (f"binary segmentation of an L1 piecewise-constant fit; a step needs "
          f"non-overlapping segment intervals and a change >= {MIN_CHANGE:.0%}")


@dataclass(frozen=True)
class Point:
    """One sweep of a series: its value and that value's interval."""

    value: float
    low: float
    high: float

    def __post_init__(self) -> None:
        if not (self.low <= self.value <= self.high):
            # a median lies in its own interval; a missing end is given as the value
            raise ValueError(f"value {self.value} outside its interval "
                             f"[{self.low}, {self.high}]")


@dataclass(frozen=True)
class Segment:
    """Points [start, stop) of a series, their level and its interval."""

    start: int
    stop: int
    level: float
    low: float
    high: float


@dataclass(frozen=True)
class Step:
    """A change between two adjacent segments: ``index`` is the first point after it."""

    index: int
    before: Segment
    after: Segment

    @property
    def ratio(self) -> float:
        """level after / level before (for a time: above 1 is slower)."""
        return self.after.level / self.before.level


def segment(points: Sequence[Point], start: int, stop: int) -> Segment:
    """The level (median) and interval of points[start:stop]."""
    part = points[start:stop]
    if not part:
        raise ValueError("an empty segment")
    return Segment(start, stop, statistics.median(p.value for p in part),
                   statistics.median(p.low for p in part),
                   statistics.median(p.high for p in part))


def is_step(before: Segment, after: Segment, min_change: float = MIN_CHANGE) -> bool:
    """Whether two adjacent segments differ: disjoint intervals and a change of at
    least ``min_change`` of the earlier level."""
    disjoint = before.high < after.low or after.high < before.low
    if not disjoint:
        return False
    if before.level == 0:
        return after.level != 0
    return abs(after.level / before.level - 1) >= min_change


def _running_l1(values: Sequence[float]) -> list[tuple[float, float]]:
    """(L1 cost, median) of values[:k] for k = 1..n, in O(n log n): two heaps hold the
    lower and upper halves; the cost is sum(upper) - sum(lower) around the median."""
    lower: list[float] = []  # max-heap of the lower half, negated
    upper: list[float] = []  # min-heap of the upper half
    sum_lower = sum_upper = 0.0
    out: list[tuple[float, float]] = []
    for x in values:
        if lower and x > -lower[0]:
            heapq.heappush(upper, x)
            sum_upper += x
        else:
            heapq.heappush(lower, -x)
            sum_lower += x
        if len(lower) > len(upper) + 1:
            y = -heapq.heappop(lower)
            sum_lower -= y
            heapq.heappush(upper, y)
            sum_upper += y
        elif len(upper) > len(lower):
            y = heapq.heappop(upper)
            sum_upper -= y
            heapq.heappush(lower, -y)
            sum_lower += y
        m = -lower[0] if len(lower) > len(upper) else (-lower[0] + upper[0]) / 2
        cost = (m * len(lower) - sum_lower) + (sum_upper - m * len(upper))
        out.append((cost, m))
    return out


def _best_split(points: Sequence[Point], start: int, stop: int) -> int | None:
    """The split of points[start:stop] with the least summed L1 cost, ties to the one
    whose two medians differ most, then to the earliest (None: fewer than 2 points)."""
    values = [p.value for p in points[start:stop]]
    heads = _running_l1(values)              # heads[k - 1]: values[:k]
    tails = _running_l1(values[::-1])[::-1]  # tails[k]: values[k:]
    best: tuple[float, float, int] | None = None
    for k in range(1, len(values)):
        (cost_a, m_a), (cost_b, m_b) = heads[k - 1], tails[k]
        key = (round(cost_a + cost_b, 12), -abs(m_b - m_a))
        if best is None or key < best[:2]:
            best = (*key, start + k)
    return None if best is None else best[2]


def detect_steps(points: Sequence[Point], *, min_change: float = MIN_CHANGE,
                 max_steps: int = MAX_STEPS) -> list[Step]:
    """The steps of a series, oldest first (see the module docstring)."""
    if min_change < 0 or max_steps < 0:
        raise ValueError("min_change and max_steps must be >= 0")
    if not points:
        return []
    cuts: list[int] = []
    todo = [(0, len(points))]
    while todo and len(cuts) < max_steps:  # each pass cuts or drops a part: bounded
        start, stop = todo.pop()
        k = _best_split(points, start, stop)
        if k is None or not is_step(segment(points, start, k), segment(points, k, stop),
                                    min_change):
            continue
        cuts.append(k)
        todo += [(start, k), (k, stop)]
    cuts.sort()
    while True:  # at most len(cuts) passes: each drops a cut or ends
        bounds = [0, *cuts, len(points)]
        segs = [segment(points, a, b) for a, b in zip(bounds, bounds[1:], strict=False)]
        failing = [i for i in range(len(cuts))
                   if not is_step(segs[i], segs[i + 1], min_change)]
        if not failing:
            return [Step(cuts[i], segs[i], segs[i + 1]) for i in range(len(cuts))]
        del cuts[failing[0]]
