"""``harness compare``: matrices side by side, with the ratio per cell and its significance.

The numbers come from ``compare_pairs`` (analysis/compare.sql); this module only picks
which pairs of units to show and formats them.

Pairs, within one sweep:
    --by host     environments on different hosts with the same Python build (version
                  and free-threaded or not); A is the host with fewer usable CPUs
    --by python   environments on the same host with different interpreters; A is the
                  standard build (then the lower version), B e.g. the free-threaded one
    --by profile  every two hardware profiles (pooled hosts); A has fewer usable CPUs
With several --sweep: the first sweep is A, each other sweep B, unit by unit (the same
host and interpreter for host/python, the same profile_id for profile).
``--baseline TEXT`` keeps the pairs where one side's label, host or id contains TEXT,
and makes that side A.

speed_ratio = time A / time B: B's speed relative to A (above 1: B is faster).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from harness.errors import OptionError
from harness.formatting import matrix_key, md_cell, missing, workload_title
from harness.render import ascii_table, json_value
from harness.warehouse import Warehouse, sql_error

if TYPE_CHECKING:
    import pandas

# Neither pandas nor rich: the cells are Python rows and the tables plain text (for 99
# pairs, DataFrames per pair and rich drawing cost seconds; the imports ~0.4 s).

BY_CHOICES = ("host", "python", "profile")
FORMATS = ("table", "markdown", "json")

METHOD = (
    "B/A = B's speed relative to A (above 1: B is faster): time A / time B of the headline "
    "cells' medians, interval from the two 97.5% order-statistic median intervals "
    "(Bonferroni); ˢ = the workload parameters differ (e.g. cpu_bound is calibrated per "
    "interpreter), so B's speedup / A's speedup with the interval from the two speedup "
    "intervals. significant = the interval excludes 1; conf. = its real confidence, low "
    "with few repeats (>= 95% from 7 repeats per cell)."
)


@dataclass(frozen=True)
class Unit:
    """One side of a comparison: an environment or a profile of a sweep."""

    kind: str
    sweep_id: str
    unit_id: str
    label: str
    hosts: str
    pythons: str
    python_version: str
    free_threaded: bool
    usable_cpus: int | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Unit:
        def text(key: str) -> str:
            v = row.get(key)
            return "" if missing(v) else str(v)

        cpus = row.get("usable_cpus")
        return cls(kind=text("unit_kind"), sweep_id=text("sweep_id"), unit_id=text("unit_id"),
                   label=text("label"), hosts=text("hosts"), pythons=text("pythons"),
                   python_version=text("python_version"),
                   free_threaded=bool(row.get("free_threaded")),
                   usable_cpus=None if missing(cpus) else int(cpus))

    def describe(self) -> str:
        build = "free-threaded" if self.free_threaded else "standard"
        cpus = "?" if self.usable_cpus is None else str(self.usable_cpus)
        where = f"{self.hosts}" if self.kind == "profile" else self.label
        return (f"{where} · Python {self.python_version} {build} · {cpus} usable CPUs · "
                f"sweep {self.sweep_id}" + (f" · profile {self.unit_id}"
                                            if self.kind == "profile" else ""))

    def matches(self, text: str) -> bool:
        return any(text in s for s in (self.label, self.hosts, self.unit_id, self.pythons))

    def identity(self) -> tuple[str, ...]:
        """What stays the same across sweeps."""
        return (self.unit_id,) if self.kind == "profile" else (self.hosts, self.pythons)


@dataclass(frozen=True)
class Comparison:
    """Two units and their cells side by side: compare_pairs rows, in the matrix's
    order (workload, then model)."""

    a: Unit
    b: Unit
    rows: list[dict[str, Any]]

    @property
    def cells(self) -> pandas.DataFrame:
        """``rows`` as a DataFrame."""
        import pandas

        return pandas.DataFrame(self.rows, columns=list(self.rows[0]) if self.rows else None)


def _host_order(u: Unit) -> tuple[Any, ...]:
    return (u.usable_cpus or 0, u.hosts, u.pythons)


def _python_order(u: Unit) -> tuple[Any, ...]:
    version = tuple(int(p) if p.isdigit() else 0 for p in u.python_version.split("."))
    return (u.free_threaded, version, u.pythons)


def _profile_order(u: Unit) -> tuple[Any, ...]:
    return (u.usable_cpus or 0, u.free_threaded, u.python_version, u.unit_id)


def pair_units(units: Sequence[Unit], by: str, sweeps: Sequence[str]) -> list[tuple[Unit, Unit]]:
    """The (A, B) pairs to compare (see the module docstring)."""
    pairs: list[tuple[Unit, Unit]] = []
    if len(sweeps) > 1:
        first = [u for u in units if u.sweep_id == sweeps[0]]
        for other in sweeps[1:]:
            for a in first:
                for b in units:
                    if b.sweep_id == other and b.identity() == a.identity():
                        pairs.append((a, b))
        return pairs
    order = {"host": _host_order, "python": _python_order, "profile": _profile_order}[by]
    ordered = sorted(units, key=order)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if by == "host" and (a.hosts == b.hosts or a.python_version != b.python_version
                                 or a.free_threaded != b.free_threaded):
                continue
            if by == "python" and a.hosts != b.hosts:
                continue
            pairs.append((a, b))
    return pairs


def _apply_baseline(pairs: list[tuple[Unit, Unit]], baseline: str) -> list[tuple[Unit, Unit]]:
    out: list[tuple[Unit, Unit]] = []
    for a, b in pairs:
        if a.matches(baseline):
            out.append((a, b))
        elif b.matches(baseline):
            out.append((b, a))
    return out


def compare(warehouse: Warehouse, by: str, sweep_refs: Sequence[str] = (),
            baseline: str | None = None) -> list[Comparison]:
    """The comparisons selected by ``by``, the sweeps and the baseline."""
    if by not in BY_CHOICES:
        raise OptionError(f"--by {by!r} is not one of {', '.join(BY_CHOICES)}")
    # The sweeps first (ids, unique prefixes, default the latest: no SQL), so the
    # connection reads only their partitions: binding the views over every sweep of a
    # large warehouse costs seconds.
    index = warehouse.index()  # one listing of the files for the sweeps and the views
    sweeps = warehouse.resolve_sweep_ids(sweep_refs, index)
    con = warehouse.connect(sweeps, for_sql="compare_units compare_pairs", index=index)
    try:
        kind = "profile" if by == "profile" else "env"
        unit_rows = records(con, f"SELECT * FROM compare_units WHERE unit_kind = ? "
                                  f"AND sweep_id IN ({_marks(sweeps)})", [kind, *sweeps])
        units = [Unit.from_row(r) for r in unit_rows]
        pairs = pair_units(units, by, sweeps)
        if baseline:
            pairs = _apply_baseline(pairs, baseline)
        if not pairs:
            return []
        # All pairs in one query: a query per pair is quadratic in hosts at fleet scale.
        wanted = [(i, a.sweep_id, a.unit_id, b.sweep_id, b.unit_id)
                  for i, (a, b) in enumerate(pairs)]
        values = ", ".join("(?::INTEGER, ?, ?, ?, ?)" for _ in wanted)
        # The cells of the wanted units computed once (a temp table), then paired by
        # compare_pairs_over (the view compare_pairs is the same over every unit: each
        # side of its self join would compute the cells again).
        ids = sorted({u.unit_id for pair in pairs for u in pair})
        records(con, f"CREATE TEMP TABLE {_UNITS} AS SELECT * FROM compare_unit_cells "
                     f"WHERE unit_kind = ? AND sweep_id IN ({_marks(sweeps)}) "
                     f"AND unit_id IN ({_marks(ids)})", [kind, *sweeps, *ids])
        cells = records(
            con, f"SELECT w.pair_no, cp.* FROM compare_pairs_over('{_UNITS}') cp JOIN "
                 f"(VALUES {values}) w(pair_no, a_sweep_id, a_unit_id, b_sweep_id, b_unit_id) "
                 "USING (a_sweep_id, a_unit_id, b_sweep_id, b_unit_id)",
            [v for w in wanted for v in w])
        groups: dict[int, list[dict[str, Any]]] = {}
        for row in cells:
            groups.setdefault(row.pop("pair_no"), []).append(row)
        return [Comparison(a, b, _sorted_rows(groups.get(i, [])))
                for i, (a, b) in enumerate(pairs)]
    finally:
        con.close()


_UNITS = "harness_compare_units"  # the temp table of the compared units' cells


def records(con: duckdb.DuckDBPyConnection, sql: str,
             params: Sequence[Any]) -> list[dict[str, Any]]:
    """One statement's rows as dicts; a SQL error is a WarehouseInputError."""
    try:
        res = con.execute(sql, list(params))
        names = [d[0] for d in res.description or []]
        return [dict(zip(names, row, strict=True)) for row in res.fetchall()]
    except duckdb.Error as e:
        raise sql_error(e) from e


