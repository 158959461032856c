"""Where everything lives under a warehouse root, and every file name, built and parsed
here only.

A name holding ids quotes them with :func:`file_part` ('-' separates the ids and is
never left raw inside one), so a name is parsed back without opening its file: see the
pairs :func:`cell_file` / :func:`parse_cell_file` and :func:`attempt_file` /
:func:`parse_attempt_file`. ``sweep_id`` lives only in the partition directory's name
(``sweep_id=<id>``, see :func:`partition_name` / :func:`parse_partition_name`). The
layout itself is drawn in the package's docstring (:mod:`harness.warehouse`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from harness.errors import WarehouseInputError

DB_NAME = "warehouse.duckdb"
INDEX_NAME = ".file-index.json"
VIEW_CACHE_PREFIX = ".views-"  # ROOT/.views-<digest>.duckdb: see views.attach_view_cache
VIEW_CACHE_GLOB = f"{VIEW_CACHE_PREFIX}*.duckdb"

SWEEP_FILE = "sweep.parquet"
# An empty attempts file each sweep starts with, so analysis/views.sql run by hand
# finds the table.
EMPTY_ATTEMPTS_FILE = "attempts-none.parquet"
PART_PREFIX = "part-"
PARTITION_PREFIX = "sweep_id="
DATA_SUFFIX = ".parquet"
DATA_GLOB = f"{PARTITION_PREFIX}*/*{DATA_SUFFIX}"  # every data file of a table
_CELL_PREFIX = "cell-"
_ATTEMPT_PREFIX = "attempt-"
_ENV_PREFIX = "env-"
_STAGING_PREFIX = ".compact-"

_SWEEP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SAFE_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_."


def check_sweep_id(sweep_id: str) -> str:
    """``sweep_id`` when it may name a partition; WarehouseInputError otherwise."""
    # all digits would make pandas/pyarrow read the partition column as a number
    if not isinstance(sweep_id, str) or not _SWEEP_ID_RE.match(sweep_id) or sweep_id.isdigit():
        raise WarehouseInputError(
            f"invalid sweep id {sweep_id!r}",
            hint="a sweep id is letters, digits, '_', '.' and '-', starting with a letter or "
            "digit, and not only digits",
        )
    return sweep_id


def file_part(value: str) -> str:
    """An id made safe and unambiguous as part of a file name ('-' is the separator)."""
    # quote() never encodes '-', '_', '.', '~'; '-' must be, as it separates ids.
    return quote(value, safe=_SAFE_CHARS).replace("-", "%2D")


# --------------------------------------------------------------------------- directories


def partition_name(sweep_id: str) -> str:
    """The directory name of a sweep's partition of a table."""
    return f"{PARTITION_PREFIX}{sweep_id}"


def parse_partition_name(name: str) -> str | None:
    """The sweep id of a partition directory's name; None for any other name."""
    if not name.startswith(PARTITION_PREFIX):
        return None
    return name[len(PARTITION_PREFIX):]


def staging_name(partition: str) -> str:
    """The hidden directory a partition is rebuilt in before a swap (see compact)."""
    return f"{_STAGING_PREFIX}{partition}"


# --------------------------------------------------------------------------- data files


def is_data_file(name: str) -> bool:
    """Whether a name in a partition is a data file (hidden temp files are not)."""
    return name.endswith(DATA_SUFFIX) and not name.startswith(".")


def cell_file(env_id: str, cell_id: str) -> str:
    """The file of one finished cell's rows."""
    return f"{_CELL_PREFIX}{file_part(env_id)}-{file_part(cell_id)}{DATA_SUFFIX}"


def parse_cell_file(name: str) -> tuple[str, str] | None:
    """(env_id, cell_id) of a :func:`cell_file` name; None for any other name."""
    if not (name.startswith(_CELL_PREFIX) and name.endswith(DATA_SUFFIX)):
        return None
    env_part, sep, cell_part = name[len(_CELL_PREFIX):-len(DATA_SUFFIX)].partition("-")
    if not sep:
        return None
    return unquote(env_part), unquote(cell_part)


