"""Workload implementations run by the agent on each host (stdlib only).

A workload *definition* is a TOML file here (``cpu_bound.toml`` ...), read only
by the controller; its ``implementation`` names a module ``workloads/<name>.py``
that the agent imports. Every implementation module offers:

``MODELS``
    optional tuple of the model names it supports (default: all).
``setup(params, workdir) -> Setup``
    once per cell, outside the timed windows: resolve the plan params (e.g.
    calibrate), create what the tasks need (temp dir, server process) and return
    ``Setup(params=resolved params dict, args=list of task arguments,
    state=anything teardown/check need, exclude_pids=pids not to count in RSS)``.
``task(arg) -> result``
    module-level and picklable (workers import it by reference, also from the
    zipapp with spawn/forkserver); does one unit of work, blocking.
``atask(arg) -> result`` (optional, ``async def``)
    the native-coroutine version used by the ``asyncio`` model; without it the
    asyncio coroutines call ``task`` directly (blocking the loop, as the guide's
    pitfall says).
``check(setup, results) -> dict``
    raises when a result is wrong (so a model that does nothing cannot look
    fast); returns the per-repeat ``extra`` numbers (may be empty).
``teardown(setup)``
    always called after the cell, even on failure.

Calibration *hints* come with the plan (``HINTS``, set by the agent before the
first cell): values an earlier sweep measured on the same host and interpreter
(e.g. ``cpu_rate``), so that two sweeps run the same loop sizes and their
medians are the same quantity.

Nothing here writes to stdout: stdout carries only the agent's protocol.
"""

import collections

Setup = collections.namedtuple("Setup", "params args state exclude_pids")

HINTS = {}  # calibration hints of this agent run (see the module docstring)


def set_hints(hints):
    HINTS.clear()
    HINTS.update(hints or {})


def make_setup(params, args, state=None, exclude_pids=()):
    return Setup(dict(params), list(args), state, tuple(exclude_pids))


def noop(x):
    """Used to start the workers of a pool (its start-up time is measured)."""
    return x
