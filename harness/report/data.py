"""What the report shows, gathered from the views into immutable records.

Every number comes from the views (analysis/views.sql, compare.sql, claims.sql,
report.sql, noise.sql and the optional dimension views when present): :func:`gather`
asks them for the selected sweeps and returns a :class:`ReportData`; nothing here
formats text (:mod:`harness.report.text`, :mod:`harness.report.sections`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas

from harness.errors import WarehouseInputError
from harness.formatting import matrix_key, missing
from harness.render import profile_title
from harness.report.drawing import Drawer
from harness.report.over_time import OverTime, gather_over_time
from harness.report.plots import (
    VIEW_PLOTS,
    Figure,
    ViewPlot,
    builds_figure,
    speedup_figure,
    view_figure,
)
from harness.report.sql import keep_shared_views, query, relation_exists, resolve_sweeps
from harness.stability import STABILITY_SQL
from harness.warehouse import Warehouse


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
    """The views' answers for the selected sweeps, one DataFrame per question."""

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
    # environments in two or more of the sweeps, over those sweeps (view history)
    over_time: tuple[OverTime, ...] = ()
    # ft_overhead (analysis/freethreading.sql): free-threaded over standard, same version
    ft_overhead: pandas.DataFrame = field(default_factory=pandas.DataFrame)
    # ft_parallel_gain: CPU-bound threads by workers on both builds, PYTHON_GIL=0/1
    ft_parallel_gain: pandas.DataFrame = field(default_factory=pandas.DataFrame)


def matrix_sorted(df: pandas.DataFrame) -> pandas.DataFrame:
    """The rows in the matrix's order (formatting.matrix_key: the guide's workloads, then
    the catalogue's models), ties in their order; a new 0..n-1 index."""
    if df.empty or "workload" not in df:
        return df.reset_index(drop=True)
    models = df["model"] if "model" in df else [None] * len(df)
    keys = [matrix_key(None if missing(w) else w, None if missing(m) else m)
            for w, m in zip(df["workload"], models, strict=True)]
    order = sorted(range(len(keys)), key=keys.__getitem__)  # stable
    return df.iloc[order].reset_index(drop=True)


# --------------------------------------------------------------------------- gathering


def _in(sweeps: Sequence[str]) -> str:
    return "(" + ", ".join("?" for _ in sweeps) + ")"


def _build_figures(con: duckdb.DuckDBPyConnection, sweeps: Sequence[str],
                   drawer: Drawer) -> list[Figure]:
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
        title = (f"{p['host']}: Python {p['b_version']} free-threaded against "
                 f"{p['a_version']} standard (sweep {p['sweep_id']})")
        figures.append(drawer.add(builds_figure, f"builds{i}", title, f"builds{i}", title,
                                  matrix_sorted(cells), f"{p['a_label']} (standard)",
                                  f"{p['b_label']} (free-threaded)"))
    return figures


def _ft_view(con: duckdb.DuckDBPyConnection, view: str, sweeps: Sequence[str],
             order: str) -> pandas.DataFrame:
    """A free-threading view's rows for the sweeps (ft_overhead, ft_parallel_gain of
    analysis/freethreading.sql; none when the view is not defined)."""
    if not relation_exists(con, view):
        return pandas.DataFrame()
    return query(con, f"SELECT * FROM {view} WHERE sweep_id IN {_in(sweeps)} ORDER BY {order}",
                 list(sweeps))


def _view_sections(con: duckdb.DuckDBPyConnection, sweeps: Sequence[str],
                   titles: dict[tuple[str, str], str], drawer: Drawer) -> list[ViewSection]:
    """Each optional view of VIEW_PLOTS: absent, or its rows and a figure per profile."""
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
            groups = (_in_profile_order(rows.groupby(keys, dropna=False, sort=False), titles)
                      if keys else [((), rows)])
            for i, (key, g) in enumerate(groups):
                label = titles.get(tuple(key), " · ".join(str(k) for k in key)) if keys else ""
                title = spec.title + (f" — {label}" if label else "")
                key = f"{spec.view}{i}"
                figures.append(drawer.add(view_figure, key, title, spec, key, title, g))
        out.append(ViewSection(spec, True, rows, tuple(figures)))
    return out


