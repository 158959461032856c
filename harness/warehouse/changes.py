"""The relation ``changes``: the steps of every series of ``history_series``
(analysis/history.sql), found by :mod:`harness.warehouse.steps`.

The detection is Python, so ``changes`` is no SQL view: :func:`add_changes` computes it
in a connection whose SQL names it and stores it there as a temporary table (DuckDB
looks a name up in the temporary schema first, so it sits beside the views, cached or
not). One row per step and metric:

    host, python, profile_id, cell_key, workload, model, workers, params,
    metric            'time' (the median wall_s) or 'speedup'
    sweep_before      the last sweep before the step, sweep_after the first after it
    sweeps_before     how many sweeps the level before rests on, sweeps_after after it
    value_before      the level before (median of its sweeps' values), value_after after
    low/high_before   its interval (median of its sweeps' interval ends), low/high_after
    ratio             value_after / value_before (time: above 1 is slower)
    change            'slower' / 'faster' (time), 'higher' / 'lower' (speedup)
    method            the method and its parameters (steps.METHOD)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import duckdb

from harness.warehouse.steps import METHOD, Point, detect_steps

NAME = "changes"
SOURCE = "history_series"

COLUMNS = (
    ("host", "VARCHAR"), ("python", "VARCHAR"), ("profile_id", "VARCHAR"),
    ("cell_key", "VARCHAR"), ("workload", "VARCHAR"), ("model", "VARCHAR"),
    ("workers", "BIGINT"), ("params", "VARCHAR"), ("metric", "VARCHAR"),
    ("sweep_before", "VARCHAR"), ("sweep_after", "VARCHAR"),
    ("sweeps_before", "INTEGER"), ("sweeps_after", "INTEGER"),
    ("value_before", "DOUBLE"), ("value_after", "DOUBLE"),
    ("low_before", "DOUBLE"), ("high_before", "DOUBLE"),
    ("low_after", "DOUBLE"), ("high_after", "DOUBLE"),
    ("ratio", "DOUBLE"), ("change", "VARCHAR"), ("method", "VARCHAR"),
)

_WORD = re.compile(rf"\b{NAME}\b", re.I)


def wants_changes(sql: str | None) -> bool:
    """Whether a statement names ``changes``."""
    return sql is not None and _WORD.search(sql) is not None


def series_steps(sweep_ids: Sequence[str], values: Sequence[Any], lows: Sequence[Any],
                 highs: Sequence[Any]) -> list[tuple[str, str, int, int, Any]]:
    """The steps of one series as (sweep before, sweep after, sweeps before, sweeps
    after, Step); sweeps without a value are left out, a missing interval end is the
    value itself (a zero-width interval)."""
    kept: list[tuple[str, Point]] = []
    for sid, v, lo, hi in zip(sweep_ids, values, lows, highs, strict=True):
        if v is None:
            continue
        v = float(v)
        lo = v if lo is None else min(float(lo), v)
        hi = v if hi is None else max(float(hi), v)
        kept.append((sid, Point(v, lo, hi)))
    steps = detect_steps([p for _, p in kept])
    return [(kept[s.index - 1][0], kept[s.index][0], s.before.stop - s.before.start,
             s.after.stop - s.after.start, s) for s in steps]


def change_rows(series: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows of ``changes`` for rows of ``history_series``."""
    out: list[tuple[Any, ...]] = []
    for r in series:
        head = (r["host"], r["python"], r["profile_id"], r["cell_key"], r["workload"],
                r["model"], r["workers"], r["params"])
        for metric, values, lows, highs, names in (
                ("time", r["medians"], r["lows"], r["highs"], ("faster", "slower")),
                ("speedup", r["speedups"], r["speedup_lows"], r["speedup_highs"],
                 ("lower", "higher"))):
            for before, after, n_before, n_after, s in series_steps(
                    r["sweep_ids"], values, lows, highs):
                out.append((*head, metric, before, after, n_before, n_after,
                            s.before.level, s.after.level, s.before.low, s.before.high,
                            s.after.low, s.after.high, s.ratio,
                            names[1] if s.ratio > 1 else names[0], METHOD))
    return out


def add_changes(con: duckdb.DuckDBPyConnection, where: str = "",
                params: Sequence[Any] = ()) -> None:
    """Create the temporary table ``changes`` from ``history_series`` in ``con``
    (optionally only the series matching ``where``, SQL over its columns)."""
    res = con.execute(f"SELECT * FROM {SOURCE}" + (f" WHERE {where}" if where else ""),
                      list(params))
    names = [d[0] for d in res.description or []]
    rows = change_rows([dict(zip(names, row, strict=True)) for row in res.fetchall()])
    columns = ", ".join(f"{n} {t}" for n, t in COLUMNS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {NAME} ({columns})")
    if rows:
        marks = ", ".join("?" for _ in COLUMNS)
        con.executemany(f"INSERT INTO {NAME} VALUES ({marks})", rows)
