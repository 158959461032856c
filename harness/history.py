"""``harness history``: each cell of an environment over all its sweeps, steps marked.

The rows come from the view ``history_cells`` (analysis/history.sql: ``history``
without its window), one per environment (host, interpreter, hardware profile) x cell
x sweep; the steps from
:mod:`harness.warehouse.steps` over each series (the table ``changes`` holds the same
for SQL). This module selects, groups and formats.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from harness.compare import FORMATS, number, records
from harness.errors import OptionError
from harness.formatting import matrix_key, md_cell, missing, workload_title
from harness.render import ascii_table, json_value
from harness.sweep_compare import Environment
from harness.warehouse import Warehouse
from harness.warehouse.changes import series_steps
from harness.warehouse.steps import METHOD as STEP_METHOD

COLUMNS = ("host, python, profile_id, python_version, free_threaded, usable_cpus, cpu_model, "
           "cell_key, workload, model, workers, params, headline, sweep_id, started_at, "
           "status, n, median_s, ci_low_s, ci_high_s, ci975_low_s, ci975_high_s, speedup, "
           "speedup_ci_low, speedup_ci_high, speedup_method")

METHOD = (f"Steps ({STEP_METHOD}; per sweep the median's 97.5% interval, the one "
          "compare --by sweep uses, and the speedup's interval; "
          "docs/reference.md, `harness history`): ^ time up (slower), v time down (faster), "
          "+/- speedup up/down, marked on the first sweep after the step.")


@dataclass(frozen=True)
class Change:
    """A step of one series: the sweeps either side, the levels and their ratio."""

    metric: str
    sweep_before: str
    sweep_after: str
    value_before: float
    value_after: float
    ratio: float

    @property
    def mark(self) -> str:
        if self.metric == "time":
            return "^" if self.ratio > 1 else "v"
        return "+" if self.ratio > 1 else "-"


@dataclass(frozen=True)
class Series:
    """One cell of one environment: its sweeps' rows oldest first, and its steps."""

    env: Environment
    workload: str
    model: str
    workers: int | None
    params: str
    headline: bool
    points: tuple[dict[str, Any], ...]
    changes: tuple[Change, ...]

    def name(self) -> tuple[str, str]:
        model = self.model
        if self.workers is not None and model != "sequential":
            model += f" ×{self.workers}"
        title = workload_title(self.workload)
        return (title if self.headline else f"{title} {self.params}", model)


@dataclass(frozen=True)
class EnvHistory:
    """An environment's sweeps (oldest first) and its cells' series."""

    env: Environment
    sweeps: tuple[str, ...]
    series: tuple[Series, ...]


def _changes(points: Sequence[dict[str, Any]]) -> tuple[Change, ...]:
    ids = [str(p["sweep_id"]) for p in points]
    out: list[Change] = []
    for metric, value, low, high in (("time", "median_s", "ci975_low_s", "ci975_high_s"),
                                     ("speedup", "speedup", "speedup_ci_low",
                                      "speedup_ci_high")):
        found = series_steps(ids, [number(p[value]) for p in points],
                             [number(p[low]) for p in points],
                             [number(p[high]) for p in points])
        out += [Change(metric, a, b, s.before.level, s.after.level, s.ratio)
                for a, b, _, _, s in found]
    return tuple(out)


def history(warehouse: Warehouse, *, host: str | None = None, python: str | None = None,
            workload: str | None = None, model: str | None = None) -> list[EnvHistory]:
    """Every environment matching the filters (host and python: contain the text;
    workload and model: equal) with each of its cells over its sweeps."""
    where, params = ["TRUE"], []
    for column, value, op in (("host", host, "contains"), ("python", python, "contains"),
                              ("workload", workload, "="), ("model", model, "=")):
        if value:
            where.append(f"contains({column}, ?)" if op == "contains" else f"{column} = ?")
            params.append(value)
    con = warehouse.connect(for_sql="history_cells")
    try:
        return history_of(con, " AND ".join(where), params)
    finally:
        con.close()


def history_of(con: duckdb.DuckDBPyConnection, where: str = "TRUE",
               params: Sequence[Any] = ()) -> list[EnvHistory]:
    """The rows of ``history_cells`` matching ``where`` (SQL over its columns) in a
    connection with the views, grouped by environment and cell, steps found."""
    # history_cells, not history: its window (sweep_no) would keep the filters from
    # reaching the cells below it; the order is the same (started_at, then sweep_id)
    rows = records(con, f"SELECT {COLUMNS} FROM history_cells WHERE {where} "
                        "ORDER BY host, python, profile_id, cell_key, started_at NULLS FIRST, "
                        "sweep_id", params)
    envs: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        envs.setdefault((str(r["host"]), str(r["python"]), str(r["profile_id"])),
                        []).append(r)
    out = []
    for _, env_rows in sorted(envs.items()):
        env = Environment.from_row(env_rows[-1])
        order = {s: i for i, s in enumerate(dict.fromkeys(
            str(r["sweep_id"]) for r in sorted(
                env_rows, key=lambda r: (str(r["started_at"]), str(r["sweep_id"])))))}
        cells: dict[str, list[dict[str, Any]]] = {}
        for r in env_rows:
            cells.setdefault(str(r["cell_key"]), []).append(r)
        series = []
        for pts in cells.values():
            first = pts[0]
            workers = first.get("workers")
            series.append(Series(env, str(first["workload"]), str(first["model"]),
                                 None if missing(workers) else int(workers),
                                 str(first.get("params")), bool(first.get("headline")),
                                 tuple(pts), _changes(pts)))
        series.sort(key=lambda s: (not s.headline, matrix_key(s.workload, s.model),
                                   s.workers or 0, s.params))
        out.append(EnvHistory(env, tuple(order), tuple(series)))
    return out


