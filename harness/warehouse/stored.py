"""Reading back what a warehouse holds: its sweeps, a sweep's row, its environments, the
cells it finished and the attempts it never finished.

Most answers come from file names alone (see :mod:`harness.warehouse.layout`), plus the
rows of a compacted partition's part files, and the sweep list from the file index.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import WarehouseInputError
from harness.warehouse.disk import data_files, read_sound, read_table, table_rows
from harness.warehouse.index import FileIndex
from harness.warehouse.layout import (
    Layout,
    is_part_file,
    parse_attempt_file,
    parse_cell_file,
)
from harness.warehouse.schema import SCHEMA_VERSION


def read_one(path: Path) -> dict[str, Any]:
    """The one row of a file holding one (a sweep's), refused when of a newer schema."""
    rows = read_table(path).to_pylist()
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


# Sweep rows read, by path, with the identity of the file they came from: a sweep's
# writer checks its sweep for every cell it adds, and the file is only ever replaced
# (a new inode) when the sweep's status changes.
_SWEEP_ROWS: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}
_SWEEP_ROWS_KEPT = 64


def sweep_row(layout: Layout, sweep_id: str) -> dict[str, Any]:
    """The stored row of a sweep; an unknown sweep is a WarehouseInputError."""
    path = layout.sweep_file(sweep_id)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise WarehouseInputError(
            f"unknown sweep id {sweep_id!r} in {layout.root}",
            hint="`harness sql \"SELECT sweep_id, status FROM sweeps\"` lists the sweeps",
        ) from None
    identity = (st.st_ino, st.st_size, st.st_mtime_ns)
    known = _SWEEP_ROWS.get(path)
    if known is not None and known[0] == identity:
        return dict(known[1])
    row = read_one(path)
    if len(_SWEEP_ROWS) >= _SWEEP_ROWS_KEPT:
        _SWEEP_ROWS.clear()
    _SWEEP_ROWS[path] = (identity, row)
    return dict(row)


def part_rows(directory: Path, columns: list[str]) -> list[tuple[Any, ...]]:
    """``columns`` of every row of the partition's compacted part files (a damaged one is
    left out with a warning)."""
    found: list[tuple[Any, ...]] = []
    for name in data_files(directory):
        if is_part_file(name):
            table = read_sound(directory / name, columns)
            if table is not None:
                found.extend(table_rows(table, columns))
    return found


def has_environment(layout: Layout, sweep_id: str, env_id: str) -> bool:
    """Whether an environments row for ``env_id`` is stored in the sweep."""
    if layout.env_file(sweep_id, env_id).exists():
        return True
    return (env_id,) in part_rows(layout.partition("environments", sweep_id), ["env_id"])


def done_cells(layout: Layout, sweep_id: str) -> set[tuple[str, str]]:
    """The (env_id, cell_id) pairs of the cells already stored for a sweep."""
    sweep_row(layout, sweep_id)
    directory = layout.partition("measurements", sweep_id)
    done: set[tuple[str, str]] = set()
    if not directory.is_dir():
        return done
    # File names are unambiguous (the env part has no raw '-'), so listing the
    # directory is enough; no file is opened.
    for name in os.listdir(directory):
        cell = parse_cell_file(name)
        if cell is not None:
            done.add(cell)
    # a compacted sweep: the cells of its part file(s)
    done.update(part_rows(directory, ["env_id", "cell_id"]))  # type: ignore[arg-type]
    return done


def unfinished_cells(layout: Layout, sweep_id: str) -> set[tuple[str, str]]:
    """The (env_id, cell_id) pairs with an attempt but no stored result: --resume runs
    them."""
    directory = layout.partition("attempts", sweep_id)
    tried: set[tuple[str, str]] = set()
    if directory.is_dir():
        for name in os.listdir(directory):
            attempt = parse_attempt_file(name)
            if attempt is not None:
                tried.add(attempt[:2])
    return tried - done_cells(layout, sweep_id)


def latest_attempts(layout: Layout, sweep_id: str,
                    env_id: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of the latest attempt of each cell of one environment (cell_id ->
    rows, ``params`` and ``extra`` decoded), for a resumed sweep to keep the complete
    blocks an interrupted group had measured."""
    directory = layout.partition("attempts", sweep_id)
    latest: dict[str, tuple[int, str]] = {}
    for name in data_files(directory):
        attempt = parse_attempt_file(name)
        if attempt is None or attempt[0] != env_id:
            continue
        _, cell_id, number = attempt
        if number > latest.get(cell_id, (0, ""))[0]:
            latest[cell_id] = (number, name)
    found: dict[str, list[dict[str, Any]]] = {}
    for cell_id, (_, name) in latest.items():
        table = read_sound(directory / name)
        if table is None:
            continue  # damaged: the cell runs afresh
        rows = table.to_pylist()
        for row in rows:
            for key in ("params", "extra"):
                row[key] = json.loads(row[key]) if row.get(key) else {}
        found[cell_id] = rows
    return found


def sweep_ids(root: Path, index: FileIndex | None = None) -> list[str]:
    """All sweep ids, oldest first (by started_at, then id). ``index``: a file index
    the caller built already (a command building it once for all its reads)."""
    found: list[tuple[int, str]] = []
    if root.is_dir():
        for sweep_id, facts in (index or FileIndex(root)).sweeps():
            when = facts.started_at if facts.started_at is not None else -(2**63)
            found.append((when, sweep_id))
    return [sweep_id for _, sweep_id in sorted(found)]


def latest_sweep_id(root: Path) -> str | None:
    """The id of the sweep started last; None in an empty warehouse."""
    ids = sweep_ids(root)
    return ids[-1] if ids else None


def resolve_sweep_id(root: Path, ref: str | None, index: FileIndex | None = None) -> str:
    """A stored sweep id from ``ref``: an id, a unique prefix of one, or 'latest'/None."""
    ids = sweep_ids(root, index)
    if not ids:
        what = "" if ref in (None, "latest") else f"unknown sweep id {ref!r}: "
        raise WarehouseInputError(f"{what}no sweep in {root}",
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
            f"sweep id {ref!r} is ambiguous in {root}: {', '.join(matches[:5])}"
        )
    raise WarehouseInputError(
        f"unknown sweep id {ref!r} in {root}",
        hint=f"the latest is {ids[-1]}; `harness sql \"SELECT * FROM sweeps\"` lists them",
    )


def resolve_sweep_ids(root: Path, refs: Sequence[str],
                      index: FileIndex | None = None) -> list[str]:
    """:func:`resolve_sweep_id` of each ref, in order, without duplicates; with no ref,
    the latest sweep."""
    index = index or FileIndex(root)
    if not refs:
        return [resolve_sweep_id(root, None, index)]
    return list(dict.fromkeys(resolve_sweep_id(root, r, index) for r in refs))


def check_schema(root: Path) -> None:
    """Refuse (WarehouseInputError) a warehouse holding files of a newer schema."""
    if not root.is_dir():
        return
    FileIndex(root).check_versions()
