"""Writing a file whole or not at all: a temp file beside it, fsynced, then renamed.

Every file harness writes that a reader may open at any moment (Parquet partitions,
the view cache, the file index, calibration, reports) goes through
:func:`atomic_path` or :func:`write_atomic`, so a crash or a full disk leaves either
the old file or the new one, never half of one. A write that finds no room (ENOSPC,
EDQUOT) is :class:`harness.errors.DiskFull`: one line naming the file and the space it
needs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness.errors import DiskFull

# The errors of a write that found no room: the file system is full, or the quota spent.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


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


def is_no_space(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that found no room (ENOSPC, EDQUOT), also when a library
    (pyarrow, DuckDB) reports it only in its message."""
    if isinstance(exc, OSError) and exc.errno in NO_SPACE:
        return True
    text = str(exc)
    return any(os.strerror(code) in text for code in NO_SPACE)


def free_bytes(directory: Path) -> int | None:
    """The bytes an unprivileged writer may still use on ``directory``'s file system."""
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def size_text(n: int) -> str:
    """A byte count for people: 512 B, 3.1 KiB, 2.0 MiB, 1.5 GiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def disk_full(final: Path, written: int, needed: int | None, exc: BaseException) -> DiskFull:
    """The one-line error of a write of ``final`` that found no room; ``written``: the
    bytes that fitted before it failed; ``needed``: the caller's estimate of the file's
    size, when known."""
    need = max(written + 1, needed or 0)
    free = free_bytes(final.parent)
    why = "disk quota exceeded" if getattr(exc, "errno", None) == errno.EDQUOT \
        else "no space left on device"
    return DiskFull(
        f"{why} writing {final}: {size_text(free or 0)} free, "
        f"{'about' if needed else 'over'} {size_text(need)} needed for this file",
        path=str(final), needed=need, free=free,
        hint=f"free space on the file system of {final.parent}, then run the command again",
    )


@contextlib.contextmanager
def atomic_path(final: Path, *, replace: bool = True, fsync: bool = True,
                suffix: str = ".part", mode: int | None = None,
                size_hint: int | None = None) -> Iterator[Path]:
    """A temp path beside ``final`` to write; on leaving the block without an error it
    becomes ``final`` (fsynced first when ``fsync``). With ``replace=False`` an existing
    ``final`` is never replaced: the block's file is dropped and FileExistsError raised.
    The temp file is removed on any error. ``mode``: the file's permission bits (default:
    mkstemp's 0600). A write that finds no room (ENOSPC, EDQUOT, in the block or in the
    fsync) is :class:`~harness.errors.DiskFull`, naming ``final`` and the space needed
    (``size_hint``: the caller's estimate of the file's size)."""
    final = Path(final)
    try:
        fd, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=suffix)
    except OSError as e:
        if is_no_space(e):
            raise disk_full(final, 0, size_hint, e) from e
        raise
    os.close(fd)
    tmp = Path(name)
    try:
        try:
            yield tmp
            if mode is not None:
                os.chmod(tmp, mode)
            if fsync:
                with open(tmp, "rb") as fh:  # fsync needs no write access
                    os.fsync(fh.fileno())
        except Exception as e:
            if not is_no_space(e):
                raise
            try:
                written = tmp.stat().st_size
            except OSError:
                written = 0
            raise disk_full(final, written, size_hint, e) from e
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
        with atomic_path(final, replace=replace, fsync=fsync, mode=mode,
                         size_hint=len(raw)) as tmp:
            tmp.write_bytes(raw)
    except FileExistsError:
        return False
    return True
