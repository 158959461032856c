"""Writing a file whole or not at all: a temp file beside it, fsynced, then renamed.

Every file harness writes that a reader may open at any moment (Parquet partitions,
the view cache, the file index, calibration, reports) goes through
:func:`atomic_path` or :func:`write_atomic`, so a crash or a full disk leaves either
the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in ``directory`` durable (where the OS allows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(final: Path, *, replace: bool = True, fsync: bool = True,
                suffix: str = ".part", mode: int | None = None) -> Iterator[Path]:
    """A temp path beside ``final`` to write; on leaving the block without an error it
    becomes ``final`` (fsynced first when ``fsync``). With ``replace=False`` an existing
    ``final`` is never replaced: the block's file is dropped and FileExistsError raised.
    The temp file is removed on any error. ``mode``: the file's permission bits (default:
    mkstemp's 0600)."""
    final = Path(final)
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        if fsync:
            with open(tmp, "rb") as fh:  # fsync needs no write access
                os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, final)
        else:
            os.link(tmp, final)  # FileExistsError when final exists: never replaced
        if fsync:
            fsync_dir(final.parent)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_atomic(final: Path, data: bytes | str, *, replace: bool = True,
                 fsync: bool = True, mode: int | None = None) -> bool:
    """Write ``data`` (text as UTF-8) to ``final`` whole or not at all; False when
    ``replace=False`` and ``final`` exists already (nothing written)."""
    final = Path(final)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with atomic_path(final, replace=replace, fsync=fsync, mode=mode) as tmp:
            tmp.write_bytes(raw)
    except FileExistsError:
        return False
    return True
