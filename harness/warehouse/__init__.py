"""The result warehouse: Parquet files, hive-partitioned by sweep, and DuckDB views.

Layout under ROOT (``sweep_id`` lives only in the directory name)::

    sweeps/sweep_id=<id>/sweep.parquet                          one row, replaced on status change
    environments/sweep_id=<id>/env-<env_id>.parquet             one row per host x interpreter
    measurements/sweep_id=<id>/cell-<env_id>-<cell_id>.parquet  the rows of one finished cell
    attempts/sweep_id=<id>/attempt-<env_id>-<cell_id>-<n>.parquet
                                 an attempt the agent never finished (host lost, agent
                                 killed, interrupted): not a result, so --resume runs the
                                 cell again; the ``measurements`` view shows the latest
                                 attempt of a cell that has no cell file
    warehouse.duckdb                                            views only; deleting it is safe
    .file-index.json     what readers learnt of each data file (rows, columns, schema
                         versions, a sweep's start), keyed by inode, size and mtime; a
                         cache, deleting it is safe (see FileIndex)

When a sweep ends ('complete' or 'failed') with at least COMPACT_MIN_FILES files in its
measurements or environments partition, :meth:`Warehouse.compact` merges them into one
``part-<digest>.parquet`` (rows sorted by env and cell), so no sweep, small or large,
leaves a file per cell: every reader pays for each file it opens. A cell or an
environment in a part file is stored exactly as one in its own file (done_cells,
has_environment, add_cell, add_environment all look in both).

Every file is written to a hidden temp file in the same directory, fsynced, renamed
(a cell file is linked, so an existing one is never replaced) and the directory fsynced:
a file is whole or absent. Every file carries ``schema_version``; a file written by a
newer harness makes the warehouse refuse to answer (WarehouseInputError). Readers learn
each file's version once (FileIndex) and, in harness's own connections, read an explicit
file list (from the index) rather than a glob, so a thousand sweeps' files are listed
once per connection and never re-listed at each view bind.

The views are defined in ``analysis/views.sql``, written for the DuckDB shell with paths
``'results/<table>/...'``; :func:`view_sql` rewrites those to the real root and replaces
the reader of a table that has no file yet by a typed empty relation.

Schema version history:
    1  first version.
    2  measurements and attempts gain ``block``, ``block_pos``, ``block_group`` (the
       interleaved block a timed repeat ran in, its position in the block, and the group of
       cells that share a baseline) and ``probe_s`` (the speed probe timed just before the
       repeat). Version 1 files read back with those columns NULL.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import importlib
import json
import math
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, unquote

import duckdb

from harness.errors import WarehouseInputError

if TYPE_CHECKING:
    import pandas
    import pyarrow as pa
    import pyarrow.parquet as pq


class LazyModule:
    """A module imported when one of its attributes is first used."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


if not TYPE_CHECKING:
    pa = LazyModule("pyarrow")
    pq = LazyModule("pyarrow.parquet")

SCHEMA_VERSION = 2

SWEEP_STATUSES = ("running", "interrupted", "complete", "failed")
# ok: probed and every planned cell ran; incomplete: probed, then the host or agent
# failed part-way (error says why; --resume runs the rest); failed: never probed.
ENV_STATUSES = ("ok", "incomplete", "failed")
CELL_STATUSES = ("ok", "failed", "not_applicable", "timeout")

VIEWS_SQL = Path(__file__).resolve().parent.parent / "analysis" / "views.sql"
DB_NAME = "warehouse.duckdb"

# The columns of each table and their DuckDB types (the Parquet files hold the matching
# Arrow types, see _arrow_schema). Plain names, so a reader that only queries needs no
# pyarrow (importing it, with numpy, is a fifth of a second of every command).
_SWEEP_FIELDS: tuple[tuple[str, str], ...] = (
    ("started_at", "TIMESTAMPTZ"),
    ("finished_at", "TIMESTAMPTZ"),
    ("status", "VARCHAR"),
    ("harness_version", "VARCHAR"),
    ("inventory", "VARCHAR"),
    ("profile", "VARCHAR"),
    ("plan", "VARCHAR"),
    ("schema_version", "INTEGER"),
)

_ENVIRONMENT_FIELDS: tuple[tuple[str, str], ...] = (
    ("host", "VARCHAR"),
    ("python", "VARCHAR"),
    ("env_id", "VARCHAR"),
    ("profile_id", "VARCHAR"),
    ("hostname", "VARCHAR"),
    ("os", "VARCHAR"),
    ("kernel", "VARCHAR"),
    ("arch", "VARCHAR"),
    ("cpu_model", "VARCHAR"),
    ("logical_cpus", "BIGINT"),
    ("physical_cores", "BIGINT"),
    ("usable_cpus", "BIGINT"),
    ("numa_nodes", "BIGINT"),
    ("numa_cpus", "VARCHAR"),
    ("mem_total_bytes", "BIGINT"),
    ("python_version", "VARCHAR"),
    ("implementation", "VARCHAR"),
    ("free_threaded", "BOOLEAN"),
    ("gil_enabled", "BOOLEAN"),
    ("executable", "VARCHAR"),
    ("machine_id", "VARCHAR"),
    ("boot_id", "VARCHAR"),
    ("status", "VARCHAR"),
    ("error", "VARCHAR"),
    ("probe", "VARCHAR"),
    ("schema_version", "INTEGER"),
)

_MEASUREMENT_FIELDS: tuple[tuple[str, str], ...] = (
    ("env_id", "VARCHAR"),
    ("cell_id", "VARCHAR"),
    ("cell_key", "VARCHAR"),
    ("workload", "VARCHAR"),
    ("params", "VARCHAR"),
    ("model", "VARCHAR"),
    ("workers", "BIGINT"),
    ("repeat", "BIGINT"),
    ("warmup", "BOOLEAN"),
    ("headline", "BOOLEAN"),
    ("wall_s", "DOUBLE"),
    ("cpu_user_s", "DOUBLE"),
    ("cpu_sys_s", "DOUBLE"),
    ("peak_rss_bytes", "BIGINT"),
    ("ok", "BOOLEAN"),
    ("error", "VARCHAR"),
    ("status", "VARCHAR"),
    ("extra", "VARCHAR"),
    ("block", "BIGINT"),
    ("block_pos", "BIGINT"),
    ("block_group", "VARCHAR"),
    ("probe_s", "DOUBLE"),
    ("schema_version", "INTEGER"),
)
# The rows of one unfinished attempt: a cell's rows plus the attempt number (1, 2, ...).
_ATTEMPT_FIELDS = (*_MEASUREMENT_FIELDS[:-1], ("attempt", "BIGINT"), _MEASUREMENT_FIELDS[-1])

