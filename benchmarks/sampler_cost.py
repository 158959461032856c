"""What the agent's timed window costs an in-process model: Window vs a bare timer.

    .venv/bin/python benchmarks/sampler_cost.py [--repeats 15] [--task-s 0.1] [--tasks 8]

The same batch (the CPU-bound workload's task, ``tasks`` times, through
``harness.agent.models.run``) is timed in one process two ways, in a shuffled order
each round: with ``perf_counter`` alone, and inside ``measure.Window`` (the RSS
sampler thread waking every 50 ms, getrusage before and after). For the sequential
and asyncio models the sampler competes with the work for the GIL, so this is where
its cost would show. Also prints the CPU time of one sample (the /proc tree walk)
and how long a sample takes while the main thread holds the GIL in a pure-Python loop.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.agent import measure, models  # noqa: E402
from workloads import cpu, make_setup  # noqa: E402


def loop_size(task_s: float) -> int:
    n = 100_000
    while True:
        t0 = time.perf_counter()
        cpu.cpu_bound_task(n)
        elapsed = time.perf_counter() - t0
        if elapsed > 0.02:
            return max(1, int(n * task_s / elapsed))
        n *= 2


def bare(model: str, setup: object) -> float:
    t0 = time.perf_counter()
    models.run(model, cpu, setup, 2, None)
    return time.perf_counter() - t0


def window(model: str, setup: object) -> float:
    with measure.Window() as w:
        models.run(model, cpu, setup, 2, None)
    return w.result.wall_s


def sample_costs() -> tuple[float, float]:
    """CPU seconds per sample idle; median wall seconds per sample under a busy GIL."""
    c0 = time.process_time()
    for _ in range(1000):
        measure.tree_rss_detail(os.getpid(), frozenset())
    per_sample = (time.process_time() - c0) / 1000
    durations: list[float] = []
    original = measure.RssSampler._sample

    def timed(self: measure.RssSampler) -> None:
        t0 = time.perf_counter()
        original(self)
        durations.append(time.perf_counter() - t0)

    measure.RssSampler._sample = timed  # type: ignore[method-assign]
    try:
        with measure.RssSampler():
            sum(i * i for i in range(10_000_000))
    finally:
        measure.RssSampler._sample = original  # type: ignore[method-assign]
    return per_sample, statistics.median(durations)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--task-s", type=float, default=0.1)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--models", default="sequential,asyncio")
    ns = parser.parse_args()
    n = loop_size(ns.task_s)
    setup = make_setup({}, [n] * ns.tasks)
    ways = [(f, m) for m in ns.models.split(",") for f in (bare, window)]
    times: dict[tuple, list[float]] = {w: [] for w in ways}
    for fn, model in ways:  # one warmup each
        fn(model, setup)
    rng = random.Random(7)
    for _ in range(ns.repeats):
        order = ways[:]
        rng.shuffle(order)
        for way in order:
            times[way].append(way[0](way[1], setup))
    per_sample, busy = sample_costs()
    print(f"{os.cpu_count()} cores, python {platform.python_version()}, load "
          f"{os.getloadavg()[0]:.2f}, n={n}, tasks={ns.tasks}, {ns.repeats} repeats each\n")
    print("| model | bare median (s) | Window median (s) | Window / bare | IQR bare | "
          "IQR Window |\n|---|---|---|---|---|---|")
    for model in ns.models.split(","):
        b, w = times[(bare, model)], times[(window, model)]
        qb, qw = statistics.quantiles(b, n=4), statistics.quantiles(w, n=4)
        print(f"| {model} | {statistics.median(b):.4f} | {statistics.median(w):.4f} | "
              f"{statistics.median(w) / statistics.median(b):.4f} | {qb[0]:.4f}-{qb[2]:.4f} | "
              f"{qw[0]:.4f}-{qw[2]:.4f} |")
    print(f"\none sample: {per_sample * 1e6:.0f} us CPU (every "
          f"{measure.SAMPLE_INTERVAL_S * 1000:.0f} ms: "
          f"{per_sample / measure.SAMPLE_INTERVAL_S * 100:.2f}% of a core); "
          f"{busy * 1e3:.2f} ms wall (median) while the main thread runs Python")
    return 0


if __name__ == "__main__":
    sys.exit(main())
