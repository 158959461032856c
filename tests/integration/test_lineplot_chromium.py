"""The report's line plots (harness.report.lineplot, through view_figure and
history_figure) laid out by a real browser: in headless Chromium, with its real fonts,
no text of a plot overlaps another text or the axes, and nothing is outside the plot's
own box (clipped), at a wide and a narrow page; several plots share one page."""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path

import pandas
import pytest

from harness.report.html import CSS
from harness.report.plots import VIEW_PLOTS, Figure, history_figure, view_figure
from tests.integration.test_report import DevTools, _evaluate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SPECS = {s.view: s for s in VIEW_PLOTS}
LONG = "fleet1, fleet2, fleet3 · AMD EPYC 7B13 64-Core · 2 usable CPUs · Python 3.13.1"

LAYOUT_JS = """[...document.querySelectorAll('figure svg')].map(s => {
  const box = s.getBoundingClientRect();
  const axes = s.querySelector('.lp-axes').getBoundingClientRect();
  const texts = [...s.querySelectorAll('text')].map(t => {
    const r = t.getBoundingClientRect();
    return {text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
  });
  const shapes = [...s.querySelectorAll('path, circle')].map(p => {
    const r = p.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom};
  });
  return {box: {left: box.left, right: box.right, top: box.top, bottom: box.bottom},
          axes: {left: axes.left, right: axes.right, top: axes.top, bottom: axes.bottom},
          texts, shapes};
})"""


def figures() -> list[Figure]:
    """A line plot of each dimension view and a history plot, with long and unfriendly
    labels, many series and values spanning decades."""
    out = []
    workers = [1, 2, 4, 8, 16, 32, 64]
    models = ["threads", "processes", "mp_pool", "interpreters", "asyncio"]
    scaling = pandas.DataFrame([
        {"model": m, "workers": w, "speedup": min(w, 2) * (0.3 + 0.15 * i) + 0.05,
         "ideal_speedup": min(w, 2)} for i, m in enumerate(models) for w in workers])
    crossover = pandas.DataFrame([
        {"model": m, "python": p, "task_s": t, "speedup": t * 3000 * (i + 1)}
        for i, m in enumerate(models[:3]) for p in ("3.12", "3.13t")
        for t in (1e-4, 1e-3, 1e-2, 5e-2)])
    transfer = pandas.DataFrame([
        {"model": m, "transport": tr, "payload_bytes": b, "per_task_s": 1e-5 * b ** 0.5}
        for m in ("threads", "processes") for tr in ("pickle", "shared_memory <&>")
        for b in (1024, 2**20, 2**24, 2**30)])
    memory = pandas.DataFrame([
        {"workload": wl, "model": m, "workers": w, "worker_peak_rss_bytes": (20 + w) * 2**20}
        for wl in ("cpu_bound", "transfer") for m in ("processes", "mp_pool")
        for w in workers[:4]])
    gil = pandas.DataFrame([{"model": m, "gil": g, "speedup": 1.2 + g + i / 4}
                            for i, m in enumerate(models[:3]) for g in (0, 1)])
    for view, rows in (("scaling", scaling), ("crossover_points", crossover),
                       ("transfer_cost", transfer), ("worker_memory", memory),
                       ("gil_effect", gil)):
        title = f"{SPECS[view].title} — {LONG}"
        out.append(view_figure(SPECS[view], f"{view}0", title, rows))
    lines = [(f"{wl} · {m} 'quoted' & <tagged>", [1.0, 1.1 + i / 10, 0.7, 1.9], [2])
             for i, (wl, m) in enumerate([("cpu_bound", "threads"), ("net", "asyncio"),
                                          ("disk_io", "processes")])]
    out.append(history_figure("history0", f"{LONG}: medians over 4 sweeps", 4, lines))
    assert all(f.svg for f in out)
    return out


def page(figs: list[Figure]) -> str:
    body = "".join(f'<figure data-figure="{f.key}">{f.svg}</figure>' for f in figs)
    return ('<!doctype html><html><head><meta name="viewport" content="width=device-width, '
            f'initial-scale=1"><style>{CSS}</style></head><body><main>{body}</main></body>'
            "</html>")


def overlap(a: dict[str, float], b: dict[str, float], slack: float) -> bool:
    return (min(a["right"], b["right"]) - max(a["left"], b["left"]) > slack
            and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > slack)


def inside(a: dict[str, float], box: dict[str, float], slack: float) -> bool:
    return (a["left"] >= box["left"] - slack and a["right"] <= box["right"] + slack
            and a["top"] >= box["top"] - slack and a["bottom"] <= box["bottom"] + slack)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (.ci/run installs it: "
                                             "apt-get install -y chromium)")
def test_line_plots_laid_out_in_chromium(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    html = tmp_path / "plots.html"
    figs = figures()
    html.write_text(page(figs), encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cdp = DevTools(CHROMIUM, Path(profile))
        try:
            session = cdp.open_tab()
            cdp.send("Page.enable", {}, session)
            cdp.send("Page.navigate", {"url": html.resolve().as_uri()}, session)
            cdp.wait_event("Page.loadEventFired", timeout=60)
            layouts = {}
            for width in (1400, 400):
                cdp.send("Emulation.setDeviceMetricsOverride",
                         {"width": width, "height": 1000, "deviceScaleFactor": 1,
                          "mobile": width < 600}, session)
                time.sleep(0.2)
                layouts[width] = _evaluate(cdp, session, LAYOUT_JS)
        finally:
            cdp.close()
    for width, plots in layouts.items():
        assert len(plots) == len(figs)
        for fig, p in zip(figs, plots, strict=True):
            where = f"{fig.key} at {width}px"
            scale = (p["box"]["right"] - p["box"]["left"]) / 500  # slack: half a unit
            assert p["box"]["right"] <= width and len(p["texts"]) > 10, where
            for t in p["texts"]:
                assert inside(t, p["box"], scale), f"{where}: {t['text']!r} clipped"
                assert not overlap(t, p["axes"], scale), f"{where}: {t['text']!r} on the axes"
            for i, a in enumerate(p["texts"]):
                for b in p["texts"][i + 1:]:
                    assert not overlap(a, b, scale), f"{where}: {a['text']!r} on {b['text']!r}"
            for s in p["shapes"]:
                assert inside(s, p["box"], scale + 1), f"{where}: a shape outside: {s}"
            assert math.isclose(p["box"]["right"] - p["box"]["left"],
                                min(width - 32, 760), rel_tol=0.02), where