TABLE_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "sweeps": _SWEEP_FIELDS,
    "environments": _ENVIRONMENT_FIELDS,
    "measurements": _MEASUREMENT_FIELDS,
    "attempts": _ATTEMPT_FIELDS,
}
TABLES = tuple(TABLE_FIELDS)
_SCHEMA_NAMES = {"SWEEP_SCHEMA": "sweeps", "ENVIRONMENT_SCHEMA": "environments",
                 "MEASUREMENT_SCHEMA": "measurements", "ATTEMPT_SCHEMA": "attempts"}


@functools.cache
def _arrow_type(duckdb_type: str) -> pa.DataType:
    if duckdb_type == "TIMESTAMPTZ":
        return pa.timestamp("us", tz="UTC")
    return {"VARCHAR": pa.string, "BIGINT": pa.int64, "INTEGER": pa.int32,
            "DOUBLE": pa.float64, "BOOLEAN": pa.bool_}[duckdb_type]()


@functools.cache
def _arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a table's files."""
    return pa.schema([(name, _arrow_type(t)) for name, t in TABLE_FIELDS[table]])


def __getattr__(name: str) -> Any:
    """SWEEP_SCHEMA, ENVIRONMENT_SCHEMA, MEASUREMENT_SCHEMA, ATTEMPT_SCHEMA and
    TABLE_SCHEMAS (Arrow schemas), made when first asked for (pyarrow is imported then)."""
    if name in _SCHEMA_NAMES:
        return _arrow_schema(_SCHEMA_NAMES[name])
    if name == "TABLE_SCHEMAS":
        return {t: _arrow_schema(t) for t in TABLES}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_ATTEMPTS_KEPT = 1000  # attempts of one cell at most (a bound, never reached in practice)

# A finished sweep partition with at least this many files is compacted into one file
# (measurements and environments): every finished sweep, however small, leaves one
# file per table, so a year of small sweeps does not pile up one file per cell.
COMPACT_MIN_FILES = 2
# Whoever swaps a partition (compaction, an environment replaced in a compacted
# partition) or writes a file beside one being swapped holds this lock: the sweep's host
# threads store their environments at the same time, and two swaps built from the same
# old partition, or a file written between one's listing and its swap, would lose a row.
_SWAP_LOCK = threading.RLock()
_COMPACTED = ("measurements", "environments")
_PART_PREFIX = "part-"
_SORT_KEYS = {"measurements": ["env_id", "cell_id", "repeat"], "environments": ["env_id"]}

# Columns stored as JSON text; a dict/list given for them is serialised.
_JSON_COLUMNS = frozenset({"plan", "numa_cpus", "probe", "params", "extra"})

_SWEEP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SAFE_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_."

@dataclass(frozen=True)
class Answer:
    """A query's answer as Python values: column names, DuckDB type names, rows, and
    how many rows the answer had (more than ``rows`` when it was capped; None when
    capped and the rest could not be counted)."""

    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    total: int | None

    @property
    def capped(self) -> bool:
        """Whether ``rows`` are only the first rows of the answer."""
        return self.total is None or self.total > len(self.rows)


_T = TypeVar("_T")


@dataclass(frozen=True)
class TableFiles:
    """Where one warehouse table lives and the glob its view reads."""

    name: str
    directory: Path

    @property
    def glob(self) -> str:
        return str(self.directory / "sweep_id=*" / "*.parquet")

    def has_files(self) -> bool:
        return next(self.directory.glob("sweep_id=*/*.parquet"), None) is not None


# --------------------------------------------------------------------------- helpers


def _umask() -> int:
    """The process umask, read without changing it (os.umask is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkdirs(directory: Path) -> None:
    """Create ``directory`` and parents, fsyncing each parent whose entries changed."""
    missing: list[Path] = []
    d = directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    for m in reversed(missing):
        with contextlib.suppress(FileExistsError):
            m.mkdir()
        _fsync_dir(m.parent)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange_dirs(a: Path, b: Path) -> bool:
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


def _parquet_names(directory: Path) -> list[str]:
    """The data files of one partition (hidden temp files excluded), sorted."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.endswith(".parquet") and not n.startswith("."))


def _part_rows(directory: Path, columns: list[str]) -> list[tuple[Any, ...]]:
    """``columns`` of every row of the partition's compacted part files."""
    found: list[tuple[Any, ...]] = []
    for name in _parquet_names(directory):
        if name.startswith(_PART_PREFIX):
            try:
                t = pq.read_table(directory / name, columns=columns)
            except (OSError, pa.ArrowException) as e:
                raise WarehouseInputError(f"cannot read {directory / name}: {e}") from e
            found.extend(zip(*(t.column(c).to_pylist() for c in columns), strict=True))
    return found


def write_parquet_atomic(table: pa.Table, final: Path, *, replace: bool) -> bool:
    """Write ``table`` to ``final`` so the file is whole or absent.

    With ``replace=False`` an existing file is left alone and False is returned.
    """
    directory = final.parent
    _mkdirs(directory)
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            pq.write_table(table, f, compression="zstd")
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, final)
        else:
            try:
                os.link(tmp, final)  # atomic and never clobbers
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)
        _fsync_dir(directory)
        return True
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def first_line(error: BaseException) -> str:
    """An error's first line of text (its type's name when it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def sql_error(error: BaseException) -> WarehouseInputError:
    """A statement's DuckDB error as the one-line error users see."""
    return WarehouseInputError(f"SQL error: {first_line(error)}")


def _write_duckdb_atomic(final: Path, fill: Callable[[duckdb.DuckDBPyConnection], None],
                         *, durable: bool) -> None:
    """Build a DuckDB database file with ``fill`` in a temp file beside ``final`` and
    rename it over ``final`` (a reader holding the old file open is not disturbed);
    ``durable``: fsync the file and the directory first. Nothing is left behind on error."""
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=".tmp-", suffix=".duckdb")
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # duckdb wants to create the file itself
    try:
        con = duckdb.connect(str(tmp))
        try:
            fill(con)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.chmod(tmp, 0o666 & ~_umask())
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, final)
        if durable:
            _fsync_dir(final.parent)
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)


def _file_part(value: str) -> str:
    """An id made safe and unambiguous as part of a file name ('-' is the separator)."""
    # quote() never encodes '-', '_', '.', '~'; '-' must be, as it separates ids.
    return quote(value, safe=_SAFE_CHARS).replace("-", "%2D")


