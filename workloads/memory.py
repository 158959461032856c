"""Memory-bound: strided traversal of a large array, where NUMA placement shows.

Each task allocates ``array_bytes`` (zero-filled, so its pages are placed by the
first touch, on the node the task runs on or the one ``numactl --membind``
names) and reads one byte per 64-byte cache line ``passes`` times, with the
strided copy done in C (``bytes(buf[::64])``), so memory bandwidth and latency,
not the interpreter, dominate.
"""

from workloads import make_setup

LINE = 64
MAX_ARRAY = 1 << 32


def memory_task(arg):
    size, passes, index = arg
    buf = bytearray(size)
    buf[::4096] = b"\x01" * len(range(0, size, 4096))
    total = 0
    for _ in range(passes):
        total += bytes(buf[::LINE]).count(1)
    return index, total


task = memory_task


def expected(size, passes):
    return passes * len(range(0, size, 4096))


def setup(params, workdir):
    size = int(params.get("array_bytes", 64 << 20))
    passes = int(params.get("passes", 4))
    tasks = int(params.get("tasks", 4))
    if not LINE <= size <= MAX_ARRAY or passes <= 0 or tasks <= 0:
        raise ValueError("array_bytes must be 64 B..4 GiB, passes and tasks positive")
    resolved = dict(params, array_bytes=size, passes=passes, tasks=tasks)
    return make_setup(resolved, [(size, passes, i) for i in range(tasks)])


def check(setup, results):
    size, passes = setup.params["array_bytes"], setup.params["passes"]
    want = expected(size, passes)
    for i, (index, total) in enumerate(results):
        if index != i or total != want:
            raise AssertionError("task %d counted %r, expected %d" % (i, total, want))
    if len(results) != len(setup.args):
        raise AssertionError("%d results for %d tasks" % (len(results), len(setup.args)))
    return {}


def teardown(setup):
    pass
