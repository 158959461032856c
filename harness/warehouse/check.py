"""Checking a warehouse file by file, and repairing it: what ``harness check`` does.

:func:`check` verifies every data file of every table -- its Parquet footer and data
readable, a harness file of its table, a schema this harness reads, its rows as the file
index says -- then the cells against their sweep (a partition whose sweep has no sweep
file, a cell file holding another cell's rows, a cell of an environment the sweep does not
have: without it the cell's host and interpreter are unknown), the file index against the
files, and ROOT/warehouse.duckdb. Each finding is a :class:`Problem`, one line.

:func:`repair` moves the damaged files (and the partitions of a sweep that no longer
exists) to ``ROOT/quarantine/`` under their own relative path, never deleting anything,
then rebuilds the file index, the view cache and ROOT/warehouse.duckdb. A cell moved
away is missing from its sweep, so ``harness sweep --resume`` measures it again.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from harness.errors import DiskFull, WarehouseInputError
from harness.formatting import first_line
from harness.warehouse.disk import data_files, make_dirs
from harness.warehouse.index import read_facts, stat_key, table_files
from harness.warehouse.layout import (
    INDEX_NAME,
    SWEEP_FILE,
    VIEW_CACHE_GLOB,
    Layout,
    parse_attempt_file,
    parse_cell_file,
    parse_partition_name,
)
from harness.warehouse.schema import SCHEMA_VERSION, TABLES, pa, pq
from harness.warehouse.views import refresh_views
from harness.warehouse.warm import warm

QUARANTINE = "quarantine"
_CELL_TABLES = ("measurements", "attempts")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a warehouse: the file (relative to ROOT) and what is wrong;
    ``moved``: repair moves the file to quarantine (else repair rebuilds what it is)."""

    path: str
    message: str
    moved: bool = True

    def __str__(self) -> str:
        message = "".join(c if c.isprintable() else "?" for c in self.message)
        return f"{self.path}: {message}"


def check(root: Path) -> list[Problem]:
    """Every problem of the warehouse under ``root``, in path order."""
    layout = Layout(root)
    problems: list[Problem] = []
    sound: dict[str, dict[str, list[str]]] = {t: {} for t in TABLES}  # table -> sweep -> files
    for table in TABLES:
        for rel, _ in table_files(root / table):
            name = f"{table}/{rel}"
            problem = check_file(root, table, name)
            if problem is not None:
                problems.append(problem)
                continue
            part, _, _ = rel.partition("/")
            sweep_id = parse_partition_name(part) or ""
            sound[table].setdefault(sweep_id, []).append(name)
    problems.extend(_against_sweeps(root, sound))
    problems.extend(_index_problems(root))
    problems.extend(_db_problems(layout))
    return sorted(problems, key=lambda p: p.path)


def check_file(root: Path, table: str, name: str) -> Problem | None:
    """The problem of one data file (``name`` relative to ``root``), None when sound: the
    footer is read (a harness file of ``table``, of a schema this harness reads) and then
    every row (a truncated or corrupt data page shows only there)."""
    path = root / name
    try:
        facts = read_facts(path, table)
    except WarehouseInputError as e:
        return Problem(name, e.message.removeprefix(f"{path}: "))
    if facts.max_version is not None and facts.max_version > SCHEMA_VERSION:
        return Problem(name, f"written by a newer harness (schema {facts.max_version} > "
                             f"{SCHEMA_VERSION}): upgrade harness to read it", moved=False)
    try:
        rows = pq.read_table(path).num_rows
    except (OSError, ValueError, pa.ArrowException) as e:
        return Problem(name, f"cannot read its rows: {first_line(e)}")
    if rows != facts.rows:
        return Problem(name, f"holds {rows} rows, its footer says {facts.rows}")
    if table == "sweeps" and (name.rsplit("/", 1)[-1] != SWEEP_FILE or rows != 1):
        return Problem(name, f"a sweep partition holds one {SWEEP_FILE} of one row, "
                             f"not this ({rows} rows)")
    return None


def _against_sweeps(root: Path, sound: dict[str, dict[str, list[str]]]) -> list[Problem]:
    """Cells and environments against their sweep: the sweep exists, a cell file holds
    that cell's rows, every cell's environment is stored in the sweep."""
    problems: list[Problem] = []
    sweeps = set(sound["sweeps"])
    for table in ("environments", *_CELL_TABLES):
        for sweep_id, names in sound[table].items():
            if sweep_id not in sweeps:
                problems.extend(Problem(n, f"its sweep {sweep_id} has no sweep file "
                                           f"(sweeps/sweep_id={sweep_id}/{SWEEP_FILE})")
                                for n in names)
    for sweep_id in sweeps:
        envs = set(_column(root, sound["environments"].get(sweep_id, []), "env_id"))
        for table in _CELL_TABLES:
            for name in sound[table].get(sweep_id, []):
                problems.extend(_cell_problems(root, table, name, envs))
    return problems


