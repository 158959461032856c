"""``harness report``: one self-contained report across sweeps, hosts and builds.

Every number comes from the views (analysis/views.sql, compare.sql, claims.sql,
report.sql, and the optional scaling views when present); this module gathers their
answers into a :class:`ReportData`, and :mod:`harness.report_html` /
:func:`markdown` format it. The HTML is one file (inline CSS and SVG, no script, no
external reference). The Markdown is pipe tables for a code forge, its SVG plots
written as separate files in ``<name>_files/`` next to it and linked as images.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas

from harness import render
from harness.errors import OptionError, WarehouseInputError
from harness.report_plots import (
    NOT_MEASURED,
    VIEW_PLOTS,
    Figure,
    ViewPlot,
    builds_figure,
    speedup_figure,
    view_figure,
)
from harness.report_sql import query, relation_exists, resolve_sweeps
from harness.stability import METHOD_NOTE as STABILITY_NOTE
from harness.stability import STABILITY_SQL
from harness.warehouse import Warehouse

SUFFIXES = (".html", ".md")

METHOD_NOTES = (
    "Speedup = time of sequential / time of the model, on the same profile and workload "
    "parameters (profile_matrix). The cells that share a baseline (a workload at one set "
    "of parameters: sequential and every model) run interleaved in blocks, one timed "
    "repeat of each cell per block in a random order, so each ratio is taken under the "
    "same conditions: the speedup is the median over blocks of sequential's time / the "
    "model's time in that block, and its interval the order-statistic 95% interval of "
    "that median (ranks from the binomial distribution of the sample median; its exact "
    "coverage is stated, below 95% with fewer than 6 blocks). Data recorded before blocks "
    "fall back to the ratio of the two medians, with the two 97.5% median intervals "
    "combined (Bonferroni).",
    "Claims are equivalence tests (analysis/claims.sql). Confirmed: the whole speedup "
    "interval lies inside the guide's range widened by a tolerance of {tolerance:.0%} "
    "([low / (1 + t), high × (1 + t)]); refuted: the interval lies wholly outside the "
    "range; inconclusive: neither (the interval is too wide; the note gives the width "
    "that would settle it). Not testable here: the cell cannot reach the claim by "
    "construction (its cap, the most its workers, tasks and, for CPU-bound work, usable "
    "CPUs allow, is below the claim's low end; the note says what size would test it). "
    "Not measurable: the cell did not run here. A single '1.0x' is read as [0.95, 1.05].",
    "Decision guide: the fastest model (lowest median time) against every other model "
    "within the same blocks: per block, the other model's time / the fastest's, pooled "
    "over the hosts of the profile, its median and 95% order-statistic interval; a model "
    "whose interval reaches 1 is not significantly slower and is listed with the fastest "
    "('any of'), so no recommendation rests on an inconclusive comparison. Without common "
    "blocks (older data) two models tie when their 97.5% median intervals overlap "
    "(analysis/report.sql, decision_pairs and decisions).",
    "Thresholds: the guide's fixed numbers measured from the dimension cells (sweep "
    "--dimensions; analysis/report.sql, thresholds): a crossover or loss counts from the "
    "smallest point from which the difference is significant at every larger point, "
    "with the largest point where it was not as its lower bound. The scaling knee is "
    "drawn only when the best speedup is significantly above 1 (else inconclusive).",
)


def method_notes(tolerance: float = 0.10) -> list[str]:
    """The method section, with the claims' tolerance (claim_tolerance() in SQL)."""
    return [n.format(tolerance=tolerance) for n in METHOD_NOTES]


@dataclass(frozen=True)
class ProfileSection:
    """One (sweep, profile): its matrix, the claims and decisions, and its plot."""

    sweep_id: str
    profile_id: str
    title: str
    matrix: pandas.DataFrame
    claims: pandas.DataFrame
    decisions: pandas.DataFrame
    figure: Figure
    thresholds: pandas.DataFrame = field(default_factory=pandas.DataFrame)
    thresholds_error: str | None = None  # the thresholds view failed (e.g. a view replaced)


@dataclass(frozen=True)
class ViewSection:
    """An optional view (scaling, crossover, ...): its figures, or why there are none."""

    spec: ViewPlot
    present: bool
    rows: pandas.DataFrame
    figures: tuple[Figure, ...]


@dataclass(frozen=True)
class ReportData:
    generated_at: datetime
    root: Path
    sweep_ids: tuple[str, ...]
    sweeps: pandas.DataFrame
    problems: pandas.DataFrame
    profiles: pandas.DataFrame
    environments: pandas.DataFrame
    guide: pandas.DataFrame
    claims_summary: pandas.DataFrame
    sections: tuple[ProfileSection, ...]
    build_figures: tuple[Figure, ...]
    views: tuple[ViewSection, ...]
    claim_tolerance: float = 0.10  # claims.sql claim_tolerance(): the equivalence band

    # host_noise's verdict and control_checks' outcome per environment
    stability: pandas.DataFrame = field(default_factory=pandas.DataFrame)