# --------------------------------------------------------------------------- formatting


def point_text(p: dict[str, Any] | None, marks: str = "") -> str:
    """One sweep of a cell: 'median s speedup' with its step marks, or its status."""
    if p is None:
        return ""
    t = number(p.get("median_s"))
    if t is None:
        return str(p.get("status") or "—").replace("not_applicable", "n/a")
    text = f"{t:.4g}s"
    sp = number(p.get("speedup"))
    if sp is not None and p.get("model") != "sequential":
        text += f" {sp:.2f}x"
    return (marks + " " + text) if marks else text


def grid(h: EnvHistory) -> list[list[str]]:
    rows = []
    for s in h.series:
        by_sweep = {str(p["sweep_id"]): p for p in s.points}
        marks: dict[str, str] = {}
        for c in s.changes:
            marks[c.sweep_after] = marks.get(c.sweep_after, "") + c.mark
        rows.append([*s.name(), *(point_text(by_sweep.get(sid), marks.get(sid, ""))
                                  for sid in h.sweeps)])
    return rows


def change_lines(h: EnvHistory) -> list[str]:
    number_of = {sid: i + 1 for i, sid in enumerate(h.sweeps)}
    lines = []
    for s in h.series:
        for c in s.changes:
            unit = "s" if c.metric == "time" else "x"
            verdict = ({"^": "slower", "v": "faster", "+": "higher", "-": "lower"})[c.mark]
            lines.append(f"{' '.join(s.name())}: {c.metric} {c.value_before:.4g}{unit} -> "
                         f"{c.value_after:.4g}{unit} ({c.ratio:.2f}x, {verdict}) between "
                         f"#{number_of[c.sweep_before]} and #{number_of[c.sweep_after]}")
    return lines


def _sweep_lines(h: EnvHistory) -> list[str]:
    return [f"#{i + 1}: {sid}" for i, sid in enumerate(h.sweeps)]


def format_table(found: Sequence[EnvHistory]) -> str:
    if not found:
        return "no cell matches (`harness sql \"SELECT DISTINCT host, python FROM history\"`)\n"
    lines: list[str] = []
    for h in found:
        headers = ["workload", "model", *(f"#{i + 1}" for i in range(len(h.sweeps)))]
        lines += [h.env.describe(), "sweeps, oldest first: " + ", ".join(_sweep_lines(h))]
        lines += ascii_table(headers, grid(h), right=set(range(2, len(headers))))
        changes = change_lines(h)
        lines += (["changes:", *(f"  {c}" for c in changes)] if changes
                  else ["no change detected"])
        lines.append("")
    lines += textwrap.wrap(METHOD, width=100)
    return "\n".join(lines) + "\n"


def format_markdown(found: Sequence[EnvHistory]) -> str:
    if not found:
        return "No cell matches.\n"
    parts: list[str] = []
    for h in found:
        headers = ["workload", "model", *(f"#{i + 1}" for i in range(len(h.sweeps)))]
        parts += [f"### {md_cell(h.env.describe())}\n",
                  "Sweeps, oldest first: " + ", ".join(f"`{x}`" for x in _sweep_lines(h)),
                  "", "| " + " | ".join(headers) + " |",
                  "|" + "---|" * 2 + "---:|" * len(h.sweeps)]
        parts += ["| " + " | ".join(md_cell(x) for x in row) + " |" for row in grid(h)]
        parts.append("")
        parts += [f"- {md_cell(c)}" for c in change_lines(h)] or ["No change detected."]
        parts.append("")
    parts.append(f"_{METHOD}_\n")
    return "\n".join(parts)


def format_json(found: Sequence[EnvHistory]) -> str:
    out = []
    for h in found:
        out.append({"environment": h.env.__dict__, "sweeps": list(h.sweeps), "cells": [
            {"workload": s.workload, "model": s.model, "workers": s.workers,
             "params": s.params, "headline": s.headline,
             "points": [{k: json_value(v) for k, v in p.items()} for p in s.points],
             "changes": [c.__dict__ for c in s.changes]} for s in h.series]})
    return json.dumps({"method": METHOD, "environments": out}, default=str) + "\n"


def format_history(found: Sequence[EnvHistory], fmt: str) -> str:
    if fmt not in FORMATS:
        raise OptionError(f"--format {fmt!r} is not a format", hint="use table, markdown or json")
    return {"table": format_table, "markdown": format_markdown,
            "json": format_json}[fmt](found)