def _in_profile_order(groups: Iterable[tuple[Any, pandas.DataFrame]],
                      titles: dict[tuple[str, str], str]) -> list[tuple[Any, pandas.DataFrame]]:
    """A view's (sweep, profile) groups in the order of the profile sections, the others
    after them by name: the same figure keys for the same rows whatever order DuckDB
    answered them in (its parallel scans vary), so a warm report finds them cached."""
    order = {k: i for i, k in enumerate(titles)}
    return sorted(groups, key=lambda kg: (order.get(tuple(kg[0]), len(order)),
                                          str(tuple(kg[0]))))


def _select_sweeps(warehouse: Warehouse, sweep_refs: Sequence[str],
                   all_sweeps: bool) -> list[str]:
    """The sweeps to report: the references given, every sweep, or by default the latest
    sweep of each inventory."""
    if sweep_refs:
        return list(warehouse.resolve_sweep_ids(sweep_refs))
    if all_sweeps:
        sweeps = warehouse.sweep_ids()
        if not sweeps:
            raise WarehouseInputError(f"no sweep in {warehouse.root}",
                                      hint="run `harness sweep` first")
        return list(sweeps)
    light = warehouse.connect(for_sql="sweeps")  # a question for the sweeps view only
    try:
        return resolve_sweeps(warehouse, light, sweep_refs, default="per-inventory")
    finally:
        light.close()


def _thresholds(con: duckdb.DuckDBPyConnection,
                p: list[str]) -> tuple[pandas.DataFrame, str | None]:
    """The thresholds view's rows, or why it failed (a dimension view redefined without a
    column it reads)."""
    empty = pandas.DataFrame(columns=["sweep_id", "profile_id", "threshold"])
    if not relation_exists(con, "thresholds"):
        return empty, None
    try:
        return query(con, f"SELECT * FROM thresholds WHERE sweep_id IN {_in(p)} ORDER BY "
                          "sweep_id, profile_id, threshold, workload, model, variant", p), None
    except WarehouseInputError as e:
        return empty, e.message


def _speedup_figures(profiles: pandas.DataFrame, matrix: pandas.DataFrame,
                     guide: pandas.DataFrame, drawer: Drawer,
                     ) -> dict[tuple[str, str], tuple[str, pandas.DataFrame, Figure]]:
    """Per (sweep, profile) that has matrix cells, in the profiles' order: its title, its
    matrix rows and its plot (asked of ``drawer`` before the other queries, so that it is
    drawn while they run)."""
    out: dict[tuple[str, str], tuple[str, pandas.DataFrame, Figure]] = {}
    for i, prof in enumerate(profiles.to_dict("records")):
        sid, pid = prof["sweep_id"], prof["profile_id"]
        m = matrix[(matrix["sweep_id"] == sid) & (matrix["profile_id"] == pid)]
        if m.empty:
            continue
        title = profile_title(m)
        key = f"speedup{i}"
        out[(sid, pid)] = (title, m, drawer.add(speedup_figure, key, title, key, title, m,
                                                guide))
    return out


def _profile_sections(speedups: dict[tuple[str, str], tuple[str, pandas.DataFrame, Figure]],
                      claims: pandas.DataFrame, decisions: pandas.DataFrame,
                      thresholds: pandas.DataFrame,
                      thresholds_error: str | None) -> list[ProfileSection]:
    """One section per (sweep, profile) of ``speedups``, in its order."""
    sections: list[ProfileSection] = []
    for (sid, pid), (title, m, fig) in speedups.items():
        c = claims[(claims["sweep_id"] == sid) & (claims["profile_id"] == pid)]
        d = decisions[(decisions["sweep_id"] == sid) & (decisions["profile_id"] == pid)]
        t = thresholds[(thresholds["sweep_id"] == sid) & (thresholds["profile_id"] == pid)]
        sections.append(ProfileSection(sid, pid, title, m, matrix_sorted(c), matrix_sorted(d),
                                       fig, t.reset_index(drop=True), thresholds_error))
    return sections


