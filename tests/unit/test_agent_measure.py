"""The timed window: children's CPU and RSS count, excluded processes do not."""

import os
import subprocess
import sys
import time

from harness.agent import measure

HOG = ("import time\nx = bytearray(%d)\nfor i in range(0, len(x), 4096): x[i] = 1\n"
       "t = time.process_time()\nwhile time.process_time() - t < %f: pass\n")
MIB = 1 << 20


def _child(mb, busy_s):
    return subprocess.Popen([sys.executable, "-c", HOG % (mb * MIB, busy_s)])


def test_window_counts_reaped_children_cpu_and_rss():
    with measure.Window() as window:
        child = _child(200, 0.4)
        assert child.wait(timeout=30) == 0
    m = window.result
    assert m.wall_s >= 0.4
    assert m.cpu_user_s + m.cpu_sys_s >= 0.3  # the child's busy loop, reaped in the window
    assert m.peak_rss_bytes >= 200 * MIB
    assert m.excluded_cpu_s is None


def test_window_excludes_a_server_process():
    server = _child(200, 2.0)
    try:
        # This process may already be big (pytest with pandas loaded): the 200 MiB
        # server must not be added on top of what it holds now.
        page = os.sysconf("SC_PAGE_SIZE")
        with open("/proc/self/statm") as statm:
            own = int(statm.read().split()[1]) * page
        with measure.Window(exclude=(server.pid,)) as window:
            sum(i for i in range(10000))
            subprocess.run([sys.executable, "-c", "pass"], check=True)
        m = window.result
        assert m.peak_rss_bytes < own + 100 * MIB
        assert m.excluded_cpu_s is not None and m.excluded_cpu_s >= 0
    finally:
        server.kill()
        server.wait(timeout=10)


def test_usage_is_monotonic():
    a = measure.usage()
    sum(i * i for i in range(200000))
    b = measure.usage()
    assert b.user_s + b.sys_s >= a.user_s + a.sys_s
    assert b.maxrss_bytes > 0


def test_window_records_its_start_on_the_wall_clock():
    before = time.time()
    with measure.Window() as window:
        pass
    after = time.time()
    assert before <= window.started_unix <= after
    assert window.started_unix + window.result.wall_s <= after + 0.001
