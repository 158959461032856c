"""The report's plots: matplotlib (Agg) figures rendered to self-contained SVG text.

Every plot is drawn from rows the views returned; a plot whose view is absent or has
no rows for the selected sweeps is not drawn (the report says "not measured in these
sweeps"), never replaced by an empty or made-up figure.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

import pandas

from harness.formatting import (
    MODEL_COLUMNS,
    WORKLOAD_ROWS,
    missing,
    ordered,
    workload_title,
)

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

NOT_MEASURED = "not measured in these sweeps"

MARKERS = ("o", "s", "^", "D", "v", "P", "X")
COLORS = ("#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8d6a9f")


@dataclass(frozen=True)
class Figure:
    """One plot: its title, the SVG text (None when not drawn) and a caption or the reason."""

    key: str
    title: str
    svg: str | None
    caption: str


def _pyplot() -> tuple[ModuleType, ModuleType]:
    """matplotlib (Agg backend, ticker loaded) and pyplot, imported on first use: a report
    whose figures all come from the cache never imports them (0.4 s)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot  # noqa: PLC0415
    import matplotlib.ticker  # noqa: F401, PLC0415

    return matplotlib, pyplot


def _svg(fig: plt.Figure, key: str) -> str:
    """The figure as an inline <svg> element: text as text, no XML prolog, no metadata,
    ids salted with ``key`` so several figures can share one HTML page."""
    matplotlib, plt = _pyplot()
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": key}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    return text.strip()


def _num(value: object) -> float | None:
    return None if missing(value) else float(value)  # type: ignore[arg-type]


def _style() -> dict[str, object]:
    return {"font.size": 9, "font.family": "sans-serif", "axes.spines.top": False,
            "axes.spines.right": False}


# --------------------------------------------------------------------------- speedups


def speedup_figure(key: str, title: str, rows: pandas.DataFrame,
                   guide: pandas.DataFrame) -> Figure:
    """Speedup per model (points, with their intervals) per workload of one profile; the
    guide's claimed range drawn as a grey band on the same line. ``rows``: profile_matrix
    rows of one (sweep, profile); ``guide``: guide_table."""
    ran = rows[rows["speedup"].notna() & rows["model"].ne("sequential")]
    if ran.empty:
        return Figure(key, title, None, "no cell of this profile ran besides sequential")
    workloads = ordered(ran["workload"], WORKLOAD_ROWS)
    models = ordered(ran["model"], MODEL_COLUMNS)
    labels: list[str] = []
    matplotlib, plt = _pyplot()
    with matplotlib.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(7.0, 0.28 * len(ran) + 1.4))
        y = 0
        ticks: list[float] = []
        xs: list[float] = []
        points: dict[str, list[tuple[float, float, float, float]]] = {}  # s, y, -err, +err
        bare: dict[str, list[tuple[float, float]]] = {}  # no interval
        for workload in workloads:
            for model in models:
                hit = ran[(ran["workload"] == workload) & (ran["model"] == model)]
                if hit.empty:
                    continue
                r = hit.iloc[0]
                s = float(r["speedup"])
                lo, hi = _num(r["speedup_ci_low"]), _num(r["speedup_ci_high"])
                claim = guide[(guide["workload"] == workload) & (guide["model"] == model)]
                if not claim.empty:
                    c = claim.iloc[0]
                    ax.fill_betweenx([y - 0.35, y + 0.35], float(c["claim_low"]),
                                     float(c["claim_high"]) * (1.0001 if c["claim_low"] ==
                                                               c["claim_high"] else 1),
                                     color="#bbbbbb", alpha=0.6, linewidth=0)
                if lo is not None and hi is not None:
                    points.setdefault(model, []).append((s, y, s - lo, hi - s))
                    xs += [lo, hi]
                else:
                    bare.setdefault(model, []).append((s, y))
                xs.append(s)
                labels.append(f"{workload_title(workload)} · {model}")
                ticks.append(y)
                y -= 1
            y -= 0.6
        # one errorbar artist per model, not per point (the same picture, far fewer
        # artists for matplotlib to lay out and write)
        for model, pts in points.items():
            ss, ys, below, above = zip(*pts, strict=True)
            ax.errorbar(ss, ys, xerr=[below, above], fmt="o", capsize=3, markersize=5,
                        color=COLORS[models.index(model) % len(COLORS)])
        for model, bare_pts in bare.items():
            ax.plot(*zip(*bare_pts, strict=True), "o",
                    color=COLORS[models.index(model) % len(COLORS)])
        ax.axvline(1.0, color="#444444", linewidth=0.8, linestyle="--")
        ax.set_xscale("log")
        finite = [x for x in xs if x > 0 and math.isfinite(x)]
        lo_x = min([0.5, *finite]) / 1.3
        hi_x = max([2.0, *finite]) * 1.3
        for c in guide[guide["workload"].isin(workloads)].itertuples():
            hi_x = max(hi_x, float(c.claim_high) * 1.1)
        ax.set_xlim(lo_x, hi_x)
        ax.set_yticks(ticks, labels)
        ax.set_xlabel("speedup over sequential (log scale); grey: the guide's claimed range")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_title(title, loc="left", fontsize=10)
        svg = _svg(fig, key)
    return Figure(key, title, svg, "points: median speedup; bars: its interval (matrix)")


