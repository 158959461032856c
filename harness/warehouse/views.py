"""The SQL views over the warehouse: analysis/*.sql rewritten for a root, created in a
connection, kept in the view cache, and written to ROOT/warehouse.duckdb.

The views are defined in ``analysis/views.sql`` (then every other ``analysis/*.sql`` in
name order), written for the DuckDB shell with paths ``'results/<table>/...'``;
:func:`view_sql` rewrites those to the real root and replaces the reader of a table
that has no file yet by a typed empty relation. In harness's own connections the
readers read an explicit file list (from the file index, in DuckDB variables) rather
than a glob, and the bound views come from the view cache (:func:`attach_view_cache`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from harness.errors import DiskFull, WarehouseInputError
from harness.formatting import first_line
from harness.paths import ANALYSIS_DIR, VIEWS_SQL
from harness.warehouse.disk import check_writable, write_duckdb_atomic
from harness.warehouse.index import FileIndex
from harness.warehouse.layout import VIEW_CACHE_GLOB, Layout, TableFiles
from harness.warehouse.schema import TABLE_FIELDS, TABLES, empty_relation

VIEW_CACHE_ALIAS = "harness_views"
VIEW_CACHES_KEPT = 8

DEFINED_RE = re.compile(r"CREATE\s+OR\s+REPLACE\s+(?:VIEW|MACRO|TABLE)\s+(\w+)", re.I)
_READER_RE = re.compile(r"read_parquet\(\s*'results/(\w+)/[^']*'[^()]*\)", re.S)

ViewTexts = Sequence[tuple[Path, str]]


def analysis_files() -> list[Path]:
    """The analysis/*.sql files loaded after views.sql, in name order."""
    return sorted(p for p in ANALYSIS_DIR.glob("*.sql") if p.name != VIEWS_SQL.name)


def files_variable(table: str) -> str:
    """The DuckDB variable listing a table's files in harness's connections."""
    return f"harness_files_{table}"


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

    def reader(match: re.Match[str]) -> str:
        table = match.group(1)
        if listed is not None and table in TABLE_FIELDS:
            if not listed.get(table):
                return empty_relation(table)
            text = re.sub(r"'results/[^']*'", f"getvariable('{files_variable(table)}')",
                          match.group(0), count=1)
        else:
            files = TableFiles(table, root / table)
            if table in TABLE_FIELDS and not files.has_files():
                return empty_relation(table)
            prefix = str(root).replace("'", "''")
            text = match.group(0).replace("'results/", f"'{prefix}/", 1)
        if table in uniform:
            text = re.sub(r"union_by_name\s*=\s*true", "union_by_name = false", text)
        return text

    return _READER_RE.sub(reader, sql)


def view_texts(root: Path, uniform: Collection[str],
               files: Mapping[str, Sequence[str]] | None) -> list[tuple[Path, str]]:
    """views.sql, then every other analysis/*.sql in name order, rewritten for this
    warehouse (see :func:`view_sql`)."""
    texts = [(VIEWS_SQL, view_sql(root, uniform=uniform, listed=files))]
    for path in analysis_files():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise WarehouseInputError(f"cannot read {path}: {e.strerror}") from e
        texts.append((path, view_sql(root, text, uniform=uniform, listed=files)))
    return texts


def run_view_texts(con: duckdb.DuckDBPyConnection, root: Path, texts: ViewTexts) -> None:
    """Create the views of ``texts`` in order; a failure names the file."""
    for path, text in texts:
        try:
            con.execute(text)
        except duckdb.Error as e:
            if path == VIEWS_SQL:
                raise WarehouseInputError(
                    f"cannot create the views over {root}: {e}") from e
            raise WarehouseInputError(
                f"{path.name}: cannot create its views: {first_line(e)}") from e


def set_file_lists(con: duckdb.DuckDBPyConnection,
                   files: Mapping[str, Sequence[str]]) -> None:
    """Set the DuckDB variable of each table with files to the list of its files."""
    for table, paths in files.items():
        if paths:
            con.execute(f"SET VARIABLE {files_variable(table)} = ?::VARCHAR[]",
                        [list(paths)])


def _layout_samples(index: FileIndex, sweep_ids: Collection[str] | None,
                    ) -> tuple[dict[str, list[str]], list[tuple[Any, ...]]]:
    """One file of each column layout per table, and the layouts: the views bound over
    these have the types they have over all the files (union_by_name adds no column a
    layout does not bring), and binding them costs no time per file."""
    samples: dict[tuple[Any, ...], str] = {}
    for t in TABLES:
        for path, f in index.entries(t, sweep_ids):
            samples.setdefault((t, f.columns, f.min_version, f.max_version), path)
    layouts = sorted(samples, key=repr)
    return {t: [samples[k] for k in layouts if k[0] == t] for t in TABLES}, layouts


def _texts_for(sql: str, texts: ViewTexts) -> ViewTexts:
    """``texts`` up to the last one defining a name that ``sql`` mentions."""
    words = {w.lower() for w in re.findall(r"\w+", sql)}
    last = 0
    for i, (_, text) in enumerate(texts):
        if words & {n.lower() for n in DEFINED_RE.findall(text)}:
            last = i
    return texts[:last + 1]


def create_views(con: duckdb.DuckDBPyConnection, layout: Layout, for_sql: str | None = None,
                 *, listed: bool = True, sweep_ids: Collection[str] | None = None,
                 cached: bool = True, index: FileIndex | None = None) -> None:
    """views.sql first, then every other analysis/*.sql in name order (each file
    builds on views.sql and on the files before it; all are CREATE OR REPLACE).

    ``listed``: the readers read the files listed now (DuckDB variables
    ``harness_files_<table>``), not a glob; ``sweep_ids`` limits those lists to the
    partitions of these sweeps. Not listed: the globs (for warehouse.duckdb, which
    must see the files of later sweeps).

    Listed views come from the view cache when it can be used (``cached``; see
    :func:`attach_view_cache`): creating a view binds its query, and the analysis
    views cost 0.3 s to several seconds to bind, every time. Without the cache, with
    ``for_sql`` the analysis files after the last one defining a name that
    ``for_sql`` mentions are skipped.
    """
    index = index or FileIndex(layout.root)
    uniform = index.check_versions()
    files: dict[str, list[str]] | None = None
    if listed:
        files = {t: index.paths(t, sweep_ids) for t in TABLES}
        set_file_lists(con, files)
    texts: ViewTexts = view_texts(layout.root, uniform, files)
    if files is not None and cached:
        some, layouts = _layout_samples(index, sweep_ids)
        if attach_view_cache(con, layout, texts, some, layouts):
            return
    if for_sql is not None:
        texts = _texts_for(for_sql, texts)
    run_view_texts(con, layout.root, texts)


def attach_view_cache(con: duckdb.DuckDBPyConnection, layout: Layout, texts: ViewTexts,
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
    cache = layout.view_cache(digest.hexdigest()[:16])
    root = layout.root
    if not cache.is_file():
        if not root.is_dir() or not os.access(root, os.W_OK | os.X_OK):
            return False
        if not build_view_cache(layout, cache, texts, files):
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


def build_view_cache(layout: Layout, cache: Path, texts: ViewTexts,
                     files: Mapping[str, Sequence[str]]) -> bool:
    """Create every view in a temp DuckDB file and rename it to ``cache`` (not fsynced:
    a cache); drop the oldest cache files beyond VIEW_CACHES_KEPT. A view that cannot
    be created is the usual WarehouseInputError; a file system error is False."""
    def fill(build: duckdb.DuckDBPyConnection) -> None:
        set_file_lists(build, files)
        run_view_texts(build, layout.root, texts)

    try:
        write_duckdb_atomic(cache, fill, durable=False)
    except (OSError, duckdb.Error, DiskFull):
        return False
    with contextlib.suppress(OSError):
        caches = sorted(layout.root.glob(VIEW_CACHE_GLOB),
                        key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in caches[VIEW_CACHES_KEPT:]:
            old.unlink(missing_ok=True)
    return True


def refresh_views(layout: Layout) -> Path:
    """(Re)write ROOT/warehouse.duckdb holding the views; returns its path.

    Built in a temp file and renamed over the old one (both fsynced), so a reader
    holding the old file open is not disturbed and the database is never locked
    afterwards. The views of a table that had no file yet are empty until the next
    refresh.
    """
    check_writable(layout.root)
    final = layout.db
    write_duckdb_atomic(final, lambda con: create_views(con, layout, listed=False),
                        durable=True)
    return final