# --------------------------------------------------------------------------- gathering


def _in(sweeps: Sequence[str]) -> str:
    return "(" + ", ".join("?" for _ in sweeps) + ")"


def _build_figures(con: duckdb.DuckDBPyConnection, sweeps: Sequence[str]) -> list[Figure]:
    """Free-threaded against standard, per host that ran both builds in one sweep."""
    pairs = query(con, f"""
        SELECT a.sweep_id, a.unit_id AS a_id, b.unit_id AS b_id, a.hosts AS host,
               a.label AS a_label, b.label AS b_label,
               a.python_version AS a_version, b.python_version AS b_version
        FROM compare_units a JOIN compare_units b
          ON a.unit_kind = 'env' AND b.unit_kind = 'env' AND a.sweep_id = b.sweep_id
         AND a.hosts = b.hosts AND NOT a.free_threaded AND b.free_threaded
        WHERE a.sweep_id IN {_in(sweeps)}
        -- the standard build closest in version to the free-threaded one
        QUALIFY row_number() OVER (PARTITION BY a.sweep_id, b.unit_id
                                   ORDER BY a.python_version DESC, a.label) = 1
        ORDER BY a.sweep_id, a.hosts""", list(sweeps))
    figures = []
    for i, p in enumerate(pairs.to_dict("records")):
        cells = query(con, "SELECT * FROM compare_pairs WHERE unit_kind = 'env' "
                           "AND a_sweep_id = ? AND a_unit_id = ? AND b_sweep_id = ? "
                           "AND b_unit_id = ? AND workload IS NOT NULL",
                      [p["sweep_id"], p["a_id"], p["sweep_id"], p["b_id"]])
        from harness.compare import _sorted_cells

        cells = _sorted_cells(cells)
        title = (f"{p['host']}: Python {p['b_version']} free-threaded against "
                 f"{p['a_version']} standard (sweep {p['sweep_id']})")
        figures.append(builds_figure(f"builds{i}", title, cells,
                                     f"{p['a_label']} (standard)",
                                     f"{p['b_label']} (free-threaded)"))
    return figures


def _view_sections(con: duckdb.DuckDBPyConnection, sweeps: Sequence[str],
                   titles: dict[tuple[str, str], str]) -> list[ViewSection]:
    out = []
    for spec in VIEW_PLOTS:
        if not relation_exists(con, spec.view):
            out.append(ViewSection(spec, False, pandas.DataFrame(), ()))
            continue
        cols = list(query(con, f'SELECT * FROM "{spec.view}" LIMIT 0').columns)
        where = f" WHERE sweep_id IN {_in(sweeps)}" if "sweep_id" in cols else ""
        rows = query(con, f'SELECT * FROM "{spec.view}"{where}',
                     list(sweeps) if where else [])
        figures: list[Figure] = []
        if not rows.empty:
            keys = ["sweep_id", "profile_id"] if {"sweep_id", "profile_id"} <= set(cols) else []
            groups = rows.groupby(keys, dropna=False, sort=False) if keys else [((), rows)]
            for i, (key, g) in enumerate(groups):
                label = titles.get(tuple(key), " · ".join(str(k) for k in key)) if keys else ""
                title = spec.title + (f" — {label}" if label else "")
                figures.append(view_figure(spec, f"{spec.view}{i}", title, g))
        out.append(ViewSection(spec, True, rows, tuple(figures)))
    return out