def _sorted_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cells in the matrix's order (formatting.matrix_key), ties in their order."""
    return sorted(rows, key=lambda r: matrix_key(r.get("workload"), r.get("model")))


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


# --------------------------------------------------------------------------- formatting


def number(value: Any) -> float | None:
    return None if missing(value) else float(value)


def side_text(row: dict[str, Any], side: str) -> str:
    """One side's cell: speedup [interval] ×workers, or its status."""
    status = row.get(f"{side}_status")
    speedup = number(row.get(f"{side}_speedup"))
    workers = row.get(f"{side}_workers")
    if speedup is None:
        return str(status or "—").replace("not_applicable", "n/a")
    lo, hi = number(row.get(f"{side}_speedup_ci_low")), number(row.get(f"{side}_speedup_ci_high"))
    text = f"{speedup:.2f}x"
    if lo is not None and hi is not None and row.get("model") != "sequential":
        text += f" [{lo:.2f}-{hi:.2f}]"
    if not missing(workers):
        text += f" ×{int(workers)}"
    return text


def ratio_text(row: dict[str, Any]) -> str:
    ratio = number(row.get("speed_ratio"))
    if ratio is None:
        return "—"
    lo, hi = number(row.get("ratio_ci_low")), number(row.get("ratio_ci_high"))
    text = f"{ratio:.2f}x"
    if lo is not None and hi is not None and not (lo == hi == ratio):
        text += f" [{lo:.2f}-{hi:.2f}]"
    return text + ("ˢ" if row.get("basis") == "speedup" else "")