def _cell_problems(root: Path, table: str, name: str, envs: set[Any]) -> list[Problem]:
    """A cell (or attempt) file whose rows are of another cell, or of an environment the
    sweep does not have."""
    base = name.rsplit("/", 1)[-1]
    parsed = parse_cell_file(base) if table == "measurements" else parse_attempt_file(base)
    ids = list(zip(*(_column(root, [name], c) for c in ("env_id", "cell_id")), strict=True))
    if parsed is not None:
        want = (parsed[0], parsed[1])
        others = sorted({f"{e}/{c}" for e, c in ids if (e, c) != want})
        if others:
            return [Problem(name, f"holds rows of another cell ({', '.join(others[:3])})")]
    unknown = sorted({str(e) for e, _ in ids if e not in envs})
    if unknown:
        return [Problem(name, f"rows of environment {', '.join(unknown[:3])}, which its sweep "
                              f"does not have (no environments row)")]
    return []


def _column(root: Path, names: Iterable[str], column: str) -> list[Any]:
    values: list[Any] = []
    for name in names:
        with contextlib.suppress(OSError, ValueError, KeyError, pa.ArrowException):
            values.extend(pq.read_table(root / name, columns=[column]).column(0).to_pylist())
    return values


def _index_problems(root: Path) -> list[Problem]:
    """The file index against the files: an entry for a file that is gone, or whose
    facts differ from the file's own (same inode, size and mtime: it would be trusted)."""
    try:
        data = json.loads((root / INDEX_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        return [Problem(INDEX_NAME, f"unreadable ({first_line(e)}); rebuilt by --repair",
                        moved=False)]
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return [Problem(INDEX_NAME, "not a file index; rebuilt by --repair", moved=False)]
    problems: list[Problem] = []
    for name, entry in sorted(files.items()):
        table = name.split("/", 1)[0]
        path = root / name
        if table not in TABLES or not path.is_file():
            problems.append(Problem(INDEX_NAME, f"lists {name}, which is not there; "
                                                f"rebuilt by --repair", moved=False))
            continue
        if not isinstance(entry, list) or len(entry) != 8:
            problems.append(Problem(INDEX_NAME, f"a malformed entry for {name}", moved=False))
            continue
        if tuple(entry[:3]) != stat_key(path.stat()):
            continue  # not trusted for this file: its facts are read again
        try:
            facts = read_facts(path, table)
        except WarehouseInputError:
            continue  # the file's own problem is reported
        if [entry[3], entry[5], entry[6]] != [facts.rows, facts.min_version, facts.max_version]:
            problems.append(Problem(INDEX_NAME, f"says {name} holds {entry[3]} rows of schema "
                                                f"{entry[5]}-{entry[6]}, the file {facts.rows} "
                                                f"of {facts.min_version}-{facts.max_version}; "
                                                f"rebuilt by --repair", moved=False))
    return problems


def _db_problems(layout: Layout) -> list[Problem]:
    """ROOT/warehouse.duckdb (the views for the DuckDB shell) that DuckDB cannot open."""
    if not layout.db.exists():
        return []
    try:
        duckdb.connect(str(layout.db), read_only=True).close()
    except duckdb.Error as e:
        return [Problem(layout.db.name, f"DuckDB cannot open it ({first_line(e)}); "
                                        f"rebuilt by --repair", moved=False)]
    return []


def quarantine_path(root: Path, name: str) -> Path:
    """Where ``name`` (relative to ``root``) goes in quarantine: the same relative path,
    numbered when that is taken."""
    target = root / QUARANTINE / name
    for n in range(1, 1000):
        if not target.exists():
            return target
        target = root / QUARANTINE / f"{name}.{n}"
    raise WarehouseInputError(f"too many quarantined copies of {name} in {root / QUARANTINE}")


def repair(root: Path, problems: Sequence[Problem]) -> list[tuple[str, str]]:
    """Move the files of ``problems`` that are to be moved into ROOT/quarantine/ (their
    relative path kept), then rebuild the file index, the view cache and
    ROOT/warehouse.duckdb. Returns (from, to) of each move, relative to ``root``."""
    moved: list[tuple[str, str]] = []
    for name in sorted({p.path for p in problems if p.moved}):
        source = root / name
        if not source.exists():
            continue
        target = quarantine_path(root, name)
        make_dirs(target.parent)
        os.replace(source, target)
        moved.append((name, str(target.relative_to(root))))
        with contextlib.suppress(OSError):  # a partition left empty goes too
            if not data_files(source.parent) and not any(source.parent.iterdir()):
                source.parent.rmdir()
    rebuild(root)
    return moved


def rebuild(root: Path) -> None:
    """The file index, the view caches and ROOT/warehouse.duckdb made anew from the files."""
    layout = Layout(root)
    (root / INDEX_NAME).unlink(missing_ok=True)
    for cache in root.glob(VIEW_CACHE_GLOB):
        cache.unlink(missing_ok=True)
    warm(layout)  # the index and the view caches of every sweep and of the latest
    if layout.db.exists() or any(table_files(root / t) for t in TABLES):
        try:
            refresh_views(layout)
        except DiskFull:
            raise
        except (WarehouseInputError, duckdb.Error, OSError) as e:
            raise WarehouseInputError(f"cannot rebuild {layout.db}: {first_line(e)}") from e