def gather(warehouse: Warehouse, sweep_refs: Sequence[str] = (), *,
           all_sweeps: bool = False) -> ReportData:
    """Everything the report shows, for the selected sweeps (default: the latest sweep
    of each inventory; ``all_sweeps``: every sweep)."""
    # The sweeps first, so the connection reads only their partitions: binding the
    # views over every sweep of a large warehouse costs seconds.
    if sweep_refs:
        sweeps = warehouse.resolve_sweep_ids(sweep_refs)
    elif all_sweeps:
        sweeps = warehouse.sweep_ids()
        if not sweeps:
            raise WarehouseInputError(f"no sweep in {warehouse.root}",
                                      hint="run `harness sweep` first")
    else:  # the latest sweep of each inventory: a question for the sweeps view
        light = warehouse.connect(for_sql="sweeps")
        try:
            sweeps = resolve_sweeps(warehouse, light, sweep_refs, default="per-inventory")
        finally:
            light.close()
    con = warehouse.connect(sweeps)
    try:
        p = list(sweeps)
        sweep_rows = query(con, f"SELECT * FROM sweep_summary WHERE sweep_id IN {_in(p)} "
                                "ORDER BY started_at", p)
        problems = query(con, f"SELECT * FROM sweep_problems WHERE sweep_id IN {_in(p)} "
                              "ORDER BY sweep_id, kind, host, python, workload, model", p)
        profiles = query(con, f"SELECT * FROM profiles WHERE sweep_id IN {_in(p)} "
                              "ORDER BY sweep_id, usable_cpus DESC, free_threaded, "
                              "python_version, profile_id", p)
        envs = query(con, f"SELECT sweep_id, host, python, python_version, implementation, "
                          f"free_threaded, gil_enabled, usable_cpus, logical_cpus, cpu_model, "
                          f"numa_nodes, mem_total_bytes, profile_id, status, error "
                          f"FROM environments WHERE sweep_id IN {_in(p)} "
                          f"ORDER BY sweep_id, host, python", p)
        stability = query(con, STABILITY_SQL, [p])
        guide = query(con, "SELECT * FROM guide_table")
        summary = query(con, "SELECT * FROM claims_summary_of(?::VARCHAR[])", [p])
        tolerance = float(query(con, "SELECT claim_tolerance() AS t")["t"].iloc[0])
        matrix = query(con, f"SELECT * FROM profile_matrix WHERE sweep_id IN {_in(p)}", p)
        claims = query(con, f"SELECT * FROM claims WHERE sweep_id IN {_in(p)}", p)
        decisions = query(con, f"SELECT * FROM decisions WHERE sweep_id IN {_in(p)}", p)
        thresholds = pandas.DataFrame(columns=["sweep_id", "profile_id", "threshold"])
        thresholds_error = None
        if relation_exists(con, "thresholds"):
            try:
                thresholds = query(con, "SELECT * FROM thresholds WHERE sweep_id IN "
                                        f"{_in(p)}", p)
            except WarehouseInputError as e:  # a dimension view redefined without a column
                thresholds_error = e.message
        sections: list[ProfileSection] = []
        titles: dict[tuple[str, str], str] = {}
        for i, prof in enumerate(profiles.to_dict("records")):
            sid, pid = prof["sweep_id"], prof["profile_id"]
            m = matrix[(matrix["sweep_id"] == sid) & (matrix["profile_id"] == pid)]
            if m.empty:
                continue
            title = render.profile_title(m)
            titles[(sid, pid)] = title
            c = claims[(claims["sweep_id"] == sid) & (claims["profile_id"] == pid)]
            d = decisions[(decisions["sweep_id"] == sid) & (decisions["profile_id"] == pid)]
            fig = speedup_figure(f"speedup{i}", title, m, guide)
            t = thresholds[(thresholds["sweep_id"] == sid) & (thresholds["profile_id"] == pid)]
            sections.append(ProfileSection(sid, pid, title, m, _ordered(c), _ordered(d), fig,
                                           t.reset_index(drop=True), thresholds_error))
        return ReportData(
            generated_at=datetime.now(UTC), root=warehouse.root, sweep_ids=tuple(sweeps),
            sweeps=sweep_rows, problems=problems, profiles=profiles, environments=envs,
            guide=guide, claims_summary=_ordered(summary), sections=tuple(sections),
            build_figures=tuple(_build_figures(con, p)), stability=stability,
            views=tuple(_view_sections(con, p, titles)), claim_tolerance=tolerance)
    finally:
        con.close()


def _ordered(df: pandas.DataFrame) -> pandas.DataFrame:
    """Rows in the matrix's order: workloads as the guide lists them, then models."""
    if df.empty or "workload" not in df:
        return df.reset_index(drop=True)
    w = {n: i for i, n in enumerate(render.WORKLOAD_ROWS)}
    m = {n: i for i, n in enumerate(render.MODEL_COLUMNS)}
    model_col = "model" if "model" in df else None
    key = df.apply(lambda r: (w.get(r["workload"], 99), str(r["workload"]),
                              m.get(r[model_col], 99) if model_col else 0), axis=1)
    return df.assign(_k=key).sort_values("_k").drop(columns="_k").reset_index(drop=True)


# --------------------------------------------------------------------------- text helpers


def fmt_speedup(value: object, lo: object = None, hi: object = None) -> str:
    if render._missing(value):
        return "—"
    text = f"{float(value):.2f}x"  # type: ignore[arg-type]
    if not render._missing(lo) and not render._missing(hi):
        text += f" [{float(lo):.2f}-{float(hi):.2f}]"  # type: ignore[arg-type]
    return text


def fmt_duration(seconds: object) -> str:
    if render._missing(seconds):
        return "—"
    s = float(seconds)  # type: ignore[arg-type]
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def fmt_time(value: object) -> str:
    if render._missing(value):
        return "—"
    if isinstance(value, (datetime, pandas.Timestamp)):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return str(value)


def fmt_bytes(value: object) -> str:
    if render._missing(value):
        return "—"
    return f"{float(value) / 2**30:.1f} GiB"  # type: ignore[arg-type]


def build_text(free_threaded: object, gil_enabled: object) -> str:
    if render._missing(free_threaded):
        return "?"
    if free_threaded:
        return "free-threaded" + (" (GIL re-enabled)" if gil_enabled is True else "")
    return "standard (GIL)"


