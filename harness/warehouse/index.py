"""What readers learnt of each data file, kept so no file is opened twice.

:class:`FileIndex` lists every table's data files and knows, per file, its rows, its
columns, its schema versions and (sweep files) the sweep's start, from
``ROOT/.file-index.json`` for files unchanged since it was written (same inode, size
and mtime) and from the file's footer otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness.errors import DiskFull, WarehouseInputError
from harness.files import atomic_path
from harness.formatting import first_line
from harness.warehouse.disk import REPAIR_HINT, file_mode, warn_damaged
from harness.warehouse.layout import (
    INDEX_NAME,
    SWEEP_FILE,
    is_data_file,
    parse_partition_name,
    partition_name,
)
from harness.warehouse.schema import SCHEMA_VERSION, TABLE_FIELDS, TABLES, pa, pq, utc

_INDEX_FORMAT = 1


@dataclass(frozen=True)
class FileFacts:
    """What a reader needs to know of one data file without opening it again."""

    rows: int
    columns: str  # digest of the column names, in order
    min_version: int | None  # None: no row (or no schema_version column)
    max_version: int | None
    started_at: int | None = None  # sweep files: started_at in microseconds since the epoch

    def to_json(self, key: tuple[int, int, int]) -> list[Any]:
        return [*key, self.rows, self.columns, self.min_version, self.max_version,
                self.started_at]


def stat_key(st: os.stat_result) -> tuple[int, int, int]:
    """A file is known unchanged while its inode, size and mtime are: the warehouse never
    rewrites a file in place (a replaced file is a new inode, renamed over the old)."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def table_files(directory: Path) -> list[tuple[str, os.stat_result]]:
    """``(sweep_id=<id>/<name>, stat)`` of every data file of a table -- the files the
    glob ``sweep_id=*/*.parquet`` matches, hidden temp files excluded -- sorted."""
    found: list[tuple[str, os.stat_result]] = []
    try:
        parts = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for part in parts:
        if parse_partition_name(part.name) is None or not part.is_dir():
            continue
        try:
            entries = list(os.scandir(part.path))
        except (FileNotFoundError, NotADirectoryError):
            continue  # swapped away by a compaction just now
        for entry in entries:
            if is_data_file(entry.name):
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                found.append((f"{part.name}/{entry.name}", st))
    found.sort(key=lambda f: f[0])
    return found


def _version_range(path: Path, meta: Any) -> tuple[int | None, int | None]:
    """The smallest and largest schema_version of a file with rows (from the column
    statistics, or the column itself when a writer stored none)."""
    names = meta.schema.names
    if not meta.num_rows or "schema_version" not in names:
        return None, None
    col = names.index("schema_version")
    stats = [meta.row_group(g).column(col).statistics for g in range(meta.num_row_groups)]
    if all(st is not None and st.has_min_max for st in stats):
        return min(int(st.min) for st in stats), max(int(st.max) for st in stats)
    values = [v for v in pq.read_table(path, columns=["schema_version"])
              .column(0).to_pylist() if v is not None]
    return (min(values), max(values)) if values else (None, None)


def foreign_columns(names: list[str], table: str, newest: int | None) -> str | None:
    """Why a file with these columns is not a file of ``table`` (None when it is): it has
    no schema_version, or (of a schema this harness knows) a column the table has not."""
    if "schema_version" not in names:
        return f"not a harness {table} file (no schema_version column)"
    if newest is not None and newest > SCHEMA_VERSION:
        return None  # a newer harness wrote it: check_versions refuses the warehouse
    known = {name for name, _ in TABLE_FIELDS[table]}
    extra = [n for n in names if n not in known]
    if extra:
        return (f"not a harness {table} file (column{'s' if len(extra) > 1 else ''} "
                f"{', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''})")
    return None


