"""A DuckDB connection with every analysis view, for compare and report.

``Warehouse.connect`` creates the views of ``analysis/views.sql``. The comparison,
claims and report views live in their own files beside it (``analysis/compare.sql``,
``claims.sql``, ``report.sql``, and whatever other ``analysis/*.sql`` define, e.g. the
scaling views); :func:`connect` loads them all after views.sql, in name order. Each
file is written for the DuckDB shell (``.read analysis/views.sql`` then ``.read`` the
file) and is idempotent (CREATE OR REPLACE), so loading one twice is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas

from harness.errors import WarehouseInputError
from harness.warehouse import VIEWS_SQL, Warehouse, view_sql

ANALYSIS_DIR = VIEWS_SQL.parent


def analysis_files() -> list[Path]:
    """The analysis/*.sql files loaded after views.sql, in name order."""
    return sorted(p for p in ANALYSIS_DIR.glob("*.sql") if p.name != VIEWS_SQL.name)


def connect(warehouse: Warehouse) -> duckdb.DuckDBPyConnection:
    """``warehouse.connect()`` plus every other analysis/*.sql file."""
    con = warehouse.connect()
    try:
        for path in analysis_files():
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as e:
                raise WarehouseInputError(f"cannot read {path}: {e.strerror}") from e
            try:
                con.execute(view_sql(warehouse.root, text))
            except duckdb.Error as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise WarehouseInputError(f"{path.name}: cannot create its views: {first}") from e
    except BaseException:
        con.close()
        raise
    return con


def query(con: duckdb.DuckDBPyConnection, sql: str,
          params: Sequence[Any] | None = None) -> pandas.DataFrame:
    """One statement's answer as a DataFrame; a SQL error is a WarehouseInputError."""
    try:
        return con.execute(sql, list(params or [])).fetchdf()
    except duckdb.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WarehouseInputError(f"SQL error: {first}") from e


def relation_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a view or table of that name exists."""
    (count,) = con.execute(
        "SELECT (SELECT count(*) FROM duckdb_views() WHERE view_name = $1 AND NOT internal)"
        " + (SELECT count(*) FROM duckdb_tables() WHERE table_name = $1)", [name]
    ).fetchone() or (0,)
    return bool(count)


def resolve_sweeps(warehouse: Warehouse, con: duckdb.DuckDBPyConnection,
                   refs: Sequence[str], *, default: str = "latest") -> list[str]:
    """Sweep ids from ``--sweep`` references (id, unique prefix, 'latest'), in the given
    order without duplicates. With none: ``default`` is 'latest' (the latest sweep),
    'per-inventory' (the latest of each inventory, oldest first) or 'all'."""
    if refs:
        out: list[str] = []
        for ref in refs:
            sid = warehouse.resolve_sweep_id(ref)
            if sid not in out:
                out.append(sid)
        return out
    ids = warehouse.sweep_ids()
    if not ids:
        raise WarehouseInputError(f"no sweep in {warehouse.root}", hint="run `harness sweep` first")
    if default == "all":
        return ids
    if default == "per-inventory":
        latest = set(query(con, "SELECT arg_max(sweep_id, started_at) AS sweep_id FROM sweeps "
                                "GROUP BY inventory")["sweep_id"])
        return [i for i in ids if i in latest]
    return [ids[-1]]