def claim_line(row: dict[str, object]) -> str:
    """'CPU-bound ProcessPool (processes) 7-8x'"""
    workload = render.WORKLOAD_ROWS.get(str(row["workload"]), str(row["workload"]))
    return f"{workload} · {row['guide_column']} ({row['model']}) {row['claim_text']}"


VERDICTS = ("confirmed", "refuted", "inconclusive", "not testable here", "not measurable")


def _claim_where(row: dict[str, object]) -> str:
    """'h1, h2 (2 usable CPUs, Python 3.13.1)': where a claim was checked, briefly."""
    facts = []
    if not render._missing(row.get("usable_cpus")):
        facts.append(f"{row['usable_cpus']} usable CPUs")
    if not render._missing(row.get("python_version")):
        facts.append(f"Python {row['python_version']}"
                     + (" free-threaded" if row.get("free_threaded") is True else ""))
    hosts = "" if render._missing(row.get("hosts")) else str(row["hosts"])
    return (hosts + (f" ({', '.join(facts)})" if facts else "")).strip() or str(
        row.get("profile_id", "?"))


def claims_overview(sections: Sequence[ProfileSection]) -> tuple[str, list[str]]:
    """(a sentence counting the verdicts over every checked (claim, profile), one line
    per check that is inconclusive -- with the interval width it would need -- or not
    testable here -- with the cap and the size that would test it)."""
    rows = [r for s in sections for r in s.claims.to_dict("records")]
    if not rows:
        return "No claim was checked: no profile ran a headline cell.", []
    counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in VERDICTS}
    sentence = (f"{len(rows)} checks (each claim on each profile): "
                + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".")
    lines = []
    for verdict in ("inconclusive", "not testable here"):
        for r in rows:
            if r["verdict"] == verdict:
                measured = fmt_speedup(r["speedup"], r["speedup_ci_low"], r["speedup_ci_high"])
                lines.append(f"{verdict}: {claim_line(r)}, measured {measured} on "
                             f"{_claim_where(r)}: {r['note']}")
    return sentence, lines


def decision_text(row: dict[str, object]) -> tuple[str, str, str]:
    """(use, measured, why) for one decisions row."""
    use = str(row["recommendation"])
    measured = fmt_speedup(row["best_speedup"], row["best_speedup_ci_low"],
                           row["best_speedup_ci_high"]) + f" ({row['best_model']})"
    if row.get("significant_lead"):
        nxt, slow = row.get("next_model"), row.get("next_slowdown")
        why = "significant lead"
        if not render._missing(nxt) and not render._missing(slow):
            why += f": {float(slow):.2f}x faster than {nxt}"  # type: ignore[arg-type]
    else:
        why = "no significant difference between these"
    basis = []
    comparison, blocks = row.get("comparison"), row.get("min_blocks")
    if comparison == "paired" and not render._missing(blocks):
        basis.append(f"paired within blocks, ≥ {int(blocks)} blocks")  # type: ignore[call-overload]
    elif comparison == "mixed":
        basis.append("paired where the cells shared blocks, else unpaired")
    elif comparison == "unpaired":
        basis.append("unpaired medians")
    level = row.get("min_pair_level")
    if not render._missing(level):
        # rounded down: 99.6% is "≥ 99.6%", never "≥ 100%"
        pct = math.floor(float(level) * 1000) / 10  # type: ignore[arg-type]
        basis.append(f"confidence ≥ {pct:g}%")
    if basis:
        why += f" ({'; '.join(basis)})"
    return use, measured, why


def fmt_seconds(value: object) -> str:
    """A short duration: '420 µs', '12.3 ms', '1.5 s'."""
    if render._missing(value):
        return "—"
    v = float(value)  # type: ignore[arg-type]
    if v < 1e-3:
        return f"{v * 1e6:.3g} µs"
    if v < 1:
        return f"{v * 1e3:.3g} ms"
    return f"{v:.3g} s"


def fmt_size(value: object) -> str:
    """A payload size: '1 KiB', '16 MiB'."""
    if render._missing(value):
        return "—"
    v = float(value)  # type: ignore[arg-type]
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if v >= size:
            return f"{v / size:.3g} {unit}"
    return f"{v:.0f} B"


def _fmt_unit(value: object, unit: object) -> str:
    if unit == "s":
        return fmt_seconds(value)
    if unit == "bytes":
        return fmt_size(value)
    if render._missing(value):
        return "—"
    return f"{float(value):g}"  # type: ignore[arg-type]