def significance_text(row: dict[str, Any]) -> str:
    sig = row.get("significant")
    level = number(row.get("ratio_ci_level"))
    if missing(sig):
        return "untestable (0%)" if level == 0 else "—"
    conf = f" ({level:.0%})" if level is not None else ""
    if not sig:
        return "no" + conf
    ratio = number(row.get("speed_ratio")) or 1.0
    return ("B faster" if ratio > 1 else "A faster") + conf


def comparison_rows(c: Comparison) -> list[list[str]]:
    rows = []
    for r in c.rows:
        rows.append([workload_title(r["workload"]), str(r["model"]),
                     side_text(r, "a"), side_text(r, "b"), ratio_text(r), significance_text(r)])
    return rows


HEADERS = ("workload", "model", "A speedup", "B speedup", "B/A speed", "significant (conf.)")


def format_table(comparisons: Sequence[Comparison]) -> str:
    """Per pair its two sides and a table of the cells; the method once, at the end."""
    if not comparisons:
        return "nothing to compare\n"
    lines: list[str] = []
    for c in comparisons:
        lines += [f"A: {c.a.describe()}", f"B: {c.b.describe()}"]
        lines += ascii_table(HEADERS, comparison_rows(c), right={2, 3, 4, 5})
        lines.append("")
    lines += textwrap.wrap(METHOD, width=100)
    return "\n".join(lines) + "\n"


def format_markdown(comparisons: Sequence[Comparison]) -> str:
    if not comparisons:
        return "nothing to compare\n"
    parts: list[str] = []
    for c in comparisons:
        parts.append(f"### {md_cell(c.a.label)} vs {md_cell(c.b.label)}\n")
        parts.append(f"- A: {md_cell(c.a.describe())}\n- B: {md_cell(c.b.describe())}\n")
        parts.append("| " + " | ".join(HEADERS) + " |")
        parts.append("|" + "---|" * 2 + "---:|" * 4)
        parts += ["| " + " | ".join(md_cell(x) for x in row) + " |"
                  for row in comparison_rows(c)]
        parts.append("")
    parts.append(f"_{METHOD}_\n")
    return "\n".join(parts)


def format_json(comparisons: Sequence[Comparison]) -> str:
    """One JSON document (no indentation: the json module's fast C encoder)."""
    out = []
    for c in comparisons:
        cells = [{k: json_value(v) for k, v in r.items()} for r in c.rows]
        out.append({"a": c.a.__dict__, "b": c.b.__dict__, "cells": cells})
    return json.dumps({"method": METHOD, "comparisons": out}, default=str) + "\n"


def format_comparisons(comparisons: Sequence[Comparison], fmt: str) -> str:
    if fmt not in FORMATS:
        raise OptionError(f"--format {fmt!r} is not a format", hint="use table, markdown or json")
    return {"table": format_table, "markdown": format_markdown,
            "json": format_json}[fmt](comparisons)
