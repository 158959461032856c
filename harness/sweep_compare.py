"""``harness compare --by sweep``: before and after, the same environments in two sweeps.

The numbers come from the view ``compare_sweeps`` (analysis/history.sql); this module
picks the two sweeps, groups the cells by environment (host, interpreter, hardware
profile), counts the verdicts (as pyperf's ``compare_to``: "2 faster, 1 slower, 17
unchanged") and formats the answer. A is the baseline sweep, B the other.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from harness.compare import FORMATS, number, records
from harness.errors import OptionError
from harness.formatting import matrix_key, md_cell, missing, workload_title
from harness.render import ascii_table, json_value
from harness.warehouse import Warehouse

METHOD = (
    "B/A time = A's median / B's median (above 1: B is faster), interval from the two "
    "97.5% order-statistic median intervals (Bonferroni); B/A speedup = B's speedup / "
    "A's speedup (above 1: B scales better), interval from the two speedup intervals. "
    "Each speedup is paired within its own sweep's blocks, but no block holds both "
    "sweeps: across sweeps both ratios are unpaired. A change is significant when its "
    "interval excludes 1; conf. = that interval's real confidence, below 95% with fewer "
    "than 7 repeats per cell. Cells match on cell_key (workload, params, model, workers) "
    "within one environment: the same host, interpreter and hardware profile."
)

# The cells of each environment of the two sweeps (no statistics: cells only in one of
# them are named, e.g. cpu_bound recalibrated so its params and cell_key differ).
CELLS_SQL = ("SELECT DISTINCT e.host, e.python, e.profile_id, m.sweep_id, m.cell_key, m.workload, "
             "m.model, m.workers FROM measurements m JOIN environments e USING (sweep_id, env_id) "
             "WHERE m.sweep_id IN (?, ?) AND m.cell_key IS NOT NULL")

ENV_SQL = ("SELECT DISTINCT sweep_id, host, python, profile_id, python_version, free_threaded, "
           "usable_cpus, cpu_model FROM environments WHERE sweep_id IN (?, ?) "
           "AND env_id IS NOT NULL AND status IN ('ok', 'incomplete')")


@dataclass(frozen=True)
class Environment:
    """A host x interpreter x hardware profile, the same across sweeps."""

    host: str
    python: str
    profile_id: str
    python_version: str = ""
    free_threaded: bool = False
    usable_cpus: int | None = None
    cpu_model: str = ""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Environment:
        def text(key: str) -> str:
            v = row.get(key)
            return "" if missing(v) else str(v)

        cpus = row.get("usable_cpus")
        return cls(text("host"), text("python"), text("profile_id"), text("python_version"),
                   bool(row.get("free_threaded")), None if missing(cpus) else int(cpus),
                   text("cpu_model"))

    def key(self) -> tuple[str, str, str]:
        return (self.host, self.python, self.profile_id)

    def describe(self) -> str:
        build = "free-threaded" if self.free_threaded else "standard"
        cpus = "?" if self.usable_cpus is None else str(self.usable_cpus)
        return (f"{self.host} {self.python} · Python {self.python_version} {build} · "
                f"{cpus} usable CPUs · profile {self.profile_id}")


@dataclass(frozen=True)
class SweepComparison:
    """One environment in the baseline sweep (A) and the other sweep (B), cell by cell:
    rows of compare_sweeps in the matrix's order."""

    baseline: str
    sweep: str
    env: Environment
    rows: list[dict[str, Any]] = field(default_factory=list)
    only_baseline: tuple[str, ...] = ()  # cells (workload/model/workers) only in A
    only_sweep: tuple[str, ...] = ()     # and only in B

    def counts(self, column: str = "time_change") -> Counter[str]:
        """How many cells are faster / slower / unchanged (None: untestable)."""
        return Counter(str(r.get(column)) if not missing(r.get(column)) else "untestable"
                       for r in self.rows)


@dataclass(frozen=True)
class SweepsAnswer:
    """The comparisons, and the environments found in only one of the two sweeps."""

    baseline: str
    sweep: str
    comparisons: list[SweepComparison]
    only_baseline: list[Environment]
    only_sweep: list[Environment]