# The guide's fixed numbers, each replaced by its measured threshold (thresholds view).
THRESHOLD_RULES: tuple[tuple[str, str, str], ...] = (
    ("cpu_crossover", "CPU-bound: task duration below which to run sequentially",
     "Task duration < 100ms → run sequentially; 100ms-1s → ProcessPoolExecutor or "
     "multiprocessing.Pool"),
    ("transfer_lose_from", "Large data: payload from which processes lose to threads",
     "Large data transfer → avoid multiprocessing (pickling overhead)"),
    ("scaling_knee", "Workers: count beyond which more workers stop helping",
     "More workers than CPU cores causes context-switch overhead"),
    ("spawn_per_worker", "Process pool start-up, per worker",
     "Process spawn time ~10-50ms per process"),
    ("asyncio_over_threads", "I/O: concurrency from which asyncio beats threads",
     "High connection count (>100) → asyncio"),
)
PROCESS_MODELS = ("processes", "mp_pool", "interpreters")


def _workers(value: object) -> str:
    n = float(value)  # type: ignore[arg-type]
    return f"{n:g} worker" + ("" if n == 1 else "s")


def _threshold_detail(r: dict[str, object]) -> str:
    """One measured threshold in words, with its interval or why there is none."""
    kind, unit, status = r["threshold"], r["unit"], r["status"]
    u = lambda v: _fmt_unit(v, unit)  # noqa: E731
    tested = f"{u(r['tested_min'])} to {u(r['tested_max'])}, {r['points']} points"
    model = str(r["model"]) + ("" if render._missing(r.get("variant")) or kind in (
        "asyncio_over_threads",) else f" ({r['variant']})")
    if status == "not_run":
        return f"{model}: did not run here"
    if kind == "scaling_knee":
        best = fmt_speedup(r["speedup"], r.get("speedup_ci_low"), r.get("speedup_ci_high"))
        if status == "inconclusive":
            return (f"{model}: no knee drawn: the best speedup {best} is not significantly "
                    f"above 1 (inconclusive; tested {tested})")
        if status == "never":
            return (f"{model}: no knee: slower than sequential at every worker count "
                    f"(best speedup {best}; tested {tested})")
        return (f"{model}: knee at {_workers(r['value'])} (best speedup {best}; "
                f"tested {tested})")
    if kind == "spawn_per_worker":
        return (f"{model}: {u(r['value'])} per worker [{u(r['low'])}-{u(r['high'])}] "
                f"over {r['points']} worker counts ({float(r['tested_min']):g}-"
                f"{float(r['tested_max']):g} workers)")
    verb = {"cpu_crossover": "beats sequential from",
            "transfer_lose_from": "loses to threads from",
            "asyncio_over_threads": "beats threads from concurrency"}[str(kind)]
    never = {"cpu_crossover": "never beat sequential significantly",
             "transfer_lose_from": "never lost to threads significantly",
             "asyncio_over_threads": "never beat threads significantly"}[str(kind)]
    if status == "never":
        return f"{model}: {never} (tested {tested})"
    if status == "below_range":
        return f"{model}: {verb} {u(r['value'])}, the smallest tested (tested {tested})"
    text = f"{model}: {verb} {u(r['value'])} (between {u(r['low'])} and {u(r['value'])}"
    if kind == "cpu_crossover" and not render._missing(r.get("speedup")):
        text += f"; {fmt_speedup(r['speedup'], r['speedup_ci_low'], r['speedup_ci_high'])} there"
    return text + f"; tested {tested})"


