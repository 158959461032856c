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
    .views-<digest>.duckdb   the view cache: the views bound once; deleting it is safe

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

Schema versions and their history: :mod:`harness.warehouse.schema`.

The modules, in the order they import one another (each only those before it):

    schema    the tables' columns, statuses, schema version, Arrow schemas, rows -> table
    layout    the paths under ROOT and every file name, built and parsed in one place
    disk      file permissions, directories, Parquet/DuckDB files written whole, reading
    index     FileIndex: each data file's facts, read once
    stored    reading back what is stored: sweeps, done and unfinished cells, attempts
    compact   compaction and the atomic partition swap
    views     analysis/*.sql rewritten for a root, the view cache, warehouse.duckdb
    warm      the file index and view caches refreshed by whoever added or removed files
    check     every file verified (``harness check``), damaged ones moved to quarantine/
    store     writing a sweep: its row and status, environments, cells, attempts
    steps     change points in a series of sweeps (pure Python, imports nothing)
    changes   the ``changes`` table: the steps of every ``history_series`` row
    query     connections with the views, query/fetch, Answer, sql_error

:class:`Warehouse` (below) is the facade the rest of harness uses; it only delegates.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from harness.errors import WarehouseInputError
from harness.formatting import first_line
from harness.paths import VIEWS_SQL
from harness.warehouse import check as _check
from harness.warehouse import compact as _compact
from harness.warehouse import query as _query
from harness.warehouse import store, stored, views, warm
from harness.warehouse.compact import COMPACT_MIN_FILES
from harness.warehouse.disk import write_parquet_atomic
from harness.warehouse.index import FileFacts, FileIndex
from harness.warehouse.layout import (
    DB_NAME,
    INDEX_NAME,
    VIEW_CACHE_PREFIX,
    Layout,
    TableFiles,
)
from harness.warehouse.query import Answer, sql_error
from harness.warehouse.schema import (
    CELL_STATUSES,
    ENV_STATUSES,
    LAZY_SCHEMAS,
    SCHEMA_VERSION,
    SWEEP_STATUSES,
    TABLE_FIELDS,
    TABLES,
    LazyModule,
    lazy_schema,
)
from harness.warehouse.views import (
    VIEW_CACHE_ALIAS,
    VIEW_CACHES_KEPT,
    analysis_files,
    view_sql,
)

if TYPE_CHECKING:
    import pandas

__all__ = [
    "CELL_STATUSES", "COMPACT_MIN_FILES", "DB_NAME", "ENV_STATUSES", "INDEX_NAME",
    "SCHEMA_VERSION", "SWEEP_STATUSES", "TABLES", "TABLE_FIELDS", "VIEWS_SQL",
    "VIEW_CACHES_KEPT", "VIEW_CACHE_ALIAS", "VIEW_CACHE_PREFIX", "Answer", "FileFacts",
    "FileIndex", "LazyModule", "TableFiles", "Warehouse", "analysis_files", "first_line",
    "sql_error", "view_sql", "write_parquet_atomic", *LAZY_SCHEMAS,
]


def __getattr__(name: str) -> Any:
    """SWEEP_SCHEMA, ENVIRONMENT_SCHEMA, MEASUREMENT_SCHEMA, ATTEMPT_SCHEMA and
    TABLE_SCHEMAS (Arrow schemas), made when first asked for (pyarrow is imported then)."""
    return lazy_schema(name, __name__)


class Warehouse:
    """The Parquet warehouse under ``root`` and the DuckDB views over it.

    A facade: each method delegates to the module that does the work (store, compact,
    stored, views, query), passing this warehouse's :class:`Layout`.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise WarehouseInputError(f"results dir {self.root} is not a directory")
        self.layout = Layout(self.root)

    # ------------------------------------------------------------------ writes (store)

    def begin_sweep(self, sweep_id: str, *, started_at: datetime, harness_version: str,
                    inventory: str, profile: str, plan: Mapping[str, Any]) -> None:
        """Record a new sweep with status 'running'. An existing sweep id is refused."""
        store.begin_sweep(self.layout, sweep_id, started_at=started_at,
                          harness_version=harness_version, inventory=inventory,
                          profile=profile, plan=plan)

    def set_sweep_status(self, sweep_id: str, status: str,
                         finished_at: datetime | None = None) -> None:
        """Replace the sweep's row with a new status (and finish time); see
        :func:`store.set_sweep_status`."""
        store.set_sweep_status(self.layout, sweep_id, status, finished_at)

    def add_environment(self, sweep_id: str, env: Mapping[str, Any]) -> None:
        """Store one host x interpreter; a later call for the same env_id replaces it."""
        store.add_environment(self.layout, sweep_id, env)

    def add_cell(self, sweep_id: str, env_id: str, cell_id: str,
                 rows: Sequence[Mapping[str, Any]]) -> bool:
        """Store all rows of one finished cell in one file; False (nothing written)
        when that cell is already stored."""
        return store.add_cell(self.layout, sweep_id, env_id, cell_id, rows)

    def add_attempt(self, sweep_id: str, env_id: str, cell_id: str,
                    rows: Sequence[Mapping[str, Any]]) -> int:
        """Store the rows of an attempt at a cell the agent never finished; its number."""
        return store.add_attempt(self.layout, sweep_id, env_id, cell_id, rows)

    # ------------------------------------------------------------------ compaction

    def compact(self, sweep_id: str, *, min_files: int = 2) -> dict[str, int]:
        """Merge a sweep's cell files, and its environment files, into one file each;
        see :func:`harness.warehouse.compact.compact`. The readers' caches are then
        brought up to date (:meth:`warm`)."""
        merged = _compact.compact(self.layout, sweep_id, min_files=min_files)
        if any(merged.values()):
            warm.warm(self.layout, [sweep_id])
        return merged

    # ------------------------------------------------------------------ reads (stored)

    def has_environment(self, sweep_id: str, env_id: str) -> bool:
        """Whether an environments row for ``env_id`` is stored in the sweep."""
        return stored.has_environment(self.layout, sweep_id, env_id)

    def done_cells(self, sweep_id: str) -> set[tuple[str, str]]:
        """The (env_id, cell_id) pairs of the cells already stored for a sweep."""
        return stored.done_cells(self.layout, sweep_id)

    def unfinished_cells(self, sweep_id: str) -> set[tuple[str, str]]:
        """The (env_id, cell_id) pairs with an attempt but no stored result."""
        return stored.unfinished_cells(self.layout, sweep_id)

    def latest_attempts(self, sweep_id: str, env_id: str) -> dict[str, list[dict[str, Any]]]:
        """The rows of the latest attempt of each cell of one environment."""
        return stored.latest_attempts(self.layout, sweep_id, env_id)

    def sweep_ids(self, index: FileIndex | None = None) -> list[str]:
        """All sweep ids, oldest first (by started_at, then id). ``index``: a file index
        the caller built already (a command building it once for all its reads)."""
        return stored.sweep_ids(self.root, index)

    def latest_sweep_id(self) -> str | None:
        """The id of the sweep started last; None in an empty warehouse."""
        return stored.latest_sweep_id(self.root)

    def resolve_sweep_id(self, ref: str | None, index: FileIndex | None = None) -> str:
        """A stored sweep id from ``ref``: an id, a unique prefix of one, or 'latest'/None."""
        return stored.resolve_sweep_id(self.root, ref, index)

    def resolve_sweep_ids(self, refs: Sequence[str],
                          index: FileIndex | None = None) -> list[str]:
        """:meth:`resolve_sweep_id` of each ref, in order, without duplicates; with no
        ref, the latest sweep."""
        return stored.resolve_sweep_ids(self.root, refs, index)

    def index(self) -> FileIndex:
        """The data files of every table and their facts (see :class:`FileIndex`)."""
        return FileIndex(self.root)

    def check_schema(self) -> None:
        """Refuse (WarehouseInputError) a warehouse holding files of a newer schema."""
        stored.check_schema(self.root)

    # ------------------------------------------------------------------ views and queries

    def connect(self, sweep_ids: Collection[str] | None = None, *,
                for_sql: str | None = None,
                index: FileIndex | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with the views created over the current files
        (of these sweeps only, when given); see :func:`harness.warehouse.query.connect`."""
        return _query.connect(self.layout, sweep_ids, for_sql=for_sql, index=index)

    def query(self, sql: str, params: list[Any] | None = None) -> pandas.DataFrame:
        """Run one SQL statement over the views; a SQL error is a WarehouseInputError."""
        return _query.query(self.layout, sql, params)

    def fetch(self, sql: str, params: list[Any] | None = None, *,
              max_rows: int | None = None) -> Answer:
        """:meth:`query`'s answer as Python rows, without pandas; with ``max_rows`` only
        the first ``max_rows`` rows are kept and the rest are only counted."""
        return _query.fetch(self.layout, sql, params, max_rows=max_rows)

    # ------------------------------------------------------------------ check and repair

    def check(self) -> list[_check.Problem]:
        """Every problem of the warehouse's files (see :mod:`harness.warehouse.check`)."""
        if not self.root.is_dir():
            raise WarehouseInputError(f"no warehouse at {self.root}",
                                      hint="run `harness sweep` first, or pass --results")
        return _check.check(self.root)

    def repair(self, problems: Sequence[_check.Problem]) -> list[tuple[str, str]]:
        """Move the damaged files to ROOT/quarantine/, rebuild the index and the views;
        (from, to) of each move."""
        return _check.repair(self.root, problems)

    def warm(self, sweep_ids: Collection[str] = ()) -> None:
        """Bring the file index and the view caches up to date after files were added or
        removed, so the next reader pays for neither (best effort; see
        :func:`harness.warehouse.warm.warm`)."""
        warm.warm(self.layout, sweep_ids)

    def refresh_views(self) -> Path:
        """(Re)write ROOT/warehouse.duckdb holding the views; returns its path."""
        return views.refresh_views(self.layout)