def compare_sweeps(warehouse: Warehouse, baseline: str, sweep: str | None = None,
                   ) -> SweepsAnswer:
    """The environments both sweeps ran, cell by cell (``sweep`` default: the latest)."""
    index = warehouse.index()
    a = warehouse.resolve_sweep_id(baseline, index)
    b = warehouse.resolve_sweep_id(sweep, index)
    if a == b:
        raise OptionError(f"--baseline and --sweep are the same sweep {a}",
                          hint="name the other sweep with --sweep (default: the latest)")
    con = warehouse.connect([a, b], for_sql="compare_sweeps environments", index=index)
    try:
        envs = [(r["sweep_id"], Environment.from_row(r))
                for r in records(con, ENV_SQL, [a, b])]
        rows = records(con, "SELECT * FROM compare_sweeps WHERE a_sweep_id = ? "
                             "AND b_sweep_id = ?", [a, b])
        planned = records(con, CELLS_SQL, [a, b])
    finally:
        con.close()
    in_a = {e.key(): e for s, e in envs if s == a}
    in_b = {e.key(): e for s, e in envs if s == b}
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((str(r["host"]), str(r["python"]), str(r["profile_id"])),
                          []).append(r)
    keys: dict[tuple[str, str, str, str], dict[str, str]] = {}
    for r in planned:
        env_key = (str(r["host"]), str(r["python"]), str(r["profile_id"]))
        keys.setdefault((*env_key, str(r["sweep_id"])), {})[str(r["cell_key"])] = (
            f"{r['workload']}/{r['model']}/workers={r['workers']}")
    comparisons = []
    for key in sorted(set(in_a) & set(in_b)):
        cells = sorted(groups.get(key, []), key=lambda r: (
            matrix_key(r.get("workload"), r.get("model")), r.get("workers") or 0,
            str(r.get("params"))))
        ka, kb = keys.get((*key, a), {}), keys.get((*key, b), {})
        comparisons.append(SweepComparison(
            a, b, in_b[key], cells, tuple(sorted(ka[k] for k in set(ka) - set(kb))),
            tuple(sorted(kb[k] for k in set(kb) - set(ka)))))
    return SweepsAnswer(a, b, comparisons,
                        [in_a[k] for k in sorted(set(in_a) - set(in_b))],
                        [in_b[k] for k in sorted(set(in_b) - set(in_a))])


# --------------------------------------------------------------------------- formatting


def _ratio(value: Any, low: Any, high: Any) -> str:
    v, lo, hi = number(value), number(low), number(high)
    if v is None:
        return "—"
    text = f"{v:.2f}x"
    if lo is not None and hi is not None and not (lo == hi == v):
        text += f" [{lo:.2f}-{hi:.2f}]"
    return text


def _verdict(change: Any, level: Any) -> str:
    lv = number(level)
    if missing(change):
        return "untestable" + (f" ({lv:.0%})" if lv is not None else "")
    return str(change) + (f" ({lv:.0%})" if lv is not None else "")


def _seconds(row: dict[str, Any], side: str) -> str:
    v = number(row.get(f"{side}_median_s"))
    if v is None:
        return str(row.get(f"{side}_status") or "—").replace("not_applicable", "n/a")
    return f"{v:.4g} s"


def _cell_name(r: dict[str, Any]) -> tuple[str, str]:
    model = str(r["model"])
    if not missing(r.get("workers")) and model != "sequential":
        model += f" ×{int(r['workers'])}"
    name = workload_title(r["workload"])
    return (name if r.get("headline") else f"{name} {r.get('params')}", model)


def cell_rows(c: SweepComparison) -> list[list[str]]:
    return [[*_cell_name(r), _seconds(r, "a"), _seconds(r, "b"),
             _ratio(r.get("speed_ratio"), r.get("ratio_ci_low"), r.get("ratio_ci_high")),
             _verdict(r.get("time_change"), r.get("ratio_ci_level")),
             _ratio(r.get("speedup_change"), r.get("speedup_change_ci_low"),
                    r.get("speedup_change_ci_high")),
             "" if missing(r.get("speedup_change")) or r.get("model") == "sequential"
             else _verdict(r.get("speedup_change_kind"), r.get("speedup_change_ci_level"))]
            for r in c.rows]


HEADERS = ("workload", "model", "A time", "B time", "B/A time", "time (conf.)",
           "B/A speedup", "speedup (conf.)")