def builds_figure(key: str, title: str, cells: pandas.DataFrame, a_name: str,
                  b_name: str) -> Figure:
    """Speedups of two builds on the same host side by side (compare_pairs rows, A the
    standard build, B the free-threaded one)."""
    ran = cells[cells["a_speedup"].notna() | cells["b_speedup"].notna()]
    ran = ran[ran["model"].ne("sequential")]
    if ran.empty:
        return Figure(key, title, None, "no cell ran on both builds")
    matplotlib, plt = _pyplot()
    with matplotlib.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(7.0, 0.34 * len(ran) + 1.4))
        labels: list[str] = []
        xs: list[float] = []
        for i, r in enumerate(ran.to_dict("records")):
            y = -i
            for side, name, color, dy in (("a", a_name, COLORS[0], 0.15),
                                          ("b", b_name, COLORS[1], -0.15)):
                s = _num(r[f"{side}_speedup"])
                if s is None:
                    continue
                lo, hi = _num(r[f"{side}_speedup_ci_low"]), _num(r[f"{side}_speedup_ci_high"])
                err = [[s - lo], [hi - s]] if lo is not None and hi is not None else None
                ax.errorbar([s], [y + dy], xerr=err, fmt="o", color=color, capsize=3,
                            markersize=5, label=name if i == 0 else None)
                xs += [x for x in (s, lo, hi) if x is not None]
            labels.append(f"{workload_title(r['workload'])} · "
                          f"{r['model']}")
        ax.axvline(1.0, color="#444444", linewidth=0.8, linestyle="--")
        ax.set_xscale("log")
        finite = [x for x in xs if x > 0 and math.isfinite(x)]
        ax.set_xlim(min([0.5, *finite]) / 1.3, max([2.0, *finite]) * 1.3)
        ax.set_yticks([-i for i in range(len(labels))], labels)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.set_xlabel("speedup over sequential on each build (log scale)")
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title(title, loc="left", fontsize=10)
        svg = _svg(fig, key)
    return Figure(key, title, svg, "each build against its own sequential baseline")


# --------------------------------------------------------------------------- other views


@dataclass(frozen=True)
class ViewPlot:
    """A line plot of a dimension view: x against y, one line per series.

    ``x``/``y`` list acceptable column names (the first present is used); ``series``
    the columns whose values name a line (those present, plus workload/model/python
    when they vary); ``agg``: how several rows at one (series, x) are combined
    (``max`` or ``median``; None: plotted as they are); ``y_scale`` multiplies y (units);
    ``ideal``: a column drawn as a dashed grey reference line; ``ref``: a horizontal
    reference (speedup 1).
    """

    view: str
    title: str
    x: tuple[str, ...]
    y: tuple[str, ...]
    logx: bool = False
    logy: bool = False
    series: tuple[str, ...] = ("model",)
    agg: str | None = None
    x_label: str | None = None
    y_label: str | None = None
    y_scale: float = 1.0
    ideal: str | None = None
    ref: float | None = None
    y_zero: bool = False  # the y axis starts at 0
    dash_by: str | None = None  # a series column whose values after the first are dashed


