"""Small real file systems for the tests (and benchmarks/faults.py) that need one: a tmpfs
of a given size, or a read-only one, mounted by the test itself and unmounted
afterwards, and a file that fills one up."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted on ``path`` (made if missing) with ``options`` (e.g. ``size=4m`` or
    ``ro,size=1m``); skips the test where it cannot be mounted (not root, no
    CAP_SYS_ADMIN). Unmounted on the way out, lazily if it is still busy."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True,
                          timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def fill(directory: Path) -> Path:
    """Write a file in ``directory`` until its file system has no room left (ENOSPC; any
    other error is raised); the file. Bounded: 625 MiB at most."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:
        for _ in range(10_000):
            try:
                f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
        for size in (4096, 512, 1):  # the last partial pages too
            for _ in range(64):
                try:
                    f.write(b"\0" * size)
                except OSError:
                    break
    return filler