def _threshold_summary(kind: str, t: pandas.DataFrame) -> str:
    """The rule with the measured number in place of the guide's."""
    found = t[t["status"].isin(["found", "below_range"])]
    if kind == "cpu_crossover":
        procs = found[found["model"].isin(PROCESS_MODELS)]
        if not procs.empty:
            r = procs.loc[procs["value"].astype(float).idxmin()]
            low = ("the shortest tested" if r["status"] == "below_range"
                   else f"[{fmt_seconds(r['low'])}, {fmt_seconds(r['value'])}]")
            return (f"Run CPU tasks shorter than {fmt_seconds(r['value'])} sequentially: "
                    f"measured crossover for {r['model']} is {fmt_seconds(r['value'])} {low}.")
        top = fmt_seconds(t["tested_max"].max())
        return (f"Run CPU tasks of up to {top} sequentially: no process model beat "
                f"sequential significantly at any measured task duration.")
    if kind == "transfer_lose_from":
        pickle = found[found["variant"].eq("pickle")]
        if not pickle.empty:
            r = pickle.loc[pickle["value"].astype(float).idxmin()]
            low = ("" if r["status"] == "below_range"
                   else f" [{fmt_size(r['low'])}, {fmt_size(r['value'])}]")
            return (f"Pass payloads of {fmt_size(r['value'])} or more to threads, not "
                    f"processes: measured {r['model']} loses to threads from "
                    f"{fmt_size(r['value'])}{low} (pickle).")
        return (f"Processes never lost to threads significantly up to "
                f"{fmt_size(t['tested_max'].max())} payloads (pickle).")
    if kind == "scaling_knee":
        procs = found[found["model"].isin(PROCESS_MODELS)]
        if not procs.empty:  # found: the best speedup is significantly above 1
            r = procs.loc[procs["speedup"].astype(float).idxmax()]
            best = fmt_speedup(r["speedup"], r.get("speedup_ci_low"), r.get("speedup_ci_high"))
            return (f"Use up to {_workers(r['value'])} for CPU-bound work: measured knee of "
                    f"{r['model']} at {_workers(r['value'])} (best speedup {best}).")
        # no knee is drawn from an inconclusive best speedup (thresholds view)
        ran = t[t["model"].isin(PROCESS_MODELS) & t["status"].isin(["inconclusive", "never"])]
        if not ran.empty:
            r = ran.loc[ran["speedup"].astype(float).idxmax()]
            best = fmt_speedup(r["speedup"], r.get("speedup_ci_low"), r.get("speedup_ci_high"))
            return (f"More process workers did not help significantly here: best speedup "
                    f"of {r['model']} {best}; no knee drawn.")
        return "No process model's scaling was measured."
    if kind == "spawn_per_worker":
        parts = [f"{m}: {fmt_seconds(g['value'].astype(float).median())}"
                 for m, g in found.groupby("variant", sort=True)]
        return ("Budget for pool start-up per worker, by start method: " + ", ".join(parts)
                + ".") if parts else "Pool start-up did not run here."
    if kind == "asyncio_over_threads":
        if not found.empty:
            r = found.loc[found["value"].astype(float).idxmin()]
            return (f"Use asyncio from {r['value']:g} concurrent operations: measured "
                    f"crossover over threads at {r['value']:g}"
                    + ("" if r["status"] == "below_range"
                       else f" [{r['low']:g}, {r['value']:g}]") + f" ({r['workload']}).")
        return (f"asyncio never beat threads significantly up to "
                f"{t['tested_max'].max():g} concurrent operations.")
    return ""


def threshold_rows(thresholds: pandas.DataFrame,
                   error: str | None = None) -> list[tuple[str, str, list[str], str]]:
    """(rule, measured summary, per-model details, the guide's number) for every rule of
    THRESHOLD_RULES; a rule without rows says it was not measured in these sweeps
    (``error``: the thresholds view failed, said instead)."""
    out = []
    for kind, rule, guide in THRESHOLD_RULES:
        if error:
            out.append((rule, f"Could not be computed: {error}", [], guide))
            continue
        t = thresholds[thresholds["threshold"] == kind] if not thresholds.empty else thresholds
        if t.empty:
            out.append((rule, NOT_MEASURED.capitalize() + ".", [], guide))
            continue
        t = _ordered(t)
        details = [_threshold_detail(r) for r in t.to_dict("records")]
        out.append((rule, _threshold_summary(kind, t), details, guide))
    return out


# --------------------------------------------------------------------------- markdown


def _md(text: object) -> str:
    return ("" if render._missing(text) else str(text)).replace("|", "\\|").replace("\n", " ")


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(_md(h) for h in headers) + " |",
             "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def matrix_grid(section: ProfileSection) -> tuple[list[str], list[list[str]]]:
    """The measured matrix as headers and rows of text (render.format_cell)."""
    m = section.matrix
    models = render._ordered(m["model"], render.MODEL_COLUMNS)
    rows = []
    for workload in render._ordered(m["workload"], render.WORKLOAD_ROWS):
        line = [render.WORKLOAD_ROWS.get(workload, workload)]
        for model in models:
            hit = m[(m["workload"] == workload) & (m["model"] == model)]
            line.append(render.format_cell(hit.iloc[0]).text if not hit.empty
                        else render.MISSING)
        rows.append(line)
    return ["workload", *models], rows


def guide_grid(guide: pandas.DataFrame) -> tuple[list[str], list[list[str]]]:
    cols = list(dict.fromkeys(guide["guide_column"]))
    rows = []
    for workload in render._ordered(guide["workload"], render.WORKLOAD_ROWS):
        g = guide[guide["workload"] == workload]
        rows.append([render.WORKLOAD_ROWS.get(workload, workload)]
                    + [str(g[g["guide_column"] == c]["claim_text"].iloc[0])
                       if (g["guide_column"] == c).any() else "" for c in cols])
    return ["workload (the guide)", *cols], rows