def gather(warehouse: Warehouse, sweep_refs: Sequence[str] = (), *,
           all_sweeps: bool = False) -> ReportData:
    """Everything the report shows, for the selected sweeps (default: the latest sweep
    of each inventory; ``all_sweeps``: every sweep). The figures are drawn last, after
    the queries (:mod:`harness.report.drawing`: from the figure cache, or in parallel)."""
    # The sweeps first, so the connection reads only their partitions: binding the
    # views over every sweep of a large warehouse costs seconds.
    sweeps = _select_sweeps(warehouse, sweep_refs, all_sweeps)
    with Drawer(warehouse.root if warehouse.root.is_dir() else None) as drawer:
        con = warehouse.connect(sweeps)
        try:
            data = _gather(warehouse, con, list(sweeps), drawer)
        finally:
            con.close()
        return _with_figures(data, drawer.draw())


def _with_figures(data: ReportData, figures: dict[str, Figure]) -> ReportData:
    """``data`` with each placeholder figure replaced by the drawn one of its key."""
    return replace(
        data,
        sections=tuple(replace(s, figure=figures[s.figure.key]) for s in data.sections),
        build_figures=tuple(figures[f.key] for f in data.build_figures),
        views=tuple(replace(v, figures=tuple(figures[f.key] for f in v.figures))
                    for v in data.views),
        over_time=tuple(replace(o, figure=figures[o.figure.key]) for o in data.over_time))


def _gather(warehouse: Warehouse, con: duckdb.DuckDBPyConnection, p: list[str],
            drawer: Drawer) -> ReportData:
    """The views' answers for the sweeps ``p``, the figures asked of ``drawer``: the
    queries the figures need first, so that drawing overlaps the other queries."""
    keep_shared_views(con)
    profiles = query(con, f"SELECT * FROM profiles WHERE sweep_id IN {_in(p)} "
                          "ORDER BY sweep_id, usable_cpus DESC, free_threaded, "
                          "python_version, profile_id", p)
    guide = query(con, "SELECT * FROM guide_table")
    matrix = query(con, f"SELECT * FROM profile_matrix WHERE sweep_id IN {_in(p)}", p)
    speedups = _speedup_figures(profiles, matrix, guide, drawer)
    titles = {k: title for k, (title, _, _) in speedups.items()}
    views = _view_sections(con, p, titles, drawer)
    build_figures = _build_figures(con, p, drawer)
    over_time = gather_over_time(con, p, drawer)

    sweep_rows = query(con, f"SELECT * FROM sweep_summary WHERE sweep_id IN {_in(p)} "
                            "ORDER BY started_at", p)
    problems = query(con, f"SELECT * FROM sweep_problems WHERE sweep_id IN {_in(p)} "
                          "ORDER BY sweep_id, kind, host, python, workload, model", p)
    envs = query(con, f"SELECT sweep_id, host, python, python_version, implementation, "
                      f"free_threaded, gil_enabled, usable_cpus, logical_cpus, cpu_model, "
                      f"numa_nodes, mem_total_bytes, profile_id, status, error "
                      f"FROM environments WHERE sweep_id IN {_in(p)} "
                      f"ORDER BY sweep_id, host, python", p)
    stability = query(con, STABILITY_SQL, [p])
    summary = query(con, "SELECT * FROM claims_summary_of(?::VARCHAR[])", [p])
    tolerance = float(query(con, "SELECT claim_tolerance() AS t")["t"].iloc[0])
    claims = query(con, f"SELECT * FROM claims WHERE sweep_id IN {_in(p)}", p)
    decisions = query(con, f"SELECT * FROM decisions WHERE sweep_id IN {_in(p)}", p)
    thresholds, thresholds_error = _thresholds(con, p)
    sections = _profile_sections(speedups, claims, decisions, thresholds, thresholds_error)
    return ReportData(
        generated_at=datetime.now(UTC), root=warehouse.root, sweep_ids=tuple(p),
        sweeps=sweep_rows, problems=problems, profiles=profiles, environments=envs,
        guide=guide, claims_summary=matrix_sorted(summary), sections=tuple(sections),
        build_figures=tuple(build_figures), stability=stability, views=tuple(views),
        claim_tolerance=tolerance, over_time=over_time,
        ft_overhead=_ft_view(con, "ft_overhead", p, "sweep_id, host, minor, workload"),
        ft_parallel_gain=_ft_view(con, "ft_parallel_gain", p,
                                  "sweep_id, host, minor, ft_python, workers"))