def _check_sweep_id(sweep_id: str) -> str:
    # all digits would make pandas/pyarrow read the partition column as a number
    if not isinstance(sweep_id, str) or not _SWEEP_ID_RE.match(sweep_id) or sweep_id.isdigit():
        raise WarehouseInputError(
            f"invalid sweep id {sweep_id!r}",
            hint="a sweep id is letters, digits, '_', '.' and '-', starting with a letter or "
            "digit, and not only digits",
        )
    return sweep_id


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise WarehouseInputError(f"expected a datetime, got {value!r}")
    if value.tzinfo is None:  # naive times are taken as UTC
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None  # a missing number stays missing, never 0
    return value


def _to_table(
    rows: Sequence[Mapping[str, Any]], schema: pa.Schema, what: str, *, strict: bool = True
) -> pa.Table:
    """Rows -> a table of exactly ``schema``; wrong types are refused, and unknown
    columns too when ``strict`` (otherwise they are dropped)."""
    names = set(schema.names)
    records: list[dict[str, Any]] = []
    for row in rows:
        unknown = set(row) - names - {"sweep_id"}
        if unknown and strict:
            raise WarehouseInputError(f"{what}: unknown column(s) {sorted(unknown)}")
        version = row.get("schema_version")
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise WarehouseInputError(
                f"{what}: schema_version {version} was written by a newer harness",
                hint=f"this harness writes schema version {SCHEMA_VERSION}; upgrade harness",
            )
        rec: dict[str, Any] = {}
        for name in schema.names:
            value = _clean(row.get(name))
            if name in _JSON_COLUMNS:
                value = _json_text(value)
            elif pa.types.is_timestamp(schema.field(name).type):
                value = _utc(value)
            rec[name] = value
        rec["schema_version"] = SCHEMA_VERSION
        records.append(rec)
    try:
        return pa.Table.from_pylist(records, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as e:
        raise WarehouseInputError(f"{what}: a value does not fit the schema: {e}") from e


def _empty_relation(table: str) -> str:
    """A typed empty relation with the partition column, for a table with no file yet."""
    cols = ["CAST(NULL AS VARCHAR) AS sweep_id"]
    cols += [f'CAST(NULL AS {t}) AS "{name}"' for name, t in TABLE_FIELDS[table]]
    return "(SELECT " + ", ".join(cols) + " WHERE false)"


_DEFINED_RE = re.compile(r"CREATE\s+OR\s+REPLACE\s+(?:VIEW|MACRO|TABLE)\s+(\w+)", re.I)
_READER_RE = re.compile(r"read_parquet\(\s*'results/(\w+)/[^']*'[^()]*\)", re.S)


def analysis_files() -> list[Path]:
    """The analysis/*.sql files loaded after views.sql, in name order."""
    return sorted(p for p in VIEWS_SQL.parent.glob("*.sql") if p.name != VIEWS_SQL.name)


def view_sql(root: str | Path, sql: str | None = None, *,
             uniform: Collection[str] = (),
             listed: Mapping[str, Sequence[str]] | None = None) -> str:
    """analysis/views.sql with its ``results/`` paths pointing at ``root``.

    The reader of a table without any file becomes a typed empty relation, so the
    views answer (with no rows) on an empty warehouse. The readers of the tables named
    in ``uniform`` (every file of one schema version, so of the same columns) drop
    ``union_by_name``: with it DuckDB opens every file of the table each time a view
    over it is bound, which costs seconds with thousands of files.

    With ``listed`` (table -> its files) a table's reader reads exactly those files,
    from the DuckDB variable ``harness_files_<table>`` (set by :meth:`Warehouse.connect`)
    instead of a glob: DuckDB lists every partition directory each time a view over a
    glob is bound, and the analysis views bind the base readers hundreds of times. A
    table with no listed file becomes the typed empty relation.
    """
    root = Path(root).resolve()
    if sql is None:
        try:
            sql = VIEWS_SQL.read_text(encoding="utf-8")
        except OSError as e:
            raise WarehouseInputError(
                f"cannot read the view definitions {VIEWS_SQL}: {e.strerror}",
                hint="harness needs its analysis/ directory beside the package",
            ) from e
    text = sql

    def reader(match: re.Match[str]) -> str:
        table = match.group(1)
        if listed is not None and table in TABLE_FIELDS:
            if not listed.get(table):
                return _empty_relation(table)
            text = re.sub(r"'results/[^']*'", f"getvariable('{_files_variable(table)}')",
                          match.group(0), count=1)
        else:
            files = TableFiles(table, root / table)
            if table in TABLE_FIELDS and not files.has_files():
                return _empty_relation(table)
            prefix = str(root).replace("'", "''")
            text = match.group(0).replace("'results/", f"'{prefix}/", 1)
        if table in uniform:
            text = re.sub(r"union_by_name\s*=\s*true", "union_by_name = false", text)
        return text

    return _READER_RE.sub(reader, text)


def _files_variable(table: str) -> str:
    return f"harness_files_{table}"


# --------------------------------------------------------------------------- file index

INDEX_NAME = ".file-index.json"
VIEW_CACHE_PREFIX = ".views-"  # ROOT/.views-<digest>.duckdb: see Warehouse._attach_view_cache
VIEW_CACHE_ALIAS = "harness_views"
VIEW_CACHES_KEPT = 8
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


def _stat_key(st: os.stat_result) -> tuple[int, int, int]:
    """A file is known unchanged while its inode, size and mtime are: the warehouse never
    rewrites a file in place (a replaced file is a new inode, renamed over the old)."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _table_files(directory: Path) -> list[tuple[str, os.stat_result]]:
    """``(sweep_id=<id>/<name>, stat)`` of every data file of a table -- the files the
    glob ``sweep_id=*/*.parquet`` matches, hidden temp files excluded -- sorted."""
    found: list[tuple[str, os.stat_result]] = []
    try:
        parts = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for part in parts:
        if not part.name.startswith("sweep_id=") or not part.is_dir():
            continue
        try:
            entries = list(os.scandir(part.path))
        except (FileNotFoundError, NotADirectoryError):
            continue  # swapped away by a compaction just now
        for entry in entries:
            if entry.name.endswith(".parquet") and not entry.name.startswith("."):
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                found.append((f"{part.name}/{entry.name}", st))
    found.sort(key=lambda f: f[0])
    return found


def _read_facts(path: Path, table: str) -> FileFacts:
    """Open one file's footer: its rows, columns and schema versions (from the column
    statistics, or the column itself when a writer stored none)."""
    try:
        meta = pq.read_metadata(path)
        names = meta.schema.names
        rows = meta.num_rows
        lo = hi = None
        if rows and "schema_version" in names:
            col = names.index("schema_version")
            stats = [meta.row_group(g).column(col).statistics
                     for g in range(meta.num_row_groups)]
            if all(st is not None and st.has_min_max for st in stats):
                lo = min(int(st.min) for st in stats)
                hi = max(int(st.max) for st in stats)
            else:
                values = [v for v in pq.read_table(path, columns=["schema_version"])
                          .column(0).to_pylist() if v is not None]
                lo, hi = (min(values), max(values)) if values else (None, None)
        started = None
        if table == "sweeps" and rows and "started_at" in names:
            first = pq.read_table(path, columns=["started_at"]).column(0)[0].as_py()
            when = _utc(first) if isinstance(first, datetime) else None
            if when is not None:
                started = (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    except (OSError, pa.ArrowException, ValueError) as e:
        raise WarehouseInputError(f"cannot read {path}: {e}") from e
    digest = hashlib.sha1("\0".join(names).encode()).hexdigest()[:12]
    return FileFacts(rows, digest, lo, hi, started)


class FileIndex:
    """The data files of every table, with their facts, read once per file.

    Kept in ``ROOT/.file-index.json`` (a cache: deleting it is safe, a reader that
    cannot write it just does not keep it). Each use lists the partition directories
    (one stat per file) and opens only the files that are new or changed since the
    index was written, so the schema check and the sweep list cost no file open for
    the thousands of files of finished sweeps.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, list[tuple[str, FileFacts]]] = {}
        path = root / INDEX_NAME
        known: dict[str, list[Any]] = {}
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") == _INDEX_FORMAT:
                known = data["files"]
        fresh: dict[str, list[Any]] = {}
        changed = False
        for table in TABLES:
            listed: list[tuple[str, FileFacts]] = []
            for rel, st in _table_files(root / table):
                name = f"{table}/{rel}"
                key = _stat_key(st)
                entry = known.get(name)
                facts = None
                if isinstance(entry, list) and len(entry) == 8 and tuple(entry[:3]) == key:
                    with contextlib.suppress(TypeError, ValueError):
                        facts = FileFacts(int(entry[3]), str(entry[4]), entry[5], entry[6],
                                          entry[7])
                if facts is None:
                    try:
                        facts = _read_facts(root / name, table)
                    except WarehouseInputError:
                        if (root / name).exists():
                            raise
                        continue  # removed by a compaction since it was listed
                    changed = True
                fresh[name] = facts.to_json(key)
                listed.append((rel, facts))
            self.files[table] = listed
        if changed or len(fresh) != len(known):
            self._save(fresh)

    def _save(self, files: Mapping[str, list[Any]]) -> None:
        """Write the index atomically, best effort (a read-only warehouse keeps none)."""
        if not os.access(self.root, os.W_OK):
            return
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"format": _INDEX_FORMAT, "files": files}, f, separators=(",", ":"))
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, self.root / INDEX_NAME)
            tmp = None
        except OSError:
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

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
        want = None if sweep_ids is None else {f"sweep_id={s}" for s in sweep_ids}
        base = self.root / table
        return [(str(base / rel), f) for rel, f in self.files.get(table, []) if f.rows
                and (want is None or rel.split("/", 1)[0] in want)]

    def paths(self, table: str, sweep_ids: Collection[str] | None = None) -> list[str]:
        """The files of ``table`` holding rows (of the given sweeps only, when given)."""
        return [path for path, _ in self.entries(table, sweep_ids)]


# --------------------------------------------------------------------------- warehouse


class Warehouse:
    """The Parquet warehouse under ``root`` and the DuckDB views over it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise WarehouseInputError(f"results dir {self.root} is not a directory")
        self._tables = {name: TableFiles(name, self.root / name) for name in TABLES}

    # ------------------------------------------------------------------ paths

    def _partition(self, table: str, sweep_id: str) -> Path:
        return self._tables[table].directory / f"sweep_id={_check_sweep_id(sweep_id)}"

    def _sweep_file(self, sweep_id: str) -> Path:
        return self._partition("sweeps", sweep_id) / "sweep.parquet"

    def _check_writable(self) -> None:
        if self.root.exists():
            if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
                raise WarehouseInputError(f"results dir {self.root} is not a writable directory")
            return
        try:
            _mkdirs(self.root)
        except OSError as e:
            raise WarehouseInputError(f"cannot create results dir {self.root}: {e}") from e

    def _read_one(self, path: Path) -> dict[str, Any]:
        try:
            rows = pq.read_table(path).to_pylist()
        except (OSError, pa.ArrowException) as e:
            raise WarehouseInputError(f"cannot read {path}: {e}") from e
        if len(rows) != 1:
            raise WarehouseInputError(f"{path} holds {len(rows)} rows, expected 1")
        row = rows[0]
        if (row.get("schema_version") or 0) > SCHEMA_VERSION:
            raise WarehouseInputError(
                f"{path} was written by a newer harness "
                f"(schema {row['schema_version']} > {SCHEMA_VERSION})",
                hint="upgrade harness to read it",
            )
        return row

    def _sweep_row(self, sweep_id: str) -> dict[str, Any]:
        path = self._sweep_file(sweep_id)
        if not path.exists():
            raise WarehouseInputError(
                f"unknown sweep id {sweep_id!r} in {self.root}",
                hint="`harness sql \"SELECT sweep_id, status FROM sweeps\"` lists the sweeps",
            )
        return self._read_one(path)

    # ------------------------------------------------------------------ writes

    def begin_sweep(
        self,
        sweep_id: str,
        *,
        started_at: datetime,
        harness_version: str,
        inventory: str,
        profile: str,
        plan: Mapping[str, Any],
    ) -> None:
        """Record a new sweep with status 'running'. An existing sweep id is refused."""
        self._check_writable()
        path = self._sweep_file(sweep_id)
        if path.exists():
            raise WarehouseInputError(
                f"sweep {sweep_id!r} already exists in {self.root}",
                hint="resume it with --resume, or choose another sweep id",
            )
        row = {
            "started_at": started_at,
            "finished_at": None,
            "status": "running",
            "harness_version": harness_version,
            "inventory": inventory,
            "profile": profile,
            "plan": dict(plan),
        }
        table = _to_table([row], _arrow_schema("sweeps"), f"sweep {sweep_id}")
        # An empty attempts file, so analysis/views.sql run by hand finds the table.
        write_parquet_atomic(_arrow_schema("attempts").empty_table(),
                             self._partition("attempts", sweep_id) / "attempts-none.parquet",
                             replace=False)
        if not write_parquet_atomic(table, path, replace=False):
            raise WarehouseInputError(f"sweep {sweep_id!r} already exists in {self.root}")

    def set_sweep_status(
        self, sweep_id: str, status: str, finished_at: datetime | None = None
    ) -> None:
        """Replace the sweep's row with a new status (and finish time).

        When the sweep ends (any status but 'running') ROOT/warehouse.duckdb is
        refreshed too, best effort: it is a convenience copy of the views, and failing
        to write it must not fail a sweep whose data is stored.
        """
        if status not in SWEEP_STATUSES:
            raise WarehouseInputError(f"invalid sweep status {status!r}; one of {SWEEP_STATUSES}")
        self._check_writable()
        row = self._sweep_row(sweep_id)
        row["status"] = status
        row["finished_at"] = finished_at
        table = _to_table([row], _arrow_schema("sweeps"), f"sweep {sweep_id}")
        write_parquet_atomic(table, self._sweep_file(sweep_id), replace=True)
        if status in ("complete", "failed"):
            # best effort as well: a partition left uncompacted is still whole
            with contextlib.suppress(WarehouseInputError, OSError, pa.ArrowException):
                self.compact(sweep_id, min_files=COMPACT_MIN_FILES)
        if status != "running":
            with contextlib.suppress(WarehouseInputError, duckdb.Error, OSError):
                self.refresh_views()

    def _env_file(self, sweep_id: str, env_id: str) -> Path:
        return self._partition("environments", sweep_id) / f"env-{_file_part(env_id)}.parquet"

    def has_environment(self, sweep_id: str, env_id: str) -> bool:
        """Whether an environments row for ``env_id`` is stored in the sweep."""
        if self._env_file(sweep_id, env_id).exists():
            return True
        return (env_id,) in _part_rows(self._partition("environments", sweep_id), ["env_id"])

    def add_environment(self, sweep_id: str, env: Mapping[str, Any]) -> None:
        """Store one host x interpreter; a later call for the same env_id replaces it.

        Keys without a column (extra fingerprint facts) are dropped: the full
        fingerprint belongs in ``probe``. An unreachable host may come without env_id:
        its file is then named by a hash of host and python.
        """
        self._check_writable()
        self._sweep_row(sweep_id)
        status = env.get("status", "ok")
        if status not in ENV_STATUSES:
            raise WarehouseInputError(
                f"invalid environment status {status!r}; one of {ENV_STATUSES}"
            )
        env_id = env.get("env_id")
        if env_id:
            path = self._env_file(sweep_id, str(env_id))
        else:
            key = json.dumps([env.get("host"), env.get("python")]).encode()
            name = "unknown." + hashlib.sha1(key).hexdigest()[:16]
            path = self._partition("environments", sweep_id) / f"env-{name}.parquet"
        row = dict(env)
        row["status"] = status
        # Fingerprint facts without a column of their own stay in `probe` (full JSON).
        table = _to_table([row], _arrow_schema("environments"),
                          f"environment {env_id or env.get('host')}", strict=False)
        with _SWAP_LOCK:
            if self._replace_compacted_env(sweep_id, path.name, table):
                return
            write_parquet_atomic(table, path, replace=True)

    def _replace_compacted_env(self, sweep_id: str, name: str, row: pa.Table) -> bool:
        """When the sweep's environments were compacted and hold this environment (a
        resumed sweep probes again), swap in a partition whose part file has the new
        row instead of the old one, so the environment is never listed twice."""
        live = self._partition("environments", sweep_id)
        names = _parquet_names(live)
        parts = [n for n in names if n.startswith(_PART_PREFIX)]
        if not parts:
            return False
        env_id, host, python = (row.column(c)[0].as_py() for c in ("env_id", "host", "python"))
        new: dict[str, pa.Table] = {}
        hit = False
        for part in parts:
            t = pq.read_table(live / part).cast(_arrow_schema("environments"))
            if env_id:
                same = [e == env_id for e in t.column("env_id").to_pylist()]
            else:
                same = [e is None and h == host and p == python for e, h, p in zip(
                    t.column("env_id").to_pylist(), t.column("host").to_pylist(),
                    t.column("python").to_pylist(), strict=True)]
            if any(same):
                hit = True
                rest = t.filter(pa.array([not x for x in same]))
                new[part] = pa.concat_tables([rest, row]).sort_by([("env_id", "ascending")])
        if not hit:
            return False
        digest = hashlib.sha1(("\0".join(sorted(new)) + str(datetime.now(UTC))).encode())
        renamed = {f"{_PART_PREFIX}{digest.hexdigest()[:16]}-{i}.parquet": t
                   for i, t in enumerate(new.values())}
        keep = [n for n in names if n not in new and n != name]
        if not self._swap_partition("environments", sweep_id, renamed, keep=keep):
            raise WarehouseInputError(f"cannot replace environment {env_id or host} in the "
                                      f"compacted partition {live}")
        return True

    def add_cell(
        self, sweep_id: str, env_id: str, cell_id: str, rows: Sequence[Mapping[str, Any]]
    ) -> bool:
        """Store all rows of one finished cell in one file.

        Returns False (and writes nothing) when that cell is already stored, so a
        resumed sweep never duplicates rows.
        """
        fixed = self._cell_rows(sweep_id, env_id, cell_id, rows)
        table = _to_table(fixed, _arrow_schema("measurements"), f"cell {env_id}/{cell_id}")
        directory = self._partition("measurements", sweep_id)
        name = f"cell-{_file_part(env_id)}-{_file_part(cell_id)}.parquet"
        with _SWAP_LOCK:  # not between a compaction's listing and its swap
            if (env_id, cell_id) in _part_rows(directory, ["env_id", "cell_id"]):
                return False  # stored, in the sweep's compacted file
            return write_parquet_atomic(table, directory / name, replace=False)

    def _cell_rows(
        self, sweep_id: str, env_id: str, cell_id: str, rows: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        if not env_id or not cell_id:
            raise WarehouseInputError("add_cell needs an env_id and a cell_id")
        if not rows:
            raise WarehouseInputError(f"cell {env_id}/{cell_id}: no rows (a cell has at least one)")
        self._check_writable()
        self._sweep_row(sweep_id)
        fixed: list[dict[str, Any]] = []
        for row in rows:
            for key, want in (("env_id", env_id), ("cell_id", cell_id)):
                if row.get(key) not in (None, want):
                    raise WarehouseInputError(
                        f"cell {env_id}/{cell_id}: a row has {key}={row.get(key)!r}"
                    )
            status = row.get("status")
            if status is not None and status not in CELL_STATUSES:
                raise WarehouseInputError(f"cell {env_id}/{cell_id}: invalid status {status!r}")
            r = dict(row)
            r["env_id"], r["cell_id"] = env_id, cell_id
            fixed.append(r)
        return fixed

    def add_attempt(
        self, sweep_id: str, env_id: str, cell_id: str, rows: Sequence[Mapping[str, Any]]
    ) -> int:
        """Store the rows of an attempt at a cell that the agent never finished.

        An attempt is not a result: :meth:`done_cells` ignores it, so a resumed sweep
        runs the cell again. Each attempt is a new file (never rewritten); returns its
        number (1, 2, ...).
        """
        fixed = self._cell_rows(sweep_id, env_id, cell_id, rows)
        directory = self._partition("attempts", sweep_id)
        stem = f"attempt-{_file_part(env_id)}-{_file_part(cell_id)}-"
        taken = set(os.listdir(directory)) if directory.is_dir() else set()
        for number in range(1, _ATTEMPTS_KEPT + 1):
            name = f"{stem}{number:03d}.parquet"
            if name in taken:
                continue
            table = _to_table([{**r, "attempt": number} for r in fixed],
                              _arrow_schema("attempts"),
                              f"attempt {env_id}/{cell_id}")
            if write_parquet_atomic(table, directory / name, replace=False):
                return number
        raise WarehouseInputError(f"cell {env_id}/{cell_id}: more than {_ATTEMPTS_KEPT} attempts")

    # ------------------------------------------------------------------ compaction

    def compact(self, sweep_id: str, *, min_files: int = 2) -> dict[str, int]:
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
        self._check_writable()
        self._sweep_row(sweep_id)
        with _SWAP_LOCK:
            return self._compact(sweep_id, min_files)

    def _compact(self, sweep_id: str, min_files: int) -> dict[str, int]:
        merged: dict[str, int] = {}
        for table in _COMPACTED:
            live = self._partition(table, sweep_id)
            stale = live.parent / f".compact-{live.name}"
            if stale.exists():
                shutil.rmtree(stale)  # left by an interrupted compaction
            names = _parquet_names(live)
            merged[table] = 0
            if len(names) < max(2, min_files):
                continue
            schema = _arrow_schema(table)
            parts = []
            for name in names:
                try:
                    t = pq.read_table(live / name)
                except (OSError, pa.ArrowException) as e:
                    raise WarehouseInputError(f"cannot read {live / name}: {e}") from e
                if t.schema.names != schema.names:
                    break  # another schema version: leave the partition alone
                parts.append(t.cast(schema))
            else:
                rows = pa.concat_tables(parts).sort_by([(k, "ascending")
                                                        for k in _SORT_KEYS[table]])
                digest = hashlib.sha1("\0".join(names).encode()).hexdigest()[:16]
                if self._swap_partition(table, sweep_id, {f"{_PART_PREFIX}{digest}.parquet":
                                                          rows}, keep=()):
                    merged[table] = len(names)
        return merged

    def _swap_partition(self, table: str, sweep_id: str, new: Mapping[str, pa.Table],
                        keep: Collection[str]) -> bool:
        """Make the partition hold exactly ``new`` (written) plus the files named in
        ``keep`` (hard-linked), in one atomic swap; False when the system cannot swap."""
        live = self._partition(table, sweep_id)
        staging = live.parent / f".compact-{live.name}"
        if staging.exists():
            shutil.rmtree(staging)  # left by an interrupted compaction
        _mkdirs(staging)
        try:
            for name in keep:
                os.link(live / name, staging / name)
            for name, rows in new.items():
                write_parquet_atomic(rows, staging / name, replace=False)
            _fsync_dir(staging)
            if not _exchange_dirs(staging, live):
                return False
            _fsync_dir(live.parent)
            return True
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # ------------------------------------------------------------------ reads

    def done_cells(self, sweep_id: str) -> set[tuple[str, str]]:
        """The (env_id, cell_id) pairs of the cells already stored for a sweep."""
        self._sweep_row(sweep_id)
        directory = self._partition("measurements", sweep_id)
        done: set[tuple[str, str]] = set()
        if not directory.is_dir():
            return done
        # File names are unambiguous (the env part has no raw '-'), so listing the
        # directory is enough; no file is opened.
        for name in os.listdir(directory):
            if name.startswith("cell-") and name.endswith(".parquet"):
                env_part, sep, cell_part = name[len("cell-"):-len(".parquet")].partition("-")
                if sep:
                    done.add((unquote(env_part), unquote(cell_part)))
        # a compacted sweep: the cells of its part file(s)
        done.update(_part_rows(directory, ["env_id", "cell_id"]))  # type: ignore[arg-type]
        return done

    def unfinished_cells(self, sweep_id: str) -> set[tuple[str, str]]:
        """The (env_id, cell_id) pairs with an attempt but no stored result: --resume runs
        them."""
        directory = self._partition("attempts", sweep_id)
        tried: set[tuple[str, str]] = set()
        if directory.is_dir():
            for name in os.listdir(directory):
                if name.startswith("attempt-") and name.endswith(".parquet"):
                    env_part, _, rest = name[len("attempt-"):-len(".parquet")].partition("-")
                    cell_part = rest.rpartition("-")[0]
                    if cell_part:
                        tried.add((unquote(env_part), unquote(cell_part)))
        return tried - self.done_cells(sweep_id)

    def latest_attempts(self, sweep_id: str, env_id: str) -> dict[str, list[dict[str, Any]]]:
        """The rows of the latest attempt of each cell of one environment (cell_id ->
        rows, ``params`` and ``extra`` decoded), for a resumed sweep to keep the complete
        blocks an interrupted group had measured."""
        directory = self._partition("attempts", sweep_id)
        latest: dict[str, tuple[int, str]] = {}
        stem = f"attempt-{_file_part(env_id)}-"
        for name in _parquet_names(directory):
            if not name.startswith(stem):
                continue
            cell_part, _, number = name[len(stem):-len(".parquet")].rpartition("-")
            if cell_part and number.isdigit():
                cell_id = unquote(cell_part)
                if int(number) > latest.get(cell_id, (0, ""))[0]:
                    latest[cell_id] = (int(number), name)
        found: dict[str, list[dict[str, Any]]] = {}
        for cell_id, (_, name) in latest.items():
            try:
                rows = pq.read_table(directory / name).to_pylist()
            except (OSError, pa.ArrowException) as e:
                raise WarehouseInputError(f"cannot read {directory / name}: {e}") from e
            for row in rows:
                for key in ("params", "extra"):
                    row[key] = json.loads(row[key]) if row.get(key) else {}
            found[cell_id] = rows
        return found

    def sweep_ids(self, index: FileIndex | None = None) -> list[str]:
        """All sweep ids, oldest first (by started_at, then id). ``index``: a file index
        the caller built already (a command building it once for all its reads)."""
        found: list[tuple[int, str]] = []
        if self.root.is_dir():
            for rel, facts in (index or self.index()).files["sweeps"]:
                part, _, name = rel.partition("/")
                if name == "sweep.parquet":
                    when = facts.started_at if facts.started_at is not None else -(2**63)
                    found.append((when, part.split("=", 1)[1]))
        return [sweep_id for _, sweep_id in sorted(found)]

    def latest_sweep_id(self) -> str | None:
        ids = self.sweep_ids()
        return ids[-1] if ids else None

    def resolve_sweep_id(self, ref: str | None, index: FileIndex | None = None) -> str:
        """A stored sweep id from ``ref``: an id, a unique prefix of one, or 'latest'/None."""
        ids = self.sweep_ids(index)
        if not ids:
            what = "" if ref in (None, "latest") else f"unknown sweep id {ref!r}: "
            raise WarehouseInputError(f"{what}no sweep in {self.root}",
                                      hint="run `harness sweep` first")
        if ref is None or ref == "latest":
            return ids[-1]
        if ref in ids:
            return ref
        matches = [i for i in ids if i.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise WarehouseInputError(
                f"sweep id {ref!r} is ambiguous in {self.root}: {', '.join(matches[:5])}"
            )
        raise WarehouseInputError(
            f"unknown sweep id {ref!r} in {self.root}",
            hint=f"the latest is {ids[-1]}; `harness sql \"SELECT * FROM sweeps\"` lists them",
        )

    def resolve_sweep_ids(self, refs: Sequence[str],
                          index: FileIndex | None = None) -> list[str]:
        """:meth:`resolve_sweep_id` of each ref, in order, without duplicates; with no
        ref, the latest sweep."""
        index = index or self.index()
        if not refs:
            return [self.resolve_sweep_id(None, index)]
        return list(dict.fromkeys(self.resolve_sweep_id(r, index) for r in refs))

    def index(self) -> FileIndex:
        """The data files of every table and their facts (see :class:`FileIndex`)."""
        return FileIndex(self.root)

    def check_schema(self) -> None:
        """Refuse (WarehouseInputError) a warehouse holding files of a newer schema."""
        if not self.root.is_dir():
            return
        self.index().check_versions()

    def _view_texts(self, uniform: Collection[str],
                    files: Mapping[str, Sequence[str]] | None) -> list[tuple[Path, str]]:
        """views.sql, then every other analysis/*.sql in name order, rewritten for this
        warehouse (see :func:`view_sql`)."""
        texts = [(VIEWS_SQL, view_sql(self.root, uniform=uniform, listed=files))]
        for path in analysis_files():
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as e:
                raise WarehouseInputError(f"cannot read {path}: {e.strerror}") from e
            texts.append((path, view_sql(self.root, text, uniform=uniform, listed=files)))
        return texts

    def _run_view_texts(self, con: duckdb.DuckDBPyConnection,
                        texts: Sequence[tuple[Path, str]]) -> None:
        for path, text in texts:
            try:
                con.execute(text)
            except duckdb.Error as e:
                if path == VIEWS_SQL:
                    raise WarehouseInputError(
                        f"cannot create the views over {self.root}: {e}") from e
                raise WarehouseInputError(
                    f"{path.name}: cannot create its views: {first_line(e)}") from e

    def _create_views(self, con: duckdb.DuckDBPyConnection, for_sql: str | None = None, *,
                      listed: bool = True, sweep_ids: Collection[str] | None = None,
                      cached: bool = True, index: FileIndex | None = None) -> None:
        """views.sql first, then every other analysis/*.sql in name order (each file
        builds on views.sql and on the files before it; all are CREATE OR REPLACE).

        ``listed``: the readers read the files listed now (DuckDB variables
        ``harness_files_<table>``), not a glob; ``sweep_ids`` limits those lists to the
        partitions of these sweeps. Not listed: the globs (for warehouse.duckdb, which
        must see the files of later sweeps).

        Listed views come from the view cache when it can be used (``cached``; see
        :meth:`_attach_view_cache`): creating a view binds its query, and the analysis
        views cost 0.3 s to several seconds to bind, every time. Without the cache, with
        ``for_sql`` the analysis files after the last one defining a name that
        ``for_sql`` mentions are skipped.
        """
        index = index or self.index()
        uniform = index.check_versions()
        files: dict[str, list[str]] | None = None
        if listed:
            files = {t: index.paths(t, sweep_ids) for t in TABLES}
            for table, paths in files.items():
                if paths:
                    con.execute(f"SET VARIABLE {_files_variable(table)} = ?::VARCHAR[]",
                                [paths])
        texts = self._view_texts(uniform, files)
        if files is not None and cached:
            # One file of each column layout per table: the views bound over these have
            # the types they have over all the files (union_by_name adds no column a
            # layout does not bring), and binding them costs no time per file.
            samples: dict[tuple[Any, ...], str] = {}
            for t in TABLES:
                for path, f in index.entries(t, sweep_ids):
                    samples.setdefault((t, f.columns, f.min_version, f.max_version), path)
            layouts = sorted(samples, key=repr)
            some = {t: [samples[k] for k in layouts if k[0] == t] for t in TABLES}
            if self._attach_view_cache(con, texts, some, layouts):
                return
        if for_sql is not None:
            words = {w.lower() for w in re.findall(r"\w+", for_sql)}
            last = 0
            for i, (_, text) in enumerate(texts):
                if words & {n.lower() for n in _DEFINED_RE.findall(text)}:
                    last = i
            texts = texts[:last + 1]
        self._run_view_texts(con, texts)

    def _attach_view_cache(self, con: duckdb.DuckDBPyConnection,
                           texts: Sequence[tuple[Path, str]],
                           files: Mapping[str, Sequence[str]],
                           layouts: Sequence[tuple[Any, ...]]) -> bool:
        """Attach (read-only) a DuckDB file holding ``texts``' views, created before
        (over ``files``: a file of each of the ``layouts``) when it is missing.

        The view cache ``ROOT/.views-<digest>.duckdb``: a database holding only the
        views, macros and their bound column types, built once in a temp file and
        renamed; the digest covers everything the views depend on (DuckDB's version,
        the SQL as rewritten for this warehouse, with its empty tables and
        union_by_name choices, and the column layouts of the files read), so a changed
        analysis file or schema is a new cache file, never a stale view. The readers
        take their files from the connection's variables, so new sweeps need no new
        cache. Opening it costs milliseconds; creating the views costs the binds.
        Deleting the files is safe. False (nothing attached) when the warehouse is not
        writable or the cache cannot be built; the caller then creates the views.
        """
        digest = hashlib.sha1(duckdb.__version__.encode())
        for path, text in texts:
            digest.update(f"\0{path.name}\0{text}".encode())
        digest.update(repr(list(layouts)).encode())
        cache = self.root / f"{VIEW_CACHE_PREFIX}{digest.hexdigest()[:16]}.duckdb"
        if not cache.is_file():
            if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
                return False
            if not self._build_view_cache(cache, texts, files):
                return False
        quoted = str(cache).replace("'", "''")
        try:
            con.execute(f"ATTACH '{quoted}' AS {VIEW_CACHE_ALIAS} (READ_ONLY)")
            (home,) = con.execute("SELECT current_database()").fetchone() or ("memory",)
            con.execute(f"SET search_path = '{home}.main,{VIEW_CACHE_ALIAS}.main'")
        except duckdb.Error:
            with contextlib.suppress(duckdb.Error):
                con.execute(f"DETACH {VIEW_CACHE_ALIAS}")
            return False
        return True

    def _build_view_cache(self, cache: Path, texts: Sequence[tuple[Path, str]],
                          files: Mapping[str, Sequence[str]]) -> bool:
        """Create every view in a temp DuckDB file and rename it to ``cache``; drop the
        oldest cache files beyond VIEW_CACHES_KEPT. A view that cannot be created is
        the usual WarehouseInputError; a file system error is False."""
        def fill(build: duckdb.DuckDBPyConnection) -> None:
            for table, paths in files.items():
                if paths:
                    build.execute(f"SET VARIABLE {_files_variable(table)} = ?::VARCHAR[]",
                                  [list(paths)])
            self._run_view_texts(build, texts)

        try:
            _write_duckdb_atomic(cache, fill, durable=False)
        except (OSError, duckdb.Error):
            return False
        with contextlib.suppress(OSError):
            caches = sorted(self.root.glob(f"{VIEW_CACHE_PREFIX}*.duckdb"),
                            key=lambda p: p.stat().st_mtime_ns, reverse=True)
            for old in caches[VIEW_CACHES_KEPT:]:
                old.unlink(missing_ok=True)
        return True

    def connect(self, sweep_ids: Collection[str] | None = None, *,
                for_sql: str | None = None,
                index: FileIndex | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with the views created over the current files.

        Nothing is kept open or locked between calls; the views only read Parquet. The
        views read the files present now (a sweep stored later is not seen; a file
        compacted away later fails to open: connect again). With ``sweep_ids`` they
        read only the partitions of those sweeps (every other sweep is absent from
        every view): binding a view then costs nothing per other sweep. ``for_sql``:
        see :meth:`query`. ``index``: see :meth:`sweep_ids`.
        """
        con = duckdb.connect(":memory:")
        try:
            self._create_views(con, for_sql, sweep_ids=sweep_ids, index=index)
        except BaseException:
            con.close()
            raise
        return con

    def query(self, sql: str, params: list[Any] | None = None) -> pandas.DataFrame:
        """Run one SQL statement over the views; a SQL error is a WarehouseInputError.

        The views come from the view cache, or (without it) only the analysis files up
        to the last one defining a name the statement mentions are loaded (views.sql
        always)."""
        return self._run(sql, params, lambda res: res.fetchdf())

    def fetch(self, sql: str, params: list[Any] | None = None, *,
              max_rows: int | None = None) -> Answer:
        """:meth:`query`'s answer as Python rows, without pandas (cheaper to import and
        to format). With ``max_rows`` only the first ``max_rows`` rows are kept and the
        rest are only counted (``Answer.total``)."""
        def consume(res: duckdb.DuckDBPyConnection) -> Answer:
            desc = res.description or []
            columns = [str(d[0]) for d in desc]
            types = [str(d[1]) for d in desc]
            if max_rows is None:
                rows = res.fetchall()
                return Answer(columns, types, rows, len(rows))
            rows = res.fetchmany(max_rows + 1)
            if len(rows) <= max_rows:
                return Answer(columns, types, rows, len(rows))
            # The rest is only counted: DuckDB answers count(*) over the statement
            # without producing its columns (fetching them to count costs seconds).
            try:
                (total,) = res.execute(f"SELECT count(*) FROM ({sql.strip().rstrip(';')})",
                                       params or []).fetchone() or (None,)
            except duckdb.Error:
                total = None
            return Answer(columns, types, rows[:max_rows], total)

        if max_rows is not None and max_rows < 0:
            raise ValueError("max_rows must be >= 0")
        return self._run(sql, params, consume)

    def _run(self, sql: str, params: list[Any] | None,
             consume: Callable[[duckdb.DuckDBPyConnection], _T]) -> _T:
        for cached in (True, False):
            con = duckdb.connect(":memory:")
            try:
                self._create_views(con, for_sql=sql, cached=cached)
                try:
                    return consume(con.execute(sql, params or []))
                except duckdb.Error as e:
                    if cached and "view were altered" in str(e):
                        continue  # a cached view's types no longer match: create them anew
                    raise sql_error(e) from e
            finally:
                con.close()
        raise AssertionError("unreachable")

    def refresh_views(self) -> Path:
        """(Re)write ROOT/warehouse.duckdb holding the views; returns its path.

        Built in a temp file and renamed over the old one, so a reader holding the old
        file open is not disturbed and the database is never locked afterwards. The
        views of a table that had no file yet are empty until the next refresh.
        """
        self._check_writable()
        final = self.root / DB_NAME
        _write_duckdb_atomic(final, lambda con: self._create_views(con, listed=False),
                             durable=True)
        return final