def markdown(data: ReportData, image_dir: str | None) -> str:
    """The report as Markdown; figures link ``image_dir/<key>.svg`` (or are left out
    with a note when ``image_dir`` is None)."""
    out: list[str] = ["# Python concurrency benchmark report\n"]
    out.append(f"Generated {fmt_time(data.generated_at)} from `{data.root}`; sweeps: "
               + ", ".join(f"`{s}`" for s in data.sweep_ids) + ".\n")
    if image_dir:
        out.append(f"Plots are SVG files in `{image_dir}/` next to this file.\n")
    else:
        out.append("Plots are omitted from this Markdown; the HTML report has them.\n")

    def fig(f: Figure) -> None:
        if f.svg is None:
            out.append(f"_{f.title}: {f.caption}_\n")
        elif image_dir:
            out.append(f"![{_md(f.title)}]({image_dir}/{f.key}.svg)\n\n_{f.caption}_\n")

    out.append("## Fleet\n")
    stable = stability_by_profile(data.stability)
    out.append(_md_table(
        ["sweep", "profile", "hosts", "Python", "build", "CPU", "usable CPUs", "NUMA", "memory",
         "host stability"],
        [[r["sweep_id"], r["profile_id"], r["hosts"], r["python_version"],
          build_text(r["free_threaded"], r["gil_enabled"]), r["cpu_model"], r["usable_cpus"],
          r["numa_nodes"], fmt_bytes(r["mem_total_bytes"]),
          stable.get((r["sweep_id"], r["profile_id"]), "")]
         for r in data.profiles.to_dict("records")]))
    if not data.stability.empty:
        out.append("\n### Host stability\n")
        out.append("From the speed probe timed before every repeat (see Method). A failed "
                   "control: this host's CPU-bound ratios are not to be trusted.\n")
        out.append(_md_table(STABILITY_HEADERS, stability_rows(data.stability)))
    out.append("\n## Sweeps\n")
    out.append(_md_table(
        ["sweep", "started", "took", "status", "inventory", "profile", "hosts", "envs failed",
         "cells ok", "partial", "failed", "timeout", "n/a"],
        [[r["sweep_id"], fmt_time(r["started_at"]), fmt_duration(r["duration_s"]), r["status"],
          r["inventory"], r["profile"], r["n_hosts"], r["n_envs_failed"], r["n_cells_ok"],
          r["n_cells_partial"], r["n_cells_failed"], r["n_cells_timeout"],
          r["n_cells_not_applicable"]] for r in data.sweeps.to_dict("records")]))
    failures, na = problem_tables(data.problems)
    out.append("\n### What failed and why\n")
    out.append(_md_table(["sweep", "what", "host", "python", "cell", "reason"], failures)
               if failures else "Nothing failed.\n")
    if na:
        out.append("\n### Not applicable\n")
        out.append(_md_table(["reason", "cells"], na))

    out.append("\n## Matrix per profile\n")
    g_headers, g_rows = guide_grid(data.guide)
    for s in data.sections:
        out.append(f"### {_md(s.title)}\n\nsweep `{s.sweep_id}`, profile `{s.profile_id}`\n")
        headers, rows = matrix_grid(s)
        out.append(_md_table(headers, rows))
        out.append("\nThe guide's table:\n")
        out.append(_md_table(g_headers, g_rows))
        fig(s.figure)
    out.append("\n## Free-threaded against standard build\n")
    if data.build_figures:
        for f in data.build_figures:
            fig(f)
    else:
        out.append(f"No host ran both builds: {NOT_MEASURED}.\n")
    out.append("\n## More measurements\n")
    for v in data.views:
        out.append(f"### {v.spec.title}\n")
        if not v.figures:
            out.append(f"{NOT_MEASURED.capitalize()} (view `{v.spec.view}` "
                       + ("has no rows for them).\n" if v.present else "is not defined).\n"))
        for f in v.figures:
            fig(f)

    out.append("\n## The guide's claims, checked\n")
    sentence, why = claims_overview(data.sections)
    out.append(sentence + "\n")
    if why:
        out += [f"- {_md(line)}" for line in why]
        out.append("")
    out.append(_md_table(["claim", "confirmed", "refuted", "inconclusive", "not testable",
                          "not measurable", "measured here"],
                         [[claim_line(r), r["n_confirmed"], r["n_refuted"],
                           r["n_inconclusive"], r["n_not_testable"], r["n_not_measurable"],
                           r["measured"]]
                          for r in data.claims_summary.to_dict("records")]))
    for s in data.sections:
        out.append(f"\n### {_md(s.title)}\n")
        out.append(_md_table(["claim", "measured", "verdict", "note"],
                             [[claim_line(r), fmt_speedup(r["speedup"], r["speedup_ci_low"],
                                                          r["speedup_ci_high"]),
                               r["verdict"], r["note"]] for r in s.claims.to_dict("records")]))
    out.append("\n## Decision guide (from these measurements)\n")
    for s in data.sections:
        out.append(f"\n### {_md(s.title)}\n")
        out.append(_md_table(["workload", "use", "measured", "why", "the guide says"],
                             [[render.WORKLOAD_ROWS.get(r["workload"], r["workload"]),
                               *decision_text(r), f"{r['guide_choice']} {r['guide_claim']}"]
                              for r in s.decisions.to_dict("records")]))
        out.append("\nThresholds measured here, in place of the guide's numbers:\n")
        out.append(_md_table(["rule", "measured here", "details", "the guide says"],
                             [[rule, summary, "; ".join(details), guide]
                              for rule, summary, details, guide
                              in threshold_rows(s.thresholds, s.thresholds_error)]))
    out.append("\n## Method\n")
    out += [f"- {n}" for n in method_notes(data.claim_tolerance)]
    out.append(f"- {STABILITY_NOTE}")
    return "\n".join(out) + "\n"


