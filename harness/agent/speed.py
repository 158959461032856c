"""The agent's ``noise SECONDS`` command: the speed probe timed for a few seconds.

``python agent.pyz noise SECONDS`` sends hello, keepalives while it probes, one ``env``
line and eof. The env line is the host's fingerprint (as ``probe`` sends it) plus one
entry, ``noise``::

    {"seconds": how long it probed, "loop": the probe's loop size,
     "probes": [seconds of each speed probe, in the order timed],
     "steal_pct", "iowait_pct": the machine's shares of CPU time over the whole window
     (None when /proc/stat is unreadable), "loadavg_1m": at the end}

The controller judges the series (harness/stability.py, the rules of
analysis/noise.sql) so a user can check a lab before sweeping it, as ``pyperf system
show`` does. The loop is bounded by time (SECONDS, at most MAX_SECONDS) and by count
(MAX_PROBES, spread evenly over SECONDS; between two probes the agent spins, keeping
the CPU busy as a benchmark does, rather than letting it idle). Stdlib only.
"""

import json
import os
import time

from harness.agent import noise, probe
from harness.agent.plan import parse_host_lock
from harness.agent.turn import Turn

MAX_SECONDS = 600.0
MAX_PROBES = 5000
KEEPALIVE_S = 5.0


def parse_seconds(text):
    """SECONDS as a float in (0, MAX_SECONDS]; ValueError otherwise."""
    seconds = float(text)
    if not 0 < seconds <= MAX_SECONDS:  # also false for NaN
        raise ValueError("SECONDS must be in (0, %g], not %s" % (MAX_SECONDS, text))
    return seconds


def probe_series(seconds, max_probes=MAX_PROBES, keepalive=None, clock=time.perf_counter,
                 probe_once=noise.speed_probe):
    """Speed-probe times over ``seconds``: at most ``max_probes``, probe i starting no
    earlier than i * seconds / max_probes; ``keepalive()`` is called every KEEPALIVE_S."""
    spacing = seconds / max_probes
    start = last_keepalive = clock()
    probes = []
    while len(probes) < max_probes:
        now = clock()
        if now - start >= seconds:
            break
        if keepalive is not None and now - last_keepalive >= KEEPALIVE_S:
            keepalive()
            last_keepalive = now
        if now < start + len(probes) * spacing:
            continue  # ahead of schedule: spin
        probes.append(round(probe_once(), 9))
    return probes


def noise_main(out, seconds_text, hello, lock_text=None):
    """Run the ``noise`` command, writing protocol lines to ``out``; the exit status.

    ``lock_text``: the host lock as JSON (a plan's ``host_lock``, see
    harness.agent.turn): the probes then run holding the host, as a sweep's do."""
    hello(out)
    try:
        seconds = parse_seconds(seconds_text)
        spec = None if lock_text is None else parse_host_lock(json.loads(lock_text))
    except ValueError as exc:
        out.send("error", message="bad noise arguments %r: %s" % (seconds_text, exc))
        out.send("eof", cells=0)
        return 2
    turn = None if spec is None else Turn(out, spec, KEEPALIVE_S)
    if turn is not None and not turn.begin():
        turn.end()
        out.send("eof", cells=0)
        return 0
    try:
        env = _noise_env(out, seconds)
    finally:
        if turn is not None:
            turn.end()
    out.send("env", env=env)
    out.send("eof", cells=0)
    return 0


def _noise_env(out, seconds):
    """The fingerprint with the probe series of ``seconds`` under ``noise``."""
    env = probe.fingerprint()
    before = noise.cpu_times()
    t0 = time.perf_counter()
    probes = probe_series(seconds, keepalive=lambda: out.send("keepalive", t=time.time()))
    elapsed = time.perf_counter() - t0
    shares = noise.window_shares(before, noise.cpu_times())
    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        load = None
    env["noise"] = {"seconds": round(elapsed, 3), "loop": noise.PROBE_LOOP,
                    "probes": probes, "steal_pct": shares["steal_pct"],
                    "iowait_pct": shares["iowait_pct"], "loadavg_1m": load}
    return env
