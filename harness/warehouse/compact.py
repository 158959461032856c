"""Compaction: a finished sweep's partition of many small files becomes one file, and
the partition swap that changes a partition's files in one atomic step.

A partition is rebuilt in a hidden staging directory beside it
(``.compact-sweep_id=<id>``, which the views' globs and done_cells never read), fsynced,
then exchanged with the live directory (Linux renameat2 RENAME_EXCHANGE): a reader sees
every old file or every new one, never both, never neither. Where directories cannot be
exchanged atomically nothing is changed.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import shutil
import threading
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path

from harness.errors import WarehouseInputError
from harness.files import fsync_dir
from harness.warehouse.disk import (
    check_writable,
    data_files,
    make_dirs,
    read_table,
    write_parquet_atomic,
)
from harness.warehouse.layout import Layout, is_part_file, part_file
from harness.warehouse.schema import arrow_schema, pa, pq
from harness.warehouse.stored import sweep_row

# A finished sweep partition with at least this many files is compacted into one file
# (measurements and environments): every finished sweep, however small, leaves one
# file per table, so a year of small sweeps does not pile up one file per cell.
COMPACT_MIN_FILES = 2
# Whoever swaps a partition (compaction, an environment replaced in a compacted
# partition) or writes a file beside one being swapped holds this lock: the sweep's host
# threads store their environments at the same time, and two swaps built from the same
# old partition, or a file written between one's listing and its swap, would lose a row.
SWAP_LOCK = threading.RLock()
COMPACTED = ("measurements", "environments")
_SORT_KEYS = {"measurements": ["env_id", "cell_id", "repeat"], "environments": ["env_id"]}

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange_dirs(a: Path, b: Path) -> bool:
    """Swap two directories in one atomic step (Linux renameat2 RENAME_EXCHANGE).

    False when this system or file system cannot (no renameat2, EINVAL, ENOSYS...):
    the caller then changes nothing.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(a))


def compact(layout: Layout, sweep_id: str, *, min_files: int = 2) -> dict[str, int]:
    """Merge a sweep's cell files, and its environment files, into one file each.

    Per table (measurements, environments) a partition holding at least
    ``min_files`` files becomes one ``part-<digest>.parquet`` with the same rows
    (sorted by env and cell). Returns the number of files merged per table (0: left
    as it was). Only for a sweep that no process is writing: the sweep calls it
    itself when it ends (set_sweep_status).

    The merged partition is built beside the live one, in a hidden directory the
    views' globs and done_cells never read (``.compact-sweep_id=<id>``), fsynced,
    then swapped with the live directory in one atomic step (renameat2
    RENAME_EXCHANGE): a reader sees every old file or the merged one, never both,
    never neither (a query that listed the old files just before the swap may fail
    to open one and must be run again; it never counts a row twice). A crash before
    the swap leaves the hidden directory with the merged file, after it the hidden
    directory with the old files: either is removed by the next compaction. Where
    directories cannot be swapped atomically nothing is changed.
    """
    check_writable(layout.root)
    sweep_row(layout, sweep_id)
    with SWAP_LOCK:
        merged: dict[str, int] = {}
        for table in COMPACTED:
            merged[table] = _compact_partition(layout, table, sweep_id, min_files)
        return merged


def _compact_partition(layout: Layout, table: str, sweep_id: str, min_files: int) -> int:
    """Merge one partition's files into one; the number of files merged (0: none)."""
    live = layout.partition(table, sweep_id)
    stale = layout.staging(table, sweep_id)
    if stale.exists():
        shutil.rmtree(stale)  # left by an interrupted compaction
    names = data_files(live)
    if len(names) < max(2, min_files):
        return 0
    schema = arrow_schema(table)
    parts = []
    for name in names:
        t = read_table(live / name)
        if t.schema.names != schema.names:
            return 0  # another schema version: leave the partition alone
        parts.append(t.cast(schema))
    rows = pa.concat_tables(parts).sort_by([(k, "ascending") for k in _SORT_KEYS[table]])
    digest = hashlib.sha1("\0".join(names).encode()).hexdigest()[:16]
    if swap_partition(layout, table, sweep_id, {part_file(digest): rows}, keep=()):
        return len(names)
    return 0


def swap_partition(layout: Layout, table: str, sweep_id: str, new: Mapping[str, pa.Table],
                   keep: Collection[str]) -> bool:
    """Make the partition hold exactly ``new`` (written) plus the files named in
    ``keep`` (hard-linked), in one atomic swap; False when the system cannot swap."""
    live = layout.partition(table, sweep_id)
    staging = layout.staging(table, sweep_id)
    if staging.exists():
        shutil.rmtree(staging)  # left by an interrupted compaction
    make_dirs(staging)
    try:
        for name in keep:
            os.link(live / name, staging / name)
        for name, rows in new.items():
            write_parquet_atomic(rows, staging / name, replace=False)
        fsync_dir(staging)
        if not exchange_dirs(staging, live):
            return False
        fsync_dir(live.parent)
        return True
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replace_compacted_env(layout: Layout, sweep_id: str, name: str, row: pa.Table) -> bool:
    """When the sweep's environments were compacted and hold this environment (a
    resumed sweep probes again), swap in a partition whose part file has the new
    row instead of the old one, so the environment is never listed twice; False when
    no part file holds it. ``name``: the environment's own file name (dropped, if
    any). The caller holds SWAP_LOCK."""
    live = layout.partition("environments", sweep_id)
    names = data_files(live)
    parts = [n for n in names if is_part_file(n)]
    if not parts:
        return False
    env_id, host, python = (row.column(c)[0].as_py() for c in ("env_id", "host", "python"))
    new: dict[str, pa.Table] = {}
    for part in parts:
        t = pq.read_table(live / part).cast(arrow_schema("environments"))
        if env_id:
            same = [e == env_id for e in t.column("env_id").to_pylist()]
        else:
            same = [e is None and h == host and p == python for e, h, p in zip(
                t.column("env_id").to_pylist(), t.column("host").to_pylist(),
                t.column("python").to_pylist(), strict=True)]
        if any(same):
            rest = t.filter(pa.array([not x for x in same]))
            new[part] = pa.concat_tables([rest, row]).sort_by([("env_id", "ascending")])
    if not new:
        return False
    digest = hashlib.sha1(("\0".join(sorted(new)) + str(datetime.now(UTC))).encode())
    renamed = {part_file(digest.hexdigest()[:16], i): t for i, t in enumerate(new.values())}
    keep = [n for n in names if n not in new and n != name]
    if not swap_partition(layout, "environments", sweep_id, renamed, keep=keep):
        raise WarehouseInputError(f"cannot replace environment {env_id or host} in the "
                                  f"compacted partition {live}")
    return True