def stability_by_profile(stability: pandas.DataFrame) -> dict[tuple[str, str], str]:
    """(sweep, profile) -> its environments' stability verdicts, e.g. 'h1 stable,
    h2 unstable (control failed)' (analysis/noise.sql: host_noise, control_checks)."""
    out: dict[tuple[str, str], list[str]] = {}
    for r in stability.to_dict("records"):
        text = f"{r['host']} {r['verdict']}"
        if r.get("control_failed") is True:
            text += " (control failed)"
        out.setdefault((r["sweep_id"], r["profile_id"]), []).append(text)
    return {k: ", ".join(v) for k, v in out.items()}


STABILITY_HEADERS = ["sweep", "host", "python", "stability", "why", "probes", "median probe",
                     "p90/p10", "steal", "control"]


def stability_rows(stability: pandas.DataFrame) -> list[list[str]]:
    """One row per environment: its stability verdict, the rules it triggered, the probe
    statistics behind them, and the built-in control (passed, failed, or not run: a
    free-threaded build or no CPU-bound threads/asyncio cell)."""
    rows = []
    for r in stability.to_dict("records"):
        def num(key: str, fmt: str, r: dict[str, object] = r) -> str:
            value = r.get(key)
            return "—" if render._missing(value) else fmt.format(value)

        failed = r.get("control_failed")
        control = ("—" if render._missing(failed) else
                   f"failed: {r['control_detail']}" if failed else "passed")
        rows.append([str(r["sweep_id"]), str(r["host"]), str(r["python"]), str(r["verdict"]),
                     "" if render._missing(r.get("reasons")) else str(r["reasons"]),
                     num("n_probes", "{}"),
                     "—" if render._missing(r.get("probe_median_s"))
                     else fmt_seconds(r["probe_median_s"]),
                     num("p90_p10", "{:.2f}"), num("steal_mean_pct", "{:.1f}%"), control])
    return rows


def problem_tables(problems: pandas.DataFrame) -> tuple[list[list[str]], list[list[str]]]:
    """(failures: environment and cell failures with reasons; not-applicable reasons
    with the cells they cover)."""
    failures: list[list[str]] = []
    na: dict[str, list[str]] = {}
    for r in problems.to_dict("records"):
        cell = "" if render._missing(r["workload"]) else f"{r['workload']}/{r['model']}"
        if r["kind"] == "not_applicable":
            na.setdefault(str(r["reason"]), []).append(f"{r['host']} {cell}")
            continue
        failures.append([str(r["sweep_id"]), str(r["kind"]), str(r["host"]),
                         "" if render._missing(r["python"]) else str(r["python"]), cell,
                         "" if render._missing(r["reason"]) else str(r["reason"])])
    return failures, [[reason, f"{len(cells)}: " + ", ".join(cells[:6])
                       + (" …" if len(cells) > 6 else "")] for reason, cells in na.items()]


# --------------------------------------------------------------------------- writing


def _write_text(path: Path, text: str) -> None:
    """Write a file whole or not at all (temp file + rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_out(out: Path) -> Path:
    if out.suffix.lower() not in SUFFIXES:
        raise OptionError(f"--out {out}: the report is FILE.html or FILE.md, not {out.suffix!r}",
                          hint="e.g. --out report.html")
    if out.exists() and out.is_dir():
        raise OptionError(f"--out {out} is a directory")
    if not out.parent.exists():
        raise OptionError(f"--out {out}: directory {out.parent} does not exist")
    return out


def write_report(warehouse: Warehouse, out: Path, sweep_refs: Sequence[str] = (), *,
                 all_sweeps: bool = False) -> list[Path]:
    """Write the report to ``out`` (.html or .md); returns the files written."""
    check_out(out)
    data = gather(warehouse, sweep_refs, all_sweeps=all_sweeps)
    if not data.sections and data.sweeps.empty:
        raise WarehouseInputError("nothing to report: no sweep selected")
    if out.suffix.lower() == ".html":
        from harness.report_html import html

        _write_text(out, html(data))
        return [out]
    image_dir = out.parent / f"{out.stem}_files"
    figures = [s.figure for s in data.sections] + list(data.build_figures)
    figures += [f for v in data.views for f in v.figures]
    written: list[Path] = []
    drawn = [f for f in figures if f.svg]
    if drawn:
        image_dir.mkdir(exist_ok=True)
        for f in drawn:
            path = image_dir / f"{f.key}.svg"
            _write_text(path, '<?xml version="1.0" encoding="utf-8"?>\n' + (f.svg or ""))
            written.append(path)
    _write_text(out, markdown(data, image_dir.name if drawn else None))
    return [out, *written]
