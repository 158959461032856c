"""A DuckDB connection with every analysis view, for the report and `harness sweeps`.

``Warehouse.connect`` creates the views of ``analysis/views.sql`` and then of every
other ``analysis/*.sql`` file in name order: the comparison, claims and report views
(``compare.sql``, ``claims.sql``, ``report.sql``) and the dimension views. Each
file is written for the DuckDB shell (``.read analysis/views.sql`` then ``.read`` the
file) and is idempotent (CREATE OR REPLACE), so loading one twice is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pandas

from harness.errors import WarehouseInputError
from harness.warehouse import Warehouse, sql_error


def connect(warehouse: Warehouse) -> duckdb.DuckDBPyConnection:
    """A connection with every analysis view (``Warehouse.connect`` loads them all)."""
    return warehouse.connect()


def query(con: duckdb.DuckDBPyConnection, sql: str,
          params: Sequence[Any] | None = None) -> pandas.DataFrame:
    """One statement's answer as a DataFrame; a SQL error is a WarehouseInputError."""
    try:
        return con.execute(sql, list(params or [])).fetchdf()
    except duckdb.Error as e:
        raise sql_error(e) from e


# The views the report's other views read again and again (claims, decisions, thresholds
# and the dimension views each re-derive cells, paired ratios and matrices from the
# measurements), in the order they depend on one another.
SHARED_VIEWS = ("cells", "block_ratios", "paired_cells", "matrix", "profile_cells",
                "paired_profile_cells", "profile_matrix", "dimension_cells")


def keep_shared_views(con: duckdb.DuckDBPyConnection,
                      names: Sequence[str] = SHARED_VIEWS) -> None:
    """Compute each of ``names`` once: a temporary table of the same name holds its rows.

    DuckDB looks a name up in the temporary schema first, from a view's body too, so
    every later query and every view over these reads the stored rows instead of
    deriving them again (on two standard sweeps the thresholds view took 2.5 s before,
    0.15 s after, for 0.6 s spent here). The rows are those the view gives on this
    connection, so answers do not change; a view that does not exist is left out.
    """
    for name in names:
        if not relation_exists(con, name):
            continue
        try:
            con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS SELECT * FROM main."{name}"')
        except duckdb.Error as e:
            raise sql_error(e) from e


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
