"""Noise facts read at the start of each cell: what else was going on.

``cell_noise()`` returns a flat dict for the samples' ``extra``: the load
average, the CPU frequency governor and current frequency of CPU 0 when
readable, and the other runnable processes (state R, not this agent's tree).
A fact that cannot be read is None. Stdlib only.
"""

import os
import sys
import time

MAX_PROCS = 4096
MAX_NAMES = 5


def _read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def _cpu_mhz():
    khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    if khz and khz.isdigit():
        return round(int(khz) / 1000.0, 1)
    text = _read("/proc/cpuinfo")
    if text:
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "cpu MHz":
                try:
                    return round(float(value), 1)
                except ValueError:
                    return None
    return None


def _own_tree():
    mine = {os.getpid(), os.getppid()}
    return mine


def busy_processes():
    """``(count, names)`` of runnable processes other than this agent and its parent."""
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None, None
    skip = _own_tree()
    names = []
    count = 0
    for pid in pids[:MAX_PROCS]:
        if int(pid) in skip:
            continue
        stat = _read("/proc/%s/stat" % pid)
        if not stat or ")" not in stat:
            continue
        head, _, tail = stat.rpartition(")")
        fields = tail.split()
        if fields and fields[0] == "R":
            # a process in this agent's tree has us as an ancestor: skip direct children
            if len(fields) > 1 and fields[1].isdigit() and int(fields[1]) == os.getpid():
                continue
            count += 1
            if len(names) < MAX_NAMES:
                names.append(head.partition("(")[2][:32])
    return count, names


def cell_noise():
    facts = {}
    try:
        facts["loadavg_1m"] = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        facts["loadavg_1m"] = None
    facts["cpu_governor"] = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    facts["cpu_mhz"] = _cpu_mhz()
    count, names = busy_processes()
    facts["busy_procs"] = count
    facts["busy_names"] = ",".join(names) if names else (None if names is None else "")
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    facts["gil_enabled"] = bool(is_gil_enabled()) if is_gil_enabled is not None else True
    return facts


# ---------------------------------------------------------------- the speed probe

# A fixed loop (not calibrated: the same work on every host and in every sweep) of
# about 1 ms on a 2020s x86 core under CPython 3.11. Timed right before each timed
# repeat, it shows the CPU's speed at that moment: a VM whose speed switches between
# modes shows two clusters of probe times.
PROBE_LOOP = 30000


def speed_probe(loop=PROBE_LOOP):
    """Seconds one fixed tiny loop takes now (``sum(i * i for i in range(loop))``)."""
    t0 = time.perf_counter()
    sum(i * i for i in range(loop))
    return time.perf_counter() - t0


_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times():
    """The machine-wide CPU times of /proc/stat's ``cpu`` line (clock ticks), or None."""
    text = _read("/proc/stat")
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith("cpu "):
            try:
                values = [int(x) for x in line.split()[1:1 + len(_STAT_FIELDS)]]
            except ValueError:
                return None
            values += [0] * (len(_STAT_FIELDS) - len(values))
            return dict(zip(_STAT_FIELDS, values))
    return None


def window_shares(before, after):
    """``{"steal_pct", "iowait_pct"}`` of the machine's CPU time between two
    :func:`cpu_times` readings (None each when unreadable or no tick passed)."""
    if not before or not after:
        return {"steal_pct": None, "iowait_pct": None}
    total = sum(after[k] - before[k] for k in _STAT_FIELDS)
    if total <= 0:
        return {"steal_pct": None, "iowait_pct": None}
    return {"steal_pct": round(100.0 * (after["steal"] - before["steal"]) / total, 3),
            "iowait_pct": round(100.0 * (after["iowait"] - before["iowait"]) / total, 3)}
