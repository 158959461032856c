"""Disk I/O: write, fsync and read back ``tasks`` files of ``file_bytes`` each.

The files live in a private temp dir (``tempfile.mkdtemp``, mode 0700) created
at setup and removed at teardown, even when the cell fails. Each task verifies
that what it read equals what it wrote and returns a CRC the agent checks.
The asyncio model does the blocking I/O directly in coroutines (the guide's
"blocking calls in asyncio" pitfall); asyncio_to_thread goes through to_thread.
"""

import os
import shutil
import tempfile
import zlib

from workloads import make_setup

CHUNK = 1 << 20


def content(index, size):
    """The deterministic bytes of file ``index``."""
    block = (b"harness-disk-%08d-" % index) * 64
    reps = size // len(block) + 1
    return (block * reps)[:size]


def write_read(arg):
    """Write + fsync + read back one file; ``(index, size, crc32)``."""
    directory, index, size = arg
    data = content(index, size)
    path = os.path.join(directory, "f%05d.dat" % index)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        written = 0
        while written < size:  # bounded: each write makes progress or raises
            n = os.write(fd, view[written:written + CHUNK])
            if n <= 0:
                raise OSError("short write to %s" % path)
            written += n
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(path, "rb") as fh:
        back = fh.read()
    if back != data:
        raise OSError("file %s read back differs from what was written" % path)
    os.unlink(path)
    return index, len(back), zlib.crc32(back)


task = write_read


def setup(params, workdir):
    tasks = int(params.get("tasks", 16))
    file_bytes = int(params.get("file_bytes", 1 << 20))
    if tasks <= 0 or file_bytes <= 0:
        raise ValueError("tasks and file_bytes must be positive")
    resolved = dict(params, tasks=tasks, file_bytes=file_bytes)
    expected = [zlib.crc32(content(i, file_bytes)) for i in range(tasks)]
    directory = tempfile.mkdtemp(prefix="harness-disk-", dir=workdir)  # mode 0700
    return make_setup(resolved, [(directory, i, file_bytes) for i in range(tasks)],
                      state=(directory, tuple(expected)))


def check(setup, results):
    expected = setup.state[1]
    if len(results) != len(expected):
        raise AssertionError("%d results for %d files" % (len(results), len(expected)))
    size = setup.params["file_bytes"]
    for i, (index, length, crc) in enumerate(results):
        if index != i or length != size or crc != expected[i]:
            raise AssertionError("file %d came back wrong" % i)
    return {}


def teardown(setup):
    shutil.rmtree(setup.state[0], ignore_errors=True)
