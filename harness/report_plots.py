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

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas  # noqa: E402

from harness import render  # noqa: E402

NOT_MEASURED = "not measured in these sweeps"

COLORS = ("#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8d6a9f")


@dataclass(frozen=True)
class Figure:
    """One plot: its title, the SVG text (None when not drawn) and a caption or the reason."""

    key: str
    title: str
    svg: str | None
    caption: str


def _svg(fig: plt.Figure, key: str) -> str:
    """The figure as an inline <svg> element: text as text, no XML prolog, no metadata,
    ids salted with ``key`` so several figures can share one HTML page."""
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
    return None if render._missing(value) else float(value)  # type: ignore[arg-type]


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
    workloads = render._ordered(ran["workload"], render.WORKLOAD_ROWS)
    models = render._ordered(ran["model"], render.MODEL_COLUMNS)
    labels: list[str] = []
    with matplotlib.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(7.0, 0.28 * len(ran) + 1.4))
        y = 0
        ticks: list[float] = []
        xs: list[float] = []
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
                color = COLORS[models.index(model) % len(COLORS)]
                if lo is not None and hi is not None:
                    ax.errorbar([s], [y], xerr=[[s - lo], [hi - s]], fmt="o", color=color,
                                capsize=3, markersize=5)
                    xs += [lo, hi]
                else:
                    ax.plot([s], [y], "o", color=color)
                xs.append(s)
                labels.append(f"{render.WORKLOAD_ROWS.get(workload, workload)} · {model}")
                ticks.append(y)
                y -= 1
            y -= 0.6
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
            labels.append(f"{render.WORKLOAD_ROWS.get(r['workload'], r['workload'])} · "
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
    """A line plot of an optional view: x against y, one line per series column."""

    view: str
    title: str
    x: tuple[str, ...]
    y: tuple[str, ...]
    logx: bool = False
    logy: bool = False


VIEW_PLOTS: tuple[ViewPlot, ...] = (
    ViewPlot("scaling", "Speedup by number of workers",
             ("workers",), ("speedup", "median_speedup"), logx=True, logy=True),
    ViewPlot("crossover", "CPU-bound: speedup by task duration (where parallel pays off)",
             ("task_s", "task_duration_s", "calibrated_task_s", "duration_s"),
             ("speedup", "median_speedup"), logx=True, logy=True),
    ViewPlot("transfer_cost", "Transfer cost by payload size",
             ("payload_bytes", "bytes", "payload"),
             ("per_task_s", "overhead_s", "transfer_s", "median_s", "speedup"),
             logx=True, logy=True),
    ViewPlot("worker_memory", "Memory per worker",
             ("workers",),
             ("rss_per_worker_bytes", "per_worker_bytes", "peak_rss_bytes", "rss_bytes"),
             logx=False),
    ViewPlot("gil_effect", "Free-threaded against GIL build",
             ("workers", "threads", "task_s"),
             ("speedup", "ratio", "speed_ratio", "time_ratio"), logx=True),
)


def _pick(columns: Sequence[str], wanted: Sequence[str]) -> str | None:
    return next((c for c in wanted if c in columns), None)


def view_figure(spec: ViewPlot, key: str, title: str, rows: pandas.DataFrame) -> Figure:
    """One line per (workload, model) of ``rows`` (the view's rows of one profile)."""
    x, y = _pick(list(rows.columns), spec.x), _pick(list(rows.columns), spec.y)
    if rows.empty:
        return Figure(key, title, None, NOT_MEASURED)
    if x is None or y is None:
        return Figure(key, title, None,
                      f"view {spec.view} has rows but none of the columns this plot needs "
                      f"(x: {', '.join(spec.x)}; y: {', '.join(spec.y)}); its rows are "
                      "listed below")
    series = [c for c in ("workload", "model", "python") if c in rows.columns
              and rows[c].nunique(dropna=True) > 1] or [c for c in ("model",) if c in rows]
    data = rows[[x, y, *series]].copy()
    data[x] = pandas.to_numeric(data[x], errors="coerce")
    data[y] = pandas.to_numeric(data[y], errors="coerce")
    data = data.dropna(subset=[x, y])
    if data.empty:
        return Figure(key, title, None, f"view {spec.view}: no numeric {x}/{y} values")
    with matplotlib.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(7.0, 3.6))
        groups = data.groupby(series, dropna=False) if series else [((), data)]
        for i, (name, g) in enumerate(groups):
            label = " · ".join(str(n) for n in (name if isinstance(name, tuple) else (name,)))
            g = g.sort_values(x)
            ax.plot(g[x], g[y], marker="o", markersize=4, color=COLORS[i % len(COLORS)],
                    label=label or None)
        if spec.logx and (data[x] > 0).all():
            ax.set_xscale("log")
        if spec.logy and (data[y] > 0).all():
            ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.grid(color="#dddddd", linewidth=0.6)
        if series:
            ax.legend(fontsize=7, loc="best")
        ax.set_title(title, loc="left", fontsize=10)
        svg = _svg(fig, key)
    return Figure(key, title, svg, f"from the view {spec.view}")
