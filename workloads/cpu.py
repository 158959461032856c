"""CPU-bound: the guide's pure-Python ``sum(i * i for i in range(n))``.

``n`` is ``task_s`` times the host's *rate* (loop iterations per second of this
task), so that one task takes about ``task_s`` seconds; the result is checked
against the closed form ``(n-1)n(2n-1)/6``.

The rate is measured once per agent run at a size of at least 20 ms, as the
fastest of 5 timings (the minimum is what the machine can do; interference only
adds), unless the plan brings a ``cpu_rate`` hint from an earlier sweep on the
same host and interpreter: then that rate is used, so every sweep of that
environment runs the same ``n`` for the same ``task_s``. The params say which:
``calibration`` is ``measured`` or ``reused``.
"""

import time

import workloads
from workloads import make_setup

MAX_DOUBLINGS = 40
PROBE_S = 0.02  # the smallest timed size for the rate
RATE_TIMINGS = 5
_RATE = []  # [(rate, source)] once measured or taken from the hints, for this agent run


def cpu_bound_task(n):
    return sum(i * i for i in range(n))


task = cpu_bound_task


def expected(n):
    return (n - 1) * n * (2 * n - 1) // 6


def _time_once(n):
    t0 = time.perf_counter()
    cpu_bound_task(n)
    return time.perf_counter() - t0


def measure_rate(probe_s=PROBE_S, timings=RATE_TIMINGS):
    """Iterations per second of the task, from the fastest of ``timings`` runs."""
    n = 1000
    elapsed = _time_once(n)
    for _ in range(MAX_DOUBLINGS):
        if elapsed >= probe_s:
            break
        n *= 2
        elapsed = _time_once(n)
    best = min([elapsed] + [_time_once(n) for _ in range(timings - 1)])
    return n / max(best, 1e-9)


def _positive(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def rate():
    """``(iterations per second, 'reused' | 'measured')`` for this agent run."""
    if not _RATE:
        hint = workloads.HINTS.get("cpu_rate")
        mine = workloads.HINTS.get("cpu_rate_measured")  # by the parent agent, this sweep
        if _positive(hint):
            _RATE.append((float(round(hint)), "reused"))
        elif _positive(mine):
            _RATE.append((float(round(mine)), "measured"))
        else:  # a whole number: the params record exactly the rate n was derived from
            _RATE.append((float(round(measure_rate())), "measured"))
    return _RATE[0]


def calibrate(task_s):
    """``(n, seconds per task the rate predicts, params to record)`` for ``task_s``."""
    per_s, source = rate()
    n = max(1, int(round(task_s * per_s)))
    return n, n / per_s, {"cpu_rate": per_s, "calibration": source}


def setup(params, workdir):
    task_s = float(params.get("task_s", 0.1))
    tasks = int(params.get("tasks", 8))
    if task_s <= 0 or tasks <= 0:
        raise ValueError("task_s and tasks must be positive")
    n, predicted, facts = calibrate(task_s)
    resolved = dict(params, n=n, calibrated_task_s=round(predicted, 6), **facts)
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
