"""CPU-bound: the guide's pure-Python ``sum(i * i for i in range(n))``.

``n`` is calibrated on the host so that one task takes ``task_s`` seconds
(once per agent run and ``task_s``); the result is checked against the
closed form ``(n-1)n(2n-1)/6``.
"""

import statistics
import time

from workloads import make_setup

_CALIBRATED = {}  # task_s -> (n, measured seconds per task); one agent run
MAX_DOUBLINGS = 40


def cpu_bound_task(n):
    return sum(i * i for i in range(n))


task = cpu_bound_task


def expected(n):
    return (n - 1) * n * (2 * n - 1) // 6


def _time_once(n):
    t0 = time.perf_counter()
    cpu_bound_task(n)
    return time.perf_counter() - t0


def calibrate(task_s):
    """``(n, seconds)``: the loop size for which one task takes about ``task_s``."""
    if task_s in _CALIBRATED:
        return _CALIBRATED[task_s]
    n = 1000
    probe_s = min(task_s / 4.0, 0.02)
    elapsed = _time_once(n)
    for _ in range(MAX_DOUBLINGS):
        if elapsed >= probe_s:
            break
        n *= 2
        elapsed = _time_once(n)
    for _ in range(2):  # two refinements at the target size
        n = max(1, int(round(n * task_s / max(elapsed, 1e-9))))
        elapsed = statistics.median(_time_once(n) for _ in range(3))
    _CALIBRATED[task_s] = (n, elapsed)
    return n, elapsed


def setup(params, workdir):
    task_s = float(params.get("task_s", 0.1))
    tasks = int(params.get("tasks", 8))
    if task_s <= 0 or tasks <= 0:
        raise ValueError("task_s and tasks must be positive")
    n, measured = calibrate(task_s)
    resolved = dict(params, n=n, calibrated_task_s=round(measured, 6))
    return make_setup(resolved, [n] * tasks)


def check(setup, results):
    if len(results) != len(setup.args):
        raise AssertionError("%d results for %d tasks" % (len(results), len(setup.args)))
    for n, value in zip(setup.args, results):
        if value != expected(n):
            raise AssertionError("sum of squares below %d is %r, expected %d"
                                 % (n, value, expected(n)))
    return {}


def teardown(setup):
    pass
