"""Measuring one repeat: wall time, CPU time, peak RSS of the process tree.

* wall time: ``time.perf_counter``;
* CPU: ``resource.getrusage`` deltas of RUSAGE_SELF + RUSAGE_CHILDREN (pool
  workers are reaped at pool shutdown, inside the window, so they count);
* start: ``time.time`` at the window's start (``Window.started_unix``), so that
  the gaps between windows -- the harness's own cost per cell -- can be computed
  from stored samples;
* peak RSS: a sampler thread sums the RSS of this process and its descendants
  every ~50 ms (``/proc/<pid>/task/*/children`` walk, psutil as fallback), and
  the result is at least this process's ``ru_maxrss`` when that grew during the
  window (a lifetime peak reached before the window says nothing about it).

Processes listed in ``exclude`` (e.g. the latency server of the network
workload, with its descendants) are not counted; their own CPU time during the
window (from /proc/<pid>/stat, in clock ticks) is reported separately.
"""

import collections
import contextlib
import os
import sys
import threading
import time

try:
    import resource
except ImportError:  # not on POSIX
    resource = None

Usage = collections.namedtuple("Usage", "user_s sys_s maxrss_bytes")
Measurement = collections.namedtuple(
    "Measurement", "wall_s cpu_user_s cpu_sys_s peak_rss_bytes excluded_cpu_s")

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# ru_maxrss is in KiB on Linux, in bytes on macOS.
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024
SAMPLE_INTERVAL_S = 0.05
MAX_TREE = 4096  # bound on the processes walked per sample


def usage():
    """CPU time of self + reaped children, and self's lifetime peak RSS."""
    if resource is None:
        return Usage(None, None, None)
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Usage(me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime,
                 int(me.ru_maxrss) * _MAXRSS_UNIT)


def _children_proc(pid):
    kids = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return kids
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as fh:
                kids.extend(int(x) for x in fh.read().split())
        except (OSError, ValueError):
            continue
    return kids


def _rss_proc(pid):
    try:
        with open("/proc/%d/statm" % pid) as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_cpu_s(pids):
    """utime + stime of ``pids`` (from /proc/<pid>/stat), or None when unreadable."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            return None
    return total / float(_TICKS)


def _has_children_files():
    return os.path.exists("/proc/%d/task/%d/children" % (os.getpid(), os.getpid()))


def tree_rss_proc(root, exclude):
    """The summed RSS of ``root``'s tree (the processes in ``exclude`` left out)."""
    return tree_rss_detail(root, exclude)[0]


def tree_rss_detail(root, exclude):
    """``(total, largest descendant, descendants)`` of the RSS of ``root``'s tree."""
    total = 0
    largest = 0
    kids = 0
    stack = [root]
    seen = 0
    while stack and seen < MAX_TREE:
        pid = stack.pop()
        seen += 1
        if pid in exclude:
            continue
        rss = _rss_proc(pid)
        total += rss
        if pid != root:
            kids += 1
            largest = max(largest, rss)
        stack.extend(_children_proc(pid))
    return total, largest, kids


def tree_rss_psutil(psutil, root, exclude):
    try:
        proc = psutil.Process(root)
        procs = [proc] + proc.children(recursive=True)
    except Exception:
        return 0
    skip = set()
    for p in procs:
        if p.pid in exclude:
            skip.add(p.pid)
            with contextlib.suppress(Exception):
                skip.update(c.pid for c in p.children(recursive=True))
    total = 0
    for p in procs:
        if p.pid in skip:
            continue
        try:
            total += p.memory_info().rss
        except Exception:
            continue
    return total


def _tree_rss_function():
    if _has_children_files():
        return tree_rss_proc
    try:
        import psutil  # noqa: PLC0415 - optional
    except Exception:
        psutil = None
    if psutil is not None:
        return lambda root, exclude: tree_rss_psutil(psutil, root, exclude)
    if os.path.exists("/proc/self/statm"):
        return lambda root, exclude: _rss_proc(root)
    return None


_TREE_RSS = _tree_rss_function()


class RssSampler:
    """Peak of the summed RSS of this process tree while running (a thread)."""

    def __init__(self, exclude=(), interval_s=SAMPLE_INTERVAL_S):
        self._exclude = frozenset(exclude)
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = None
        self.peak = 0
        self.worker_peak = None  # largest single descendant (a pool worker), /proc only
        self.procs_peak = None  # most descendants at once, /proc only

    def _sample(self):
        if _TREE_RSS is None:
            return
        if _TREE_RSS is tree_rss_proc:
            value, largest, kids = tree_rss_detail(os.getpid(), self._exclude)
            self.worker_peak = max(self.worker_peak or 0, largest)
            self.procs_peak = max(self.procs_peak or 0, kids)
        else:
            value = _TREE_RSS(os.getpid(), self._exclude)
        if value > self.peak:
            self.peak = value

    def _loop(self):
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self):
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()
        return False


class Window:
    """The timed window of one repeat: ``with Window(exclude) as w: ...; w.result``."""

    def __init__(self, exclude=()):
        self._exclude = tuple(exclude)
        self._sampler = RssSampler(exclude)
        self.result = None
        self.worker_peak_rss_bytes = None
        self.procs_peak = None
        self.started_unix = None

    def __enter__(self):
        self._x0 = proc_cpu_s(self._exclude) if self._exclude else None
        self._sampler.__enter__()
        self._u0 = usage()
        self.started_unix = time.time()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self._t0
        u1 = usage()
        x1 = proc_cpu_s(self._exclude) if self._x0 is not None else None
        self._sampler.__exit__(*exc)
        u0 = self._u0
        user = sys_ = None
        if u0.user_s is not None and u1.user_s is not None:
            user = max(0.0, u1.user_s - u0.user_s)
            sys_ = max(0.0, u1.sys_s - u0.sys_s)
        peak = self._sampler.peak
        # ru_maxrss is the lifetime peak: it says something about this window only
        # when it grew inside it (then this process peaked here, between samples).
        if u1.maxrss_bytes is not None and u0.maxrss_bytes is not None \
                and u1.maxrss_bytes > u0.maxrss_bytes:
            peak = max(peak, u1.maxrss_bytes)
        excluded = max(0.0, x1 - self._x0) if x1 is not None else None
        self.worker_peak_rss_bytes = self._sampler.worker_peak or None
        self.procs_peak = self._sampler.procs_peak
        self.result = Measurement(wall, user, sys_, int(peak) if peak else None, excluded)
        return False
