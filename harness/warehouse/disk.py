"""The warehouse's file-system primitives: files written whole, read with one error.

Every Parquet and DuckDB file the warehouse writes goes through
:func:`harness.files.atomic_path` (a hidden temp file beside the final one, renamed, or
linked so an existing file is never replaced), with the permissions a plain ``open``
would give under the process umask. Data files and ROOT/warehouse.duckdb are fsynced
(and their directory); caches are not.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb

from harness.errors import WarehouseInputError, WarehouseWarning
from harness.files import atomic_path, disk_full, fsync_dir, is_no_space
from harness.formatting import first_line
from harness.warehouse.layout import is_data_file
from harness.warehouse.schema import pa, pq


def umask() -> int:
    """The process umask, read without changing it (os.umask is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def file_mode() -> int:
    """The permission bits of a new file under the process umask."""
    return 0o666 & ~umask()


def make_dirs(directory: Path) -> None:
    """Create ``directory`` and parents, fsyncing each parent whose entries changed."""
    missing: list[Path] = []
    d = directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    for m in reversed(missing):
        with contextlib.suppress(FileExistsError):
            m.mkdir()
        fsync_dir(m.parent)


def check_writable(root: Path) -> None:
    """Refuse a results dir that is not a writable directory; create a missing one."""
    if root.exists():
        if not root.is_dir() or not os.access(root, os.W_OK | os.X_OK):
            raise WarehouseInputError(f"results dir {root} is not a writable directory")
        return
    try:
        make_dirs(root)
    except OSError as e:
        raise WarehouseInputError(f"cannot create results dir {root}: {e}") from e


def parquet_size_hint(table: pa.Table) -> int:
    """About the bytes ``table`` takes as a Parquet file: its size in memory (compression makes
    the data smaller) plus the footer, which grows with the columns (a one-row file is
    mostly footer)."""
    return int(table.nbytes) + 256 * table.num_columns


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """How every data file is encoded: zstd (its frames carry a magic number, so a
    damaged page fails to decode instead of reading as other values: LZ4 was 15% faster
    to write but read a damaged page silently); a dictionary for every column but the
    floating-point ones (a sample's times are all distinct: hashing them into a
    dictionary made the file bigger and the write slower); min/max statistics for every
    column but the strings (no reader prunes on them; the file index reads
    schema_version's). At 10k rows per file this writes about 1.5x as many rows per
    second as the defaults, in files 18% smaller (benchmarks/warehouse_scale.py)."""
    return {
        "compression": "zstd",
        "use_dictionary": [f.name for f in schema if not pa.types.is_floating(f.type)],
        "write_statistics": [f.name for f in schema
                             if not (pa.types.is_string(f.type)
                                     or pa.types.is_large_string(f.type))],
    }


def write_parquet_atomic(table: pa.Table, final: Path, *, replace: bool) -> bool:
    """Write ``table`` to ``final`` so the file is whole or absent (fsynced, and its
    directory, created when missing).

    With ``replace=False`` an existing file is left alone and False is returned. No
    room for it is :class:`~harness.errors.DiskFull` (see :func:`parquet_size_hint`).
    """
    try:
        make_dirs(final.parent)
    except OSError as e:
        if is_no_space(e):
            raise disk_full(final, 0, parquet_size_hint(table), e) from e
        raise
    try:
        with atomic_path(final, replace=replace, mode=file_mode(),
                         size_hint=parquet_size_hint(table)) as tmp:
            pq.write_table(table, tmp, **parquet_options(table.schema))
    except FileExistsError:
        if replace:
            raise
        return False
    return True


def write_duckdb_atomic(final: Path, fill: Callable[[duckdb.DuckDBPyConnection], None],
                        *, durable: bool) -> None:
    """Build a DuckDB database file with ``fill`` in a temp file beside ``final`` and
    rename it over ``final`` (a reader holding the old file open is not disturbed);
    ``durable``: fsync the file and the directory first. Nothing is left behind on error."""
    with atomic_path(final, fsync=durable, mode=file_mode()) as tmp:
        wal = Path(f"{tmp}.wal")
        try:
            tmp.unlink()  # duckdb wants to create the file itself
            con = duckdb.connect(str(tmp))
            try:
                fill(con)
                con.execute("CHECKPOINT")
            finally:
                con.close()
        finally:
            wal.unlink(missing_ok=True)


REPAIR_HINT = "`harness check --repair` moves it to quarantine/"
_warned: set[str] = set()  # the damaged files reported in this process (each once)
_warned_lock = threading.Lock()


def warn_damaged(path: Path, why: str) -> None:
    """Report, once per process, a data file a reader leaves out (a WarehouseWarning: the
    CLI prints it as one line)."""
    with _warned_lock:
        if str(path) in _warned:
            return
        _warned.add(str(path))
    why = "".join(c if c.isprintable() else "?" for c in why)  # a library's raw bytes
    warnings.warn(WarehouseWarning(f"{path}: {why}; left out ({REPAIR_HINT})"), stacklevel=3)


def read_table(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """A data file's rows (only ``columns`` when given); an unreadable file is a
    WarehouseInputError."""
    try:
        return pq.read_table(path, columns=None if columns is None else list(columns))
    except (OSError, pa.ArrowException) as e:
        raise WarehouseInputError(f"cannot read {path}: {first_line(e).rstrip('.')}",
                                  hint=REPAIR_HINT) from e


def read_sound(path: Path, columns: Sequence[str] | None = None) -> pa.Table | None:
    """:func:`read_table`, but a file that cannot be read (or lacks ``columns``) is left
    out with a warning (None); a file gone since it was listed is None too."""
    try:
        return pq.read_table(path, columns=None if columns is None else list(columns))
    except FileNotFoundError:
        return None
    except (OSError, pa.ArrowException) as e:
        warn_damaged(path, f"cannot read it: {first_line(e).rstrip('.')}")
        return None


def data_files(directory: Path) -> list[str]:
    """The data files of one partition (hidden temp files excluded), sorted."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if is_data_file(n))


def table_rows(table: pa.Table, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """``columns`` of every row of ``table``, as tuples."""
    return list(zip(*(table.column(c).to_pylist() for c in columns), strict=True))