VIEW_PLOTS: tuple[ViewPlot, ...] = (
    ViewPlot("scaling", "CPU-bound: speedup by number of workers",
             ("workers",), ("speedup",), logx=True, logy=True,
             x_label="workers (log scale)",
             y_label="speedup over sequential (log scale)", ideal="ideal_speedup", ref=1.0),
    ViewPlot("crossover_points",
             "CPU-bound: speedup by task duration (where parallel pays off)",
             ("task_s",), ("speedup",), logx=True, logy=True,
             x_label="duration of one task, s (log scale)",
             y_label="speedup over sequential (log scale)", ref=1.0),
    ViewPlot("transfer_cost", "Transfer cost by payload size",
             ("payload_bytes",), ("per_task_s",), logx=True, logy=True,
             series=("model", "transport"), x_label="payload per task, bytes (log scale)",
             y_label="wall time per task, ms (log scale)", y_scale=1e3,
             dash_by="transport"),
    ViewPlot("worker_memory", "Peak memory of one worker process",
             ("workers",), ("worker_peak_rss_bytes",), series=("workload", "model"),
             agg="max", x_label="workers",
             y_label="largest worker's peak RSS, MiB (max over the cells)",
             y_scale=1 / 2**20, y_zero=True),
    ViewPlot("gil_effect", "Free-threaded build: GIL off (0) against on (1)",
             ("gil",), ("speedup",),
             x_label="PYTHON_GIL (0: GIL off, 1: GIL on)",
             y_label="speedup over sequential (same GIL setting)",
             ref=1.0),
)


def _pick(columns: Sequence[str], wanted: Sequence[str]) -> str | None:
    return next((c for c in wanted if c in columns), None)


def view_figure(spec: ViewPlot, key: str, title: str, rows: pandas.DataFrame) -> Figure:
    """One line per series of ``rows`` (the view's rows of one profile)."""
    x, y = _pick(list(rows.columns), spec.x), _pick(list(rows.columns), spec.y)
    if rows.empty:
        return Figure(key, title, None, NOT_MEASURED)
    if x is None or y is None:
        return Figure(key, title, None,
                      f"view {spec.view} has rows but none of the columns this plot needs "
                      f"(x: {', '.join(spec.x)}; y: {', '.join(spec.y)}); its rows are "
                      "listed below")
    series = [c for c in ("workload", "model", "python") if c in rows.columns
              and rows[c].nunique(dropna=True) > 1]
    series += [c for c in spec.series if c in rows.columns and c not in series]
    keep = [x, y, *series] + ([spec.ideal] if spec.ideal in rows.columns else [])
    if y == "speedup" and "model" in rows.columns:
        rows = rows[rows["model"].ne("sequential")]  # 1.0 against itself by definition
    data = rows[list(dict.fromkeys(keep))].copy()
    data[x] = pandas.to_numeric(data[x], errors="coerce")
    data[y] = pandas.to_numeric(data[y], errors="coerce") * spec.y_scale
    data = data.dropna(subset=[x, y])
    if data.empty:
        reasons = (sorted(set(rows["reason"].dropna().astype(str)))
                   if "reason" in rows.columns else [])
        return Figure(key, title, None, f"no {y} measured here"
                      + (": " + "; ".join(reasons) if reasons else ""))
    if spec.agg and series:
        data = data.groupby([*series, x], dropna=False, as_index=False).agg(
            {y: spec.agg, **({spec.ideal: "max"} if spec.ideal in data else {})})
    matplotlib, plt = _pyplot()
    with matplotlib.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(7.0, 3.6))
        if spec.ideal and spec.ideal in data:
            ideal = data.groupby(x)[spec.ideal].max().dropna().sort_index()
            if not ideal.empty:
                ax.plot(ideal.index, ideal.values, linestyle="--", color="#999999",
                        linewidth=1, label="ideal (min of workers and CPUs)")
        if spec.ref is not None:
            ax.axhline(spec.ref, color="#444444", linewidth=0.8, linestyle=":")
        plain = [c for c in series if c != spec.dash_by]
        colors = _line_colors(data, plain)
        dashed = (sorted(set(data[spec.dash_by].astype(str)))[1:]
                  if spec.dash_by in data else [])
        groups = data.groupby(series, dropna=False) if series else [((), data)]
        for i, (name, g) in enumerate(groups):
            name = name if isinstance(name, tuple) else (name,)
            label = " · ".join(str(n) for n in name)
            values = dict(zip(series, (str(n) for n in name), strict=True))
            color = colors.get(tuple(values[c] for c in plain), COLORS[i % len(COLORS)])
            style = "--" if values.get(spec.dash_by or "") in dashed else "-"
            if not spec.dash_by and i >= len(COLORS):
                style = "--"
            g = g.sort_values([x, y], kind="mergesort")  # one order for points at one x
            ax.plot(g[x], g[y], marker=MARKERS[i % len(MARKERS)], markersize=4, color=color,
                    label=label or None, linestyle=style)
        _scale_axes(ax, spec, data, x, y)
        ax.set_xlabel(spec.x_label or x)
        ax.set_ylabel(spec.y_label or y)
        ax.grid(color="#dddddd", linewidth=0.6)
        if series or spec.ideal:
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5),
                      frameon=False)
        ax.set_title(title.replace(" — ", "\n", 1), loc="left", fontsize=10)
        svg = _svg(fig, key)
    return Figure(key, title, svg, f"from the view {spec.view}")


