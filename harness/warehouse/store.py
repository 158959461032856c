"""Writing a sweep into the warehouse: the sweep's row and status, its environments,
the rows of each finished cell and of each attempt the agent never finished.

Each write is one new file (a sweep's or an environment's file is replaced whole),
written through :func:`harness.warehouse.disk.write_parquet_atomic`; a cell file never
replaces an existing one, so a resumed sweep never duplicates rows. Writers that could
race a partition swap hold :data:`harness.warehouse.compact.SWAP_LOCK`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb

from harness.errors import DiskFull, WarehouseInputError
from harness.warehouse.compact import (
    COMPACT_MIN_FILES,
    SWAP_LOCK,
    compact,
    replace_compacted_env,
)
from harness.warehouse.disk import check_writable, write_parquet_atomic
from harness.warehouse.layout import (
    EMPTY_ATTEMPTS_FILE,
    Layout,
    attempt_file,
    cell_file,
    unknown_env_file,
)
from harness.warehouse.schema import (
    CELL_STATUSES,
    ENV_STATUSES,
    SWEEP_STATUSES,
    arrow_schema,
    pa,
    to_table,
)
from harness.warehouse.stored import part_rows, sweep_row
from harness.warehouse.views import refresh_views
from harness.warehouse.warm import warm

ATTEMPTS_KEPT = 1000  # attempts of one cell at most (a bound, never reached in practice)


def begin_sweep(
    layout: Layout,
    sweep_id: str,
    *,
    started_at: datetime,
    harness_version: str,
    inventory: str,
    profile: str,
    plan: Mapping[str, Any],
) -> None:
    """Record a new sweep with status 'running'. An existing sweep id is refused."""
    check_writable(layout.root)
    path = layout.sweep_file(sweep_id)
    if path.exists():
        raise WarehouseInputError(
            f"sweep {sweep_id!r} already exists in {layout.root}",
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
    table = to_table([row], arrow_schema("sweeps"), f"sweep {sweep_id}")
    # An empty attempts file, so analysis/views.sql run by hand finds the table.
    write_parquet_atomic(arrow_schema("attempts").empty_table(),
                         layout.partition("attempts", sweep_id) / EMPTY_ATTEMPTS_FILE,
                         replace=False)
    if not write_parquet_atomic(table, path, replace=False):
        raise WarehouseInputError(f"sweep {sweep_id!r} already exists in {layout.root}")


def set_sweep_status(
    layout: Layout, sweep_id: str, status: str, finished_at: datetime | None = None
) -> None:
    """Replace the sweep's row with a new status (and finish time).

    When the sweep ends ('complete' or 'failed') its partitions are compacted, and
    when it stops (any status but 'running') ROOT/warehouse.duckdb is refreshed and
    the readers' caches are brought up to date (:func:`~harness.warehouse.warm.warm`:
    the file index and the view caches, so the next command's first query pays for
    neither), all best effort: a partition left uncompacted is still whole, and the
    database and caches are conveniences; failing any must not fail a sweep whose data
    is stored.
    """
    if status not in SWEEP_STATUSES:
        raise WarehouseInputError(f"invalid sweep status {status!r}; one of {SWEEP_STATUSES}")
    check_writable(layout.root)
    row = sweep_row(layout, sweep_id)
    row["status"] = status
    row["finished_at"] = finished_at
    table = to_table([row], arrow_schema("sweeps"), f"sweep {sweep_id}")
    write_parquet_atomic(table, layout.sweep_file(sweep_id), replace=True)
    if status in ("complete", "failed"):
        with contextlib.suppress(WarehouseInputError, DiskFull, OSError, pa.ArrowException):
            compact(layout, sweep_id, min_files=COMPACT_MIN_FILES)
    if status != "running":
        with contextlib.suppress(WarehouseInputError, DiskFull, duckdb.Error, OSError):
            refresh_views(layout)
        warm(layout, [sweep_id])


def add_environment(layout: Layout, sweep_id: str, env: Mapping[str, Any]) -> None:
    """Store one host x interpreter; a later call for the same env_id replaces it.

    Keys without a column (extra fingerprint facts) are dropped: the full
    fingerprint belongs in ``probe``. An unreachable host may come without env_id:
    its file is then named by a hash of host and python.
    """
    check_writable(layout.root)
    sweep_row(layout, sweep_id)
    status = env.get("status", "ok")
    if status not in ENV_STATUSES:
        raise WarehouseInputError(
            f"invalid environment status {status!r}; one of {ENV_STATUSES}"
        )
    env_id = env.get("env_id")
    if env_id:
        path = layout.env_file(sweep_id, str(env_id))
    else:
        path = (layout.partition("environments", sweep_id)
                / unknown_env_file(env.get("host"), env.get("python")))
    row = dict(env)
    row["status"] = status
    # Fingerprint facts without a column of their own stay in `probe` (full JSON).
    table = to_table([row], arrow_schema("environments"),
                     f"environment {env_id or env.get('host')}", strict=False)
    with SWAP_LOCK:
        if replace_compacted_env(layout, sweep_id, path.name, table):
            return
        write_parquet_atomic(table, path, replace=True)


def add_cell(layout: Layout, sweep_id: str, env_id: str, cell_id: str,
             rows: Sequence[Mapping[str, Any]]) -> bool:
    """Store all rows of one finished cell in one file.

    Returns False (and writes nothing) when that cell is already stored, so a
    resumed sweep never duplicates rows.
    """
    fixed = cell_rows(layout, sweep_id, env_id, cell_id, rows)
    table = to_table(fixed, arrow_schema("measurements"), f"cell {env_id}/{cell_id}")
    directory = layout.partition("measurements", sweep_id)
    with SWAP_LOCK:  # not between a compaction's listing and its swap
        if (env_id, cell_id) in part_rows(directory, ["env_id", "cell_id"]):
            return False  # stored, in the sweep's compacted file
        return write_parquet_atomic(table, directory / cell_file(env_id, cell_id),
                                    replace=False)


def cell_rows(layout: Layout, sweep_id: str, env_id: str, cell_id: str,
              rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A cell's rows checked (ids, statuses, a known sweep) and given its ids."""
    if not env_id or not cell_id:
        raise WarehouseInputError("add_cell needs an env_id and a cell_id")
    if not rows:
        raise WarehouseInputError(f"cell {env_id}/{cell_id}: no rows (a cell has at least one)")
    check_writable(layout.root)
    sweep_row(layout, sweep_id)
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


def add_attempt(layout: Layout, sweep_id: str, env_id: str, cell_id: str,
                rows: Sequence[Mapping[str, Any]]) -> int:
    """Store the rows of an attempt at a cell that the agent never finished.

    An attempt is not a result: done_cells ignores it, so a resumed sweep runs the
    cell again. Each attempt is a new file (never rewritten); returns its number
    (1, 2, ...).
    """
    fixed = cell_rows(layout, sweep_id, env_id, cell_id, rows)
    directory = layout.partition("attempts", sweep_id)
    taken = set(os.listdir(directory)) if directory.is_dir() else set()
    for number in range(1, ATTEMPTS_KEPT + 1):
        name = attempt_file(env_id, cell_id, number)
        if name in taken:
            continue
        table = to_table([{**r, "attempt": number} for r in fixed], arrow_schema("attempts"),
                         f"attempt {env_id}/{cell_id}")
        if write_parquet_atomic(table, directory / name, replace=False):
            return number
    raise WarehouseInputError(f"cell {env_id}/{cell_id}: more than {ATTEMPTS_KEPT} attempts")
