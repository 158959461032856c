"""Asking the warehouse: a DuckDB connection with the views, a statement's answer as a
DataFrame or as Python rows (:class:`Answer`), and a SQL error as users see it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from harness.errors import WarehouseInputError
from harness.formatting import first_line
from harness.warehouse.changes import SOURCE as CHANGES_SOURCE
from harness.warehouse.changes import add_changes, wants_changes
from harness.warehouse.index import FileIndex
from harness.warehouse.layout import Layout
from harness.warehouse.views import create_views

if TYPE_CHECKING:
    import pandas

_T = TypeVar("_T")


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


def sql_error(error: BaseException) -> WarehouseInputError:
    """A statement's DuckDB error as the one-line error users see."""
    return WarehouseInputError(f"SQL error: {first_line(error)}")


def connect(layout: Layout, sweep_ids: Collection[str] | None = None, *,
            for_sql: str | None = None,
            index: FileIndex | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the views created over the current files.

    Nothing is kept open or locked between calls; the views only read Parquet. The
    views read the files present now (a sweep stored later is not seen; a file
    compacted away later fails to open: connect again). With ``sweep_ids`` they
    read only the partitions of those sweeps (every other sweep is absent from
    every view): binding a view then costs nothing per other sweep. ``for_sql``:
    see :func:`query`; when it names ``changes``, that table is computed too.
    ``index``: a file index the caller built already.
    """
    con = duckdb.connect(":memory:")
    try:
        create_views(con, layout, _for_sql(for_sql), sweep_ids=sweep_ids, index=index)
        if wants_changes(for_sql):
            add_changes(con)
    except BaseException:
        con.close()
        raise
    return con


def _for_sql(sql: str | None) -> str | None:
    """What the views must define for ``sql``: ``changes`` is computed from
    ``history_series`` (see :mod:`harness.warehouse.changes`)."""
    return f"{sql} {CHANGES_SOURCE}" if wants_changes(sql) else sql


def query(layout: Layout, sql: str, params: list[Any] | None = None) -> pandas.DataFrame:
    """Run one SQL statement over the views; a SQL error is a WarehouseInputError.

    The views come from the view cache, or (without it) only the analysis files up
    to the last one defining a name the statement mentions are loaded (views.sql
    always)."""
    return _run(layout, sql, params, lambda res: res.fetchdf())


def fetch(layout: Layout, sql: str, params: list[Any] | None = None, *,
          max_rows: int | None = None) -> Answer:
    """:func:`query`'s answer as Python rows, without pandas (cheaper to import and
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
        # reading on costs at most what the answer cost so far (about what running
        # the statement again would)
        total = _count_rest(res, max(0.05, time.perf_counter() - started))
        if total is not None:
            return Answer(columns, types, rows[:max_rows], len(rows) + total)
        # A long rest is only counted: DuckDB answers count(*) over the statement
        # without producing its columns (fetching millions of rows costs seconds).
        try:
            (total,) = res.execute(f"SELECT count(*) FROM ({sql.strip().rstrip(';')})",
                                   params or []).fetchone() or (None,)
        except duckdb.Error:
            total = None
        return Answer(columns, types, rows[:max_rows], total)

    if max_rows is not None and max_rows < 0:
        raise ValueError("max_rows must be >= 0")
    started = time.perf_counter()
    return _run(layout, sql, params, consume)


def _count_rest(res: duckdb.DuckDBPyConnection, budget_s: float) -> int | None:
    """The rows left in ``res``, read on (a few thousand rows cost milliseconds, where
    running the statement again as a count costs its whole time); None when reading
    on took more than ``budget_s`` (the result is then left half read)."""
    deadline = time.perf_counter() + budget_s
    seen = 0
    while True:
        try:
            chunk = len(res.fetchmany(_COUNT_CHUNK))
        except duckdb.Error:
            return None
        seen += chunk
        if chunk < _COUNT_CHUNK:
            return seen
        if time.perf_counter() > deadline:
            return None


_COUNT_CHUNK = 2048


# The errors of a statement itself (its text, its names), never of the files it reads.
_STATEMENT_ERRORS = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)


def _run(layout: Layout, sql: str, params: list[Any] | None,
         consume: Callable[[duckdb.DuckDBPyConnection], _T]) -> _T:
    """``consume`` the statement's result in a fresh connection; with the cached views
    first, then (when a cached view's types no longer match) with views created anew.
    When DuckDB fails reading the data (not the statement), the files are read once
    more: those whose rows cannot be read are left out, with a warning, and the
    statement runs again without them."""
    index = FileIndex(layout.root)
    cached, checked = True, False
    for _ in range(3):
        con = duckdb.connect(":memory:")
        try:
            create_views(con, layout, for_sql=_for_sql(sql), cached=cached, index=index)
            try:
                if wants_changes(sql):
                    add_changes(con)
                return consume(con.execute(sql, params or []))
            except duckdb.Error as e:
                if cached and "view were altered" in str(e):
                    cached = False
                    continue  # a cached view's types no longer match: create them anew
                if not checked and not isinstance(e, _STATEMENT_ERRORS):
                    checked = True
                    if index.drop_unreadable():
                        continue  # a damaged file left out: run the statement again
                raise sql_error(e) from e
        finally:
            con.close()
    raise AssertionError("unreachable")