def _line_colors(data: pandas.DataFrame, plain: list[str]) -> dict[tuple[str, ...], str]:
    """A colour per line (the values of the ``plain`` series columns): a model's own
    colour when lines are models only, else one per line in order of appearance."""
    keys = list(dict.fromkeys(
        tuple(r) for r in data[plain].astype(str).itertuples(index=False)))
    order = list(MODEL_COLUMNS)
    if plain == ["model"] and all(k[0] in order for k in keys):
        return {k: COLORS[order.index(k[0]) % len(COLORS)] for k in keys}
    return {k: COLORS[i % len(COLORS)] for i, k in enumerate(keys)}


def _scale_axes(ax: plt.Axes, spec: ViewPlot, data: pandas.DataFrame, x: str, y: str) -> None:
    """Log scales where the spec asks and every value is positive (readable ticks for at
    most 8 x values), or a y axis from 0."""
    matplotlib, _ = _pyplot()
    if spec.logx and (data[x] > 0).all():
        ax.set_xscale("log")
        xs = sorted(data[x].unique())
        if len(xs) <= 8:
            ax.set_xticks(xs, [_tick(v) for v in xs])
            ax.minorticks_off()
    if spec.logy and (data[y] > 0).all():
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    elif spec.y_zero:
        ax.set_ylim(bottom=0, top=max(float(data[y].max()) * 1.1, 1e-9))
    if not spec.logx and data[x].nunique() <= 8:
        ax.set_xticks(sorted(data[x].unique()))


def _tick(v: float) -> str:
    """A log-axis tick label: 1024 -> 1Ki, 1048576 -> 1Mi, 0.001 -> 0.001."""
    for unit, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if v >= size and v % size == 0:
            return f"{v / size:g}{unit}"
    return f"{v:g}"


# --------------------------------------------------------------------------- history


HISTORY_TICKS = (0.1, 0.2, 0.25, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0,
                 5.0, 10.0)


def history_figure(key: str, title: str, n_sweeps: int,
                   lines: Sequence[tuple[str, Sequence[float | None], Sequence[int]]],
                   ) -> Figure:
    """Each cell's median time over the sweeps of one environment, relative to its first
    sweep (log scale), a ring on the first sweep after each detected step. ``lines``:
    (label, the medians by sweep index (None: not run), the step indices)."""
    drawn = [(label, values, steps) for label, values, steps in lines
             if sum(v is not None for v in values) >= 2]
    if not drawn:
        return Figure(key, title, None, "no cell ran in two of these sweeps")
    matplotlib, plt = _pyplot()
    with matplotlib.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(7.0, 3.2))
        ys: list[float] = []
        for i, (label, values, steps) in enumerate(drawn):
            first = next(v for v in values if v is not None)
            pts = [(x + 1, v / first) for x, v in enumerate(values) if v is not None and first]
            color = COLORS[i % len(COLORS)]
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker=MARKERS[i % len(MARKERS)],
                    color=color, linewidth=1.2, markersize=4, label=label)
            rel = dict(pts)
            for s in steps:
                if s + 1 in rel:
                    ax.plot([s + 1], [rel[s + 1]], "o", markersize=11, markerfacecolor="none",
                            markeredgecolor=color, markeredgewidth=1.4)
            ys += [y for _, y in pts]
        ax.axhline(1.0, color="#444444", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        lo, hi = min([0.8, *ys]) / 1.1, max([1.25, *ys]) * 1.1
        ax.set_ylim(lo, hi)
        ax.set_yticks([t for t in HISTORY_TICKS if lo <= t <= hi])
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xticks(range(1, n_sweeps + 1), [f"#{i}" for i in range(1, n_sweeps + 1)])
        ax.set_xlabel("sweep, oldest first")
        ax.set_ylabel("median time / first sweep's")
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_title(title, loc="left", fontsize=10)
        svg = _svg(fig, key)
    return Figure(key, title, svg, "lines: each headline cell's median time relative to its "
                                   "first sweep (above 1: slower); rings: a detected step")
