"""The warehouse's tables: their columns, statuses, schema version and Arrow schemas.

The columns of each table are plain (name, DuckDB type) pairs, so a reader that only
queries needs no pyarrow (importing it, with numpy, is a fifth of a second of every
command); the Arrow schemas of the Parquet files are made from them when first asked
for. :func:`to_table` turns rows (dicts) into a table of exactly a table's schema, and
:func:`empty_relation` is a typed empty relation for a table with no file yet.

Schema version history:
    1  first version.
    2  measurements and attempts gain ``block``, ``block_pos``, ``block_group`` (the
       interleaved block a timed repeat ran in, its position in the block, and the group of
       cells that share a baseline) and ``probe_s`` (the speed probe timed just before the
       repeat). Version 1 files read back with those columns NULL.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from harness.errors import WarehouseInputError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq  # noqa: F401  (the other modules take pq from here)


class LazyModule:
    """A module imported when one of its attributes is first used."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(importlib.import_module(self._name), attr)
        setattr(self, attr, value)  # kept: the next use is a plain attribute
        return value


if not TYPE_CHECKING:
    pa = LazyModule("pyarrow")
    pq = LazyModule("pyarrow.parquet")

SCHEMA_VERSION = 2

SWEEP_STATUSES = ("running", "interrupted", "complete", "failed")
# ok: probed and every planned cell ran; incomplete: probed, then the host or agent
# failed part-way (error says why; --resume runs the rest); failed: never probed.
ENV_STATUSES = ("ok", "incomplete", "failed")
CELL_STATUSES = ("ok", "failed", "not_applicable", "timeout")

# The columns of each table and their DuckDB types (the Parquet files hold the matching
# Arrow types, see arrow_schema).
SWEEP_FIELDS: tuple[tuple[str, str], ...] = (
    ("started_at", "TIMESTAMPTZ"),
    ("finished_at", "TIMESTAMPTZ"),
    ("status", "VARCHAR"),
    ("harness_version", "VARCHAR"),
    ("inventory", "VARCHAR"),
    ("profile", "VARCHAR"),
    ("plan", "VARCHAR"),
    ("schema_version", "INTEGER"),
)

ENVIRONMENT_FIELDS: tuple[tuple[str, str], ...] = (
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

MEASUREMENT_FIELDS: tuple[tuple[str, str], ...] = (
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
ATTEMPT_FIELDS = (*MEASUREMENT_FIELDS[:-1], ("attempt", "BIGINT"), MEASUREMENT_FIELDS[-1])

TABLE_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "sweeps": SWEEP_FIELDS,
    "environments": ENVIRONMENT_FIELDS,
    "measurements": MEASUREMENT_FIELDS,
    "attempts": ATTEMPT_FIELDS,
}
TABLES = tuple(TABLE_FIELDS)
# The Arrow schemas, as module attributes made when first asked for (see __getattr__).
SCHEMA_NAMES = {"SWEEP_SCHEMA": "sweeps", "ENVIRONMENT_SCHEMA": "environments",
                "MEASUREMENT_SCHEMA": "measurements", "ATTEMPT_SCHEMA": "attempts"}
LAZY_SCHEMAS = (*SCHEMA_NAMES, "TABLE_SCHEMAS")

# Columns stored as JSON text; a dict/list given for them is serialised.
JSON_COLUMNS = frozenset({"plan", "numa_cpus", "probe", "params", "extra"})


@functools.cache
def arrow_type(duckdb_type: str) -> pa.DataType:
    """The Arrow type of the files' column of this DuckDB type."""
    if duckdb_type == "TIMESTAMPTZ":
        return pa.timestamp("us", tz="UTC")
    return {"VARCHAR": pa.string, "BIGINT": pa.int64, "INTEGER": pa.int32,
            "DOUBLE": pa.float64, "BOOLEAN": pa.bool_}[duckdb_type]()


@functools.cache
def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a table's files."""
    return pa.schema([(name, arrow_type(t)) for name, t in TABLE_FIELDS[table]])


def lazy_schema(name: str, module: str) -> Any:
    """SWEEP_SCHEMA, ENVIRONMENT_SCHEMA, MEASUREMENT_SCHEMA, ATTEMPT_SCHEMA and
    TABLE_SCHEMAS (Arrow schemas) for a module's ``__getattr__`` (pyarrow is imported
    then); AttributeError for any other name."""
    if name in SCHEMA_NAMES:
        return arrow_schema(SCHEMA_NAMES[name])
    if name == "TABLE_SCHEMAS":
        return {t: arrow_schema(t) for t in TABLES}
    raise AttributeError(f"module {module!r} has no attribute {name!r}")


def __getattr__(name: str) -> Any:
    """The Arrow schemas named in LAZY_SCHEMAS, made when first asked for."""
    return lazy_schema(name, __name__)


def json_text(value: Any) -> str | None:
    """A JSON column's value: text as given, anything else serialised."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def utc(value: Any) -> datetime | None:
    """A datetime in UTC (a naive one is taken as UTC); None stays None."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise WarehouseInputError(f"expected a datetime, got {value!r}")
    if value.tzinfo is None:  # naive times are taken as UTC
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def clean(value: Any) -> Any:
    """A value as stored: NaN becomes None (a missing number stays missing, never 0)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def check_version(version: Any, what: str) -> None:
    """Refuse a row ``what`` written by a newer harness."""
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise WarehouseInputError(
            f"{what}: schema_version {version} was written by a newer harness",
            hint=f"this harness writes schema version {SCHEMA_VERSION}; upgrade harness",
        )


def to_table(
    rows: Sequence[Mapping[str, Any]], schema: pa.Schema, what: str, *, strict: bool = True
) -> pa.Table:
    """Rows -> a table of exactly ``schema``; wrong types are refused, and unknown
    columns too when ``strict`` (otherwise they are dropped)."""
    names = set(schema.names)
    columns = [(field.name, field.name in JSON_COLUMNS, pa.types.is_timestamp(field.type))
               for field in schema]
    records: list[dict[str, Any]] = []
    for row in rows:
        unknown = set(row) - names - {"sweep_id"}
        if unknown and strict:
            raise WarehouseInputError(f"{what}: unknown column(s) {sorted(unknown)}")
        check_version(row.get("schema_version"), what)
        rec: dict[str, Any] = {}
        for name, is_json, is_time in columns:
            value = clean(row.get(name))
            if is_json:
                value = json_text(value)
            elif is_time:
                value = utc(value)
            rec[name] = value
        rec["schema_version"] = SCHEMA_VERSION
        records.append(rec)
    try:
        return pa.Table.from_pylist(records, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as e:
        raise WarehouseInputError(f"{what}: a value does not fit the schema: {e}") from e


def empty_relation(table: str) -> str:
    """A typed empty relation with the partition column, for a table with no file yet."""
    cols = ["CAST(NULL AS VARCHAR) AS sweep_id"]
    cols += [f'CAST(NULL AS {t}) AS "{name}"' for name, t in TABLE_FIELDS[table]]
    return "(SELECT " + ", ".join(cols) + " WHERE false)"
