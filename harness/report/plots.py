"""The report's plots as self-contained SVG text: the speedup and builds plots drawn by
matplotlib (Agg, imported on first use), the line plots of the dimension views and of
history written directly by :mod:`harness.report.lineplot` (a millisecond each).

Every plot is drawn from rows the views returned; a plot whose view is absent or has
no rows for the selected sweeps is not drawn (the report says "not measured in these
sweeps"), never replaced by an empty or made-up figure.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Sequence
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
from harness.report import lineplot
from harness.report.lineplot import MARKERS, Axis, Line, LinePlot, Rule

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

NOT_MEASURED = "not measured in these sweeps"

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
    lines: list[Line] = []
    if spec.ideal and spec.ideal in data:
        ideal = data.groupby(x)[spec.ideal].max().dropna().sort_index()
        if not ideal.empty:
            lines.append(Line(_points(ideal.index, ideal.to_numpy()), "#999999",
                              "ideal (min of workers and CPUs)", marker=None, dash="--",
                              width=1.0))
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
        lines.append(Line(_points(g[x], g[y]), color, label or None,
                          MARKERS[i % len(MARKERS)], style))
    plot = LinePlot(tuple(title.split(" — ", 1)), *_view_axes(spec, data, x, y),
                    tuple(lines), (Rule(spec.ref),) if spec.ref is not None else (),
                    legend="center" if series or spec.ideal else None)
    return Figure(key, title, lineplot.svg(plot), f"from the view {spec.view}")


def _points(xs: Iterable[object], ys: Iterable[object]) -> tuple[tuple[float, float], ...]:
    return tuple((float(a), float(b)) for a, b in zip(xs, ys, strict=True))  # type: ignore[arg-type]


def _line_colors(data: pandas.DataFrame, plain: list[str]) -> dict[tuple[str, ...], str]:
    """A colour per line (the values of the ``plain`` series columns): a model's own
    colour when lines are models only, else one per line in order of appearance."""
    keys = list(dict.fromkeys(
        tuple(r) for r in data[plain].astype(str).itertuples(index=False)))
    order = list(MODEL_COLUMNS)
    if plain == ["model"] and all(k[0] in order for k in keys):
        return {k: COLORS[order.index(k[0]) % len(COLORS)] for k in keys}
    return {k: COLORS[i % len(COLORS)] for i, k in enumerate(keys)}


def _view_axes(spec: ViewPlot, data: pandas.DataFrame, x: str, y: str) -> tuple[Axis, Axis]:
    """Log scales where the spec asks and every value is positive (the x ticks at the
    values, readable, for at most 8 of them), or a y axis from 0; a linear x axis with at
    most 8 values has its ticks at them."""
    xs = sorted(float(v) for v in data[x].unique())
    logx = spec.logx and xs[0] > 0
    x_axis = Axis(spec.x_label or x, log=logx,
                  ticks=tuple(xs) if len(xs) <= 8 else None,
                  tick_labels=tuple(_tick(v) for v in xs) if logx and len(xs) <= 8 else None)
    logy = spec.logy and bool((data[y] > 0).all())
    limits = ((0.0, max(float(data[y].max()) * 1.1, 1e-9))
              if spec.y_zero and not logy else None)
    return x_axis, Axis(spec.y_label or y, log=logy, limits=limits)


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
    plotted: list[Line] = []
    ys: list[float] = []
    for i, (label, values, steps) in enumerate(drawn):
        first = next(v for v in values if v is not None)
        pts = [(x + 1, v / first) for x, v in enumerate(values) if v is not None and first]
        rel = dict(pts)
        plotted.append(Line(tuple((float(a), float(b)) for a, b in pts), COLORS[i % len(COLORS)],
                            label, MARKERS[i % len(MARKERS)], width=1.2,
                            rings=tuple((float(s + 1), rel[s + 1]) for s in steps
                                        if s + 1 in rel)))
        ys += [y for _, y in pts]
    lo, hi = min([0.8, *ys]) / 1.1, max([1.25, *ys]) * 1.1
    sweeps = tuple(float(i) for i in range(1, n_sweeps + 1))
    plot = LinePlot(
        (title,),
        Axis("sweep, oldest first", ticks=sweeps, tick_labels=tuple(f"#{i:g}" for i in sweeps),
             grid=False),
        Axis("median time / first sweep's", log=True, limits=(lo, hi),
             ticks=tuple(t for t in HISTORY_TICKS if lo <= t <= hi), suffix="x"),
        tuple(plotted), (Rule(1.0, dash="--"),), legend="top", height=178.0)
    svg = lineplot.svg(plot)
    return Figure(key, title, svg, "lines: each headline cell's median time relative to its "
                                   "first sweep (above 1: slower); rings: a detected step")
