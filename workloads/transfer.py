"""Payload round trips: each task receives ``payload_bytes`` and returns as many.

A task does a fixed amount of compute (the CPU loop of ``workloads.cpu``, sized
to ``task_s``) and returns its payload (a new ``bytes`` with the first byte
changed, so nothing is shared by accident). Threads pass references; process
pools pickle the payload both ways, which is the cost measured here against the
compute it wraps. With ``shm = true`` the payload lives in one
``multiprocessing.shared_memory`` block: tasks receive its name and return a
small tuple after reading and writing their slice in place.
"""

import os
import sys

from workloads import cpu, make_setup

MAX_PAYLOAD = 1 << 30


def _mark(data):
    return bytes([(data[0] + 1) % 256]) + bytes(data[1:]) if data else b""


def transfer_task(arg):
    kind, payload, n, index = arg
    cpu.cpu_bound_task(n)
    if kind == "bytes":
        return index, _mark(payload)
    name, size, owner = payload
    from multiprocessing import shared_memory  # noqa: PLC0415

    shm = shared_memory.SharedMemory(name=name)
    try:
        if sys.version_info < (3, 13) and os.getpid() != owner:
            _untrack(shm)
        buf = shm.buf
        checksum = sum(buf[0:size:4096])
        buf[0] = (buf[0] + 1) % 256
        buf = None
    finally:
        shm.close()
    return index, (size, checksum)


def _untrack(shm):
    """Before 3.13 an attaching process registers the block and may unlink it at exit."""
    try:
        from multiprocessing import resource_tracker  # noqa: PLC0415

        resource_tracker.unregister(shm._name, "shared_memory")
    except Exception:
        pass


task = transfer_task


def setup(params, workdir):
    size = int(params.get("payload_bytes", 1024))
    tasks = int(params.get("tasks", 4))
    task_s = float(params.get("task_s", 0.01))
    use_shm = bool(params.get("shm", False))
    if not 1 <= size <= MAX_PAYLOAD or tasks <= 0 or task_s < 0:
        raise ValueError("payload_bytes must be 1..1 GiB, tasks positive, task_s >= 0")
    n, predicted, facts = cpu.calibrate(task_s) if task_s > 0 else (0, 0.0, {})
    resolved = dict(params, payload_bytes=size, tasks=tasks, n=n, shm=use_shm,
                    calibrated_task_s=round(predicted, 6), **facts)
    if use_shm:
        from multiprocessing import shared_memory  # noqa: PLC0415

        shm = shared_memory.SharedMemory(create=True, size=size)
        shm.buf[:size] = b"\x01" * size
        args = [("shm", (shm.name, size, os.getpid()), n, i) for i in range(tasks)]
        return make_setup(resolved, args, state=shm)
    payload = b"\x01" * size
    return make_setup(resolved, [("bytes", payload, n, i) for i in range(tasks)])


def check(setup, results):
    size = setup.params["payload_bytes"]
    if len(results) != len(setup.args):
        raise AssertionError("%d results for %d tasks" % (len(results), len(setup.args)))
    for i, (index, value) in enumerate(results):
        if index != i:
            raise AssertionError("result %d came back as %d" % (i, index))
        if setup.params["shm"]:
            if value[0] != size:
                raise AssertionError("task %d saw %d bytes, not %d" % (i, value[0], size))
        elif len(value) != size or value[:1] != b"\x02":
            raise AssertionError("task %d returned %d bytes, not its payload" % (i, len(value)))
    return {}


def teardown(setup):
    shm = setup.state
    if shm is not None:
        shm.close()
        shm.unlink()