def attempt_file(env_id: str, cell_id: str, number: int) -> str:
    """The file of attempt ``number`` (1, 2, ...) at a cell the agent never finished."""
    return (f"{_ATTEMPT_PREFIX}{file_part(env_id)}-{file_part(cell_id)}-{number:03d}"
            f"{DATA_SUFFIX}")


def parse_attempt_file(name: str) -> tuple[str, str, int] | None:
    """(env_id, cell_id, number) of an :func:`attempt_file` name; None for any other
    name."""
    if not (name.startswith(_ATTEMPT_PREFIX) and name.endswith(DATA_SUFFIX)):
        return None
    env_part, _, rest = name[len(_ATTEMPT_PREFIX):-len(DATA_SUFFIX)].partition("-")
    cell_part, _, number = rest.rpartition("-")
    if not cell_part or not number.isdigit():
        return None
    return unquote(env_part), unquote(cell_part), int(number)


def env_file(env_id: str) -> str:
    """The file of one environment (host x interpreter)."""
    return f"{_ENV_PREFIX}{file_part(env_id)}{DATA_SUFFIX}"


def unknown_env_file(host: object, python: object) -> str:
    """The file of an environment without env_id (a host never probed): named by a hash
    of host and python."""
    key = json.dumps([host, python]).encode()
    return f"{_ENV_PREFIX}unknown.{hashlib.sha1(key).hexdigest()[:16]}{DATA_SUFFIX}"


def part_file(digest: str, number: int | None = None) -> str:
    """A compacted partition's file (``number``: one of several written at once)."""
    suffix = "" if number is None else f"-{number}"
    return f"{PART_PREFIX}{digest}{suffix}{DATA_SUFFIX}"


def is_part_file(name: str) -> bool:
    """Whether a data file's name is a compacted partition's file."""
    return name.startswith(PART_PREFIX)


def view_cache_file(digest: str) -> str:
    """The view cache built for views and files of this digest (see views)."""
    return f"{VIEW_CACHE_PREFIX}{digest}.duckdb"


# --------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class TableFiles:
    """Where one warehouse table lives and the glob its view reads."""

    name: str
    directory: Path

    @property
    def glob(self) -> str:
        return str(self.directory / DATA_GLOB)

    def has_files(self) -> bool:
        return next(self.directory.glob(DATA_GLOB), None) is not None


@dataclass(frozen=True)
class Layout:
    """The paths of the warehouse under ``root``."""

    root: Path

    @property
    def db(self) -> Path:
        """ROOT/warehouse.duckdb: the views, for the DuckDB shell."""
        return self.root / DB_NAME

    @property
    def index(self) -> Path:
        """ROOT/.file-index.json: the file index (see index.FileIndex)."""
        return self.root / INDEX_NAME

    def table(self, table: str) -> TableFiles:
        return TableFiles(table, self.root / table)

    def partition(self, table: str, sweep_id: str) -> Path:
        """A sweep's directory of a table (the sweep id is checked first)."""
        return self.root / table / partition_name(check_sweep_id(sweep_id))

    def staging(self, table: str, sweep_id: str) -> Path:
        """The hidden directory a sweep's partition is rebuilt in before a swap."""
        live = self.partition(table, sweep_id)
        return live.parent / staging_name(live.name)

    def sweep_file(self, sweep_id: str) -> Path:
        return self.partition("sweeps", sweep_id) / SWEEP_FILE

    def env_file(self, sweep_id: str, env_id: str) -> Path:
        return self.partition("environments", sweep_id) / env_file(env_id)

    def view_cache(self, digest: str) -> Path:
        return self.root / view_cache_file(digest)

    def lease(self, sweep_id: str) -> Path:
        """ROOT/leases/<sweep id>.json: the lease of a running sweep's controller (see
        harness.sweep.lease); no table reads it."""
        return self.root / "leases" / f"{check_sweep_id(sweep_id)}.json"
