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

import os
import time

from harness.agent import noise, probe

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


def noise_main(out, seconds_text, hello):
    """Run the ``noise`` command, writing protocol lines to ``out``; the exit status."""
    hello(out)
    try:
        seconds = parse_seconds(seconds_text)
    except ValueError as exc:
        out.send("error", message="bad noise SECONDS %r: %s" % (seconds_text, exc))
        out.send("eof", cells=0)
        return 2
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
    out.send("env", env=env)
    out.send("eof", cells=0)
    return 0