def read_facts(path: Path, table: str) -> FileFacts:
    """Open one file's footer: its rows, columns and schema versions. A file that cannot
    be read, or is not a file of ``table`` (:func:`foreign_columns`), is a
    WarehouseInputError naming it."""
    try:
        meta = pq.read_metadata(path)
        names = meta.schema.names
        rows = meta.num_rows
        lo, hi = _version_range(path, meta)
        foreign = foreign_columns(names, table, hi)
        if foreign:
            raise WarehouseInputError(f"{path}: {foreign}", hint=REPAIR_HINT)
        started = None
        if table == "sweeps" and rows and "started_at" in names:
            first = pq.read_table(path, columns=["started_at"]).column(0)[0].as_py()
            when = utc(first) if isinstance(first, datetime) else None
            if when is not None:
                started = (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    except (OSError, pa.ArrowException, ValueError) as e:
        raise WarehouseInputError(f"{path}: cannot read it: {first_line(e).rstrip('.')}",
                                  hint=REPAIR_HINT) from e
    digest = hashlib.sha1("\0".join(names).encode()).hexdigest()[:12]
    return FileFacts(rows, digest, lo, hi, started)


def _known_facts(entry: Any, key: tuple[int, int, int]) -> FileFacts | None:
    """The facts an index entry holds for a file of this stat key; None when the entry
    is missing, malformed or of another version of the file."""
    if isinstance(entry, list) and len(entry) == 8 and tuple(entry[:3]) == key:
        with contextlib.suppress(TypeError, ValueError):
            return FileFacts(int(entry[3]), str(entry[4]), entry[5], entry[6], entry[7])
    return None


class FileIndex:
    """The data files of every table, with their facts, read once per file.

    Kept in ``ROOT/.file-index.json`` (a cache: deleting it is safe, a reader that
    cannot write it just does not keep it). Each use lists the partition directories
    (one stat per file) and opens only the files that are new or changed since the
    index was written, so the schema check and the sweep list cost no file open for
    the thousands of files of finished sweeps.

    A file that cannot be read or is not a harness file of its table is left out of
    every listing, kept in ``damaged`` (its path under ROOT, why) and reported once as a
    :class:`~harness.errors.WarehouseWarning`; it is not remembered in the index, so it
    is looked at again until ``harness check --repair`` moves it aside.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, list[tuple[str, FileFacts]]] = {}
        self.damaged: list[tuple[str, str]] = []
        known: dict[str, list[Any]] = {}
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            data = json.loads((root / INDEX_NAME).read_text(encoding="utf-8"))
            if data.get("format") == _INDEX_FORMAT:
                known = data["files"]
        fresh: dict[str, list[Any]] = {}
        changed = False
        for table in TABLES:
            listed: list[tuple[str, FileFacts]] = []
            for rel, st in table_files(root / table):
                name = f"{table}/{rel}"
                key = stat_key(st)
                facts = _known_facts(known.get(name), key)
                if facts is None:
                    try:
                        facts = read_facts(root / name, table)
                    except WarehouseInputError as e:
                        if (root / name).exists():
                            self._damaged(name, e)
                        continue  # else removed by a compaction since it was listed
                    changed = True
                fresh[name] = facts.to_json(key)
                listed.append((rel, facts))
            self.files[table] = listed
        if changed or len(fresh) != len(known):
            self._save(fresh)

    def _damaged(self, name: str, error: WarehouseInputError) -> None:
        """Leave out a file that cannot be used, with a warning naming it."""
        why = error.message.removeprefix(f"{self.root / name}: ")
        self.damaged.append((name, why))
        warn_damaged(self.root / name, why)

    def drop_unreadable(self) -> list[str]:
        """Read every listed file's rows and leave out (with a warning) those that cannot
        be read: a file whose footer is sound but a data page is not (DuckDB then fails
        the whole query). Costs a read of every file: only for a query that failed.
        Returns the files left out (paths under ROOT)."""
        dropped: list[str] = []
        for table, listed in self.files.items():
            kept: list[tuple[str, FileFacts]] = []
            for rel, facts in listed:
                name = f"{table}/{rel}"
                try:
                    if facts.rows:
                        pq.read_table(self.root / name)
                except FileNotFoundError:
                    dropped.append(name)  # gone since it was listed (compacted away)
                    continue
                except (OSError, pa.ArrowException, ValueError) as e:
                    self._damaged(name, WarehouseInputError(
                        f"{self.root / name}: cannot read its rows: {first_line(e)}"))
                    dropped.append(name)
                    continue
                kept.append((rel, facts))
            self.files[table] = kept
        return dropped

    def _save(self, files: Mapping[str, list[Any]]) -> None:
        """Write the index atomically, best effort (a read-only warehouse keeps none);
        a cache, so not fsynced."""
        if not os.access(self.root, os.W_OK):
            return
        text = json.dumps({"format": _INDEX_FORMAT, "files": files}, separators=(",", ":"))
        with contextlib.suppress(OSError, DiskFull), \
                atomic_path(self.root / INDEX_NAME, fsync=False, mode=file_mode()) as tmp:
            tmp.write_text(text, encoding="utf-8")

    def check_versions(self) -> set[str]:
        """Refuse a newer schema; return the tables whose rows all share one column
        layout (their views need no union_by_name)."""
        uniform: set[str] = set()
        for table, listed in self.files.items():
            newest = max((f.max_version for _, f in listed if f.max_version is not None),
                         default=None)
            if newest is not None and newest > SCHEMA_VERSION:
                raise WarehouseInputError(
                    f"{self.root / table} holds data written by a newer harness "
                    f"(schema {newest} > {SCHEMA_VERSION})",
                    hint="upgrade harness to read it",
                )
            layouts = {(f.columns, f.min_version, f.max_version) for _, f in listed if f.rows}
            if len(layouts) <= 1 and all(lo == hi for _, lo, hi in layouts):
                uniform.add(table)
        return uniform

    def entries(self, table: str,
                sweep_ids: Collection[str] | None = None) -> list[tuple[str, FileFacts]]:
        """The path and facts of each file of ``table`` holding rows (of the given sweeps
        only, when given)."""
        want = None if sweep_ids is None else {partition_name(s) for s in sweep_ids}
        base = f"{self.root / table}{os.sep}"  # joined as text: thousands of files
        return [(base + rel, f) for rel, f in self.files.get(table, []) if f.rows
                and (want is None or rel[:rel.find("/")] in want)]

    def paths(self, table: str, sweep_ids: Collection[str] | None = None) -> list[str]:
        """The files of ``table`` holding rows (of the given sweeps only, when given)."""
        return [path for path, _ in self.entries(table, sweep_ids)]

    def sweeps(self) -> list[tuple[str, FileFacts]]:
        """(sweep id, facts) of every sweep file."""
        found: list[tuple[str, FileFacts]] = []
        for rel, facts in self.files.get("sweeps", []):
            part, _, name = rel.partition("/")
            sweep_id = parse_partition_name(part)
            if name == SWEEP_FILE and sweep_id is not None:
                found.append((sweep_id, facts))
        return found