def summary(c: SweepComparison) -> str:
    """pyperf compare_to's line: '2 faster, 1 slower, 17 unchanged' (time), the
    speedups' counts, and how many verdicts rest on >= 95% confidence."""
    t = c.counts("time_change")
    s = c.counts("speedup_change_kind")
    sure = sum(1 for r in c.rows if not missing(r.get("time_change"))
               and (number(r.get("ratio_ci_level")) or 0) >= 0.95)
    tested = sum(1 for r in c.rows if not missing(r.get("time_change")))
    line = (f"time: {t['faster']} faster, {t['slower']} slower, {t['unchanged']} unchanged"
            + (f", {t['untestable']} untestable" if t["untestable"] else "")
            + f" ({sure} of {tested} at >= 95% confidence)")
    if s["higher"] or s["lower"] or s["unchanged"]:
        line += (f"; speedup: {s['higher']} higher, {s['lower']} lower, "
                 f"{s['unchanged']} unchanged")
    return line


def unmatched_lines(c: SweepComparison) -> list[str]:
    """The cells of one sweep only (another plan, or params that differ: not compared)."""
    out = []
    for side, cells in (("A", c.only_baseline), ("B", c.only_sweep)):
        if cells:
            out.append(f"only in {side} (not compared: not planned in the other sweep, or "
                       f"other params): {', '.join(cells)}")
    return out


def _header_lines(answer: SweepsAnswer) -> list[str]:
    lines = [f"A (baseline): sweep {answer.baseline}", f"B: sweep {answer.sweep}"]
    lines += [f"only in A: {e.describe()}" for e in answer.only_baseline]
    lines += [f"only in B: {e.describe()}" for e in answer.only_sweep]
    return lines


def format_table(answer: SweepsAnswer) -> str:
    lines = _header_lines(answer) + [""]
    if not answer.comparisons:
        lines.append("no environment (host, interpreter, hardware profile) is in both sweeps")
    for c in answer.comparisons:
        lines.append(c.env.describe())
        lines += ascii_table(HEADERS, cell_rows(c), right={2, 3, 4, 5, 6, 7})
        lines += [summary(c), *unmatched_lines(c), ""]
    lines += textwrap.wrap(METHOD, width=100)
    return "\n".join(lines) + "\n"


def format_markdown(answer: SweepsAnswer) -> str:
    parts = [f"- {md_cell(x)}" for x in _header_lines(answer)] + [""]
    if not answer.comparisons:
        parts.append("No environment (host, interpreter, hardware profile) is in both "
                     "sweeps.\n")
    for c in answer.comparisons:
        parts += [f"### {md_cell(c.env.describe())}\n", "| " + " | ".join(HEADERS) + " |",
                  "|" + "---|" * 2 + "---:|" * 6]
        parts += ["| " + " | ".join(md_cell(x) for x in row) + " |" for row in cell_rows(c)]
        parts += ["", f"**{md_cell(summary(c))}**", ""]
        parts += [f"- {md_cell(x)}" for x in unmatched_lines(c)]
    parts.append(f"_{METHOD}_\n")
    return "\n".join(parts)


def format_json(answer: SweepsAnswer) -> str:
    out = []
    for c in answer.comparisons:
        out.append({"environment": c.env.__dict__, "summary": summary(c),
                    "only_baseline": list(c.only_baseline), "only_sweep": list(c.only_sweep),
                    "counts": {"time": dict(c.counts("time_change")),
                               "speedup": dict(c.counts("speedup_change_kind"))},
                    "cells": [{k: json_value(v) for k, v in r.items()} for r in c.rows]})
    return json.dumps({"method": METHOD, "baseline": answer.baseline, "sweep": answer.sweep,
                       "only_baseline": [e.__dict__ for e in answer.only_baseline],
                       "only_sweep": [e.__dict__ for e in answer.only_sweep],
                       "comparisons": out}, default=str) + "\n"


def format_sweeps(answer: SweepsAnswer, fmt: str) -> str:
    if fmt not in FORMATS:
        raise OptionError(f"--format {fmt!r} is not a format", hint="use table, markdown or json")
    return {"table": format_table, "markdown": format_markdown,
            "json": format_json}[fmt](answer)

