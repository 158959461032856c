"""The SVG line-plot writer (harness.report.lineplot) and the report's line plots drawn
with it (view_figure, history_figure): ticks, markers, legend, escaping, determinism,
missing points. The SVG is parsed as XML (it must be well formed to be parsed at all)."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pandas
import pytest

from harness.report import lineplot, plots
from harness.report.lineplot import PLOT_W, Axis, Line, LinePlot, Rule, linear_ticks, log_ticks
from harness.report.plots import VIEW_PLOTS, history_figure, view_figure

NS = "{http://www.w3.org/2000/svg}"


def parse(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{NS}svg"
    return root


def part(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == name]


def texts(group: ET.Element) -> list[str]:
    return [t.text or "" for t in group.iter(f"{NS}text")]


def numbers(d: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]


def tick_positions(root: ET.Element, axis: str) -> list[float]:
    """The x (axis "x") or y (axis "y") coordinate of each tick mark, in order."""
    (group,) = part(root, f"lp-{axis}ticks")
    return [numbers(p.get("d", ""))[0 if axis == "x" else 1] for p in group.iter(f"{NS}path")]


def axes_box(root: ET.Element) -> tuple[float, float, float, float]:
    """left, top, right, bottom of the axes (their spines: M left top V bottom H right)."""
    (axes,) = part(root, "lp-axes")
    left, top, bottom, right = numbers(axes.get("d", ""))
    return left, top, right, bottom


# --------------------------------------------------------------------------- ticks


@pytest.mark.parametrize(("lo", "hi"), [(0.03, 2.0), (0.9, 2.1), (1e-4, 0.06), (3, 900),
                                        (1e-9, 1e9), (1.1, 1.8), (0.5, 0.7)])
def test_log_ticks_are_increasing_and_within_the_range(lo: float, hi: float) -> None:
    ticks = log_ticks(lo, hi)
    assert len(ticks) >= 2, ticks
    assert ticks == sorted(set(ticks)) and lo <= ticks[0] and ticks[-1] <= hi
    assert len(ticks) <= 11


def test_log_ticks_are_1_2_5_times_a_power_of_ten() -> None:
    assert log_ticks(0.03, 2.0) == [0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
    assert log_ticks(0.9, 2.1) == [1.0, 2.0]
    wide = log_ticks(1e-9, 1e9)  # 57 candidates: decades only, every other
    assert all(math.log10(t) == round(math.log10(t)) for t in wide)
    # within one 1-2-5 step there is at most one: round linear ticks instead
    assert log_ticks(1.1, 1.8) == linear_ticks(1.1, 1.8)


@pytest.mark.parametrize(("lo", "hi"), [(0, 1), (-3.2, 7.9), (0, 134.5), (0.001, 0.0013),
                                        (5, 5)])
def test_linear_ticks_round_steps_within_the_range(lo: float, hi: float) -> None:
    ticks = linear_ticks(lo, hi)
    assert ticks == sorted(set(ticks)) and 1 <= len(ticks) <= 8
    assert lo - 1e-12 <= ticks[0] and ticks[-1] <= hi + 1e-12
    if len(ticks) > 1:
        step = ticks[1] - ticks[0]
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))
        assert all(math.isclose(b - a, step) for a, b in zip(ticks, ticks[1:], strict=False))
    assert linear_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


# --------------------------------------------------------------------------- the writer


def plot(**kw: object) -> LinePlot:
    lines = (Line(((1, 0.9), (2, 1.7), (4, 1.6)), "#1b6ca8", "processes", "s"),
             Line(((1, 1.0), (2, 1.02), (4, 1.05)), "#d1495b", "threads", "^", dash="--"),
             Line(((1, 1), (2, 2), (4, 2)), "#999999", "ideal", None, dash="--", width=1))
    args: dict[str, object] = {
        "title": ("Speedup", "fleet1 · 2 CPUs"), "x": Axis("workers", log=True,
                                                          ticks=(1, 2, 4)),
        "y": Axis("speedup", log=True), "lines": lines, "rules": (Rule(1.0),)}
    args.update(kw)
    return LinePlot(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("log", [True, False])
def test_ticks_are_monotone_and_within_the_axes(log: bool) -> None:
    root = parse(lineplot.svg(plot(x=Axis("workers", log=log), y=Axis("speedup", log=log))))
    left, top, right, bottom = axes_box(root)
    xs, ys = tick_positions(root, "x"), tick_positions(root, "y")
    assert len(xs) >= 2 and len(ys) >= 2
    assert xs == sorted(xs) and all(left <= v <= right for v in xs)
    assert ys == sorted(ys, reverse=True) and all(top <= v <= bottom for v in ys)  # y down
    (xt,) = part(root, "lp-xticks")
    (yt,) = part(root, "lp-yticks")
    labels = [float(t) for t in texts(yt)]
    assert labels == sorted(labels)
    if log:  # 1, 2 and 5 x 10^k
        assert set(texts(yt)) <= {"0.5", "1", "2"} and len(texts(xt)) == len(xs)
    # the viewBox holds the axes, and width/height match it
    w, h = (float(root.get(a, "").removesuffix("pt")) for a in ("width", "height"))
    assert root.get("viewBox") == f"0 0 {lineplot._n(w)} {lineplot._n(h)}"
    assert left > 0 and right < w and top > 0 and bottom < h


def test_log_x_ticks_at_the_given_values_evenly_spaced_by_ratio() -> None:
    root = parse(lineplot.svg(plot()))
    x1, x2, x4 = tick_positions(root, "x")
    assert math.isclose(x2 - x1, x4 - x2, abs_tol=0.02)  # 1 -> 2 as far as 2 -> 4
    (xt,) = part(root, "lp-xticks")
    assert texts(xt) == ["1", "2", "4"]
    left, _, right, _ = axes_box(root)
    assert math.isclose(x1 - left, right - x4, abs_tol=0.02)  # equal margins
    assert x1 - left == pytest.approx(PLOT_W / 1.1 * 0.05, abs=0.02)


def test_a_marker_per_point_and_a_legend_entry_per_labelled_line() -> None:
    root = parse(lineplot.svg(plot()))
    lines = part(root, "lp-line")
    assert len(lines) == 3
    for g, markers in zip(lines, (3, 3, 0), strict=True):
        paths = g.findall(f"{NS}path")
        assert len(paths) == 1 + markers  # the line, then its markers
        assert paths[0].get("fill") == "none"
    assert lines[1].findall(f"{NS}path")[0].get("stroke-dasharray") == "5.55 2.4"
    (legend,) = part(root, "lp-legend")
    assert texts(legend) == ["processes", "threads", "ideal"]
    (rule,) = part(root, "lp-rule")
    assert rule.get("stroke-dasharray") and rule.get("stroke") == "#444444"
    assert [t.text for t in part(root, "lp-title")] == ["Speedup", "fleet1 · 2 CPUs"]
    assert len(part(root, "lp-grid")) == 1


def test_the_legend_sits_right_of_the_axes_and_below_nothing() -> None:
    root = parse(lineplot.svg(plot()))
    _, top, right, bottom = axes_box(root)
    (legend,) = part(root, "lp-legend")
    for t in legend.iter(f"{NS}text"):
        assert float(t.get("x", "")) > right and top <= float(t.get("y", "")) <= bottom
    # a legend taller than the axes grows the figure; every entry stays inside it
    many = tuple(Line(((1, i + 1.0), (2, i + 2.0)), "#1b6ca8", f"series {i}")
                 for i in range(30))
    root = parse(lineplot.svg(plot(lines=many)))
    h = float(root.get("height", "").removesuffix("pt"))
    (legend,) = part(root, "lp-legend")
    ys = [float(t.get("y", "")) for t in legend.iter(f"{NS}text")]
    assert len(ys) == 30 and min(ys) > 0 and max(ys) < h


def test_text_from_data_is_escaped() -> None:
    nasty = 'a<b & "c" \'d\' </svg>'
    p = plot(title=(nasty, "two"), x=Axis(nasty), y=Axis(nasty, log=True),
             lines=(Line(((1, 1), (2, 2)), "#1b6ca8", nasty),))
    text = lineplot.svg(p)
    assert "<b " not in text and "</svg>" not in text[:-6]
    root = parse(text)
    assert nasty in [t.text for t in root.iter(f"{NS}text")]
    assert root.get("aria-label") == f"{nasty} two"
    (legend,) = part(root, "lp-legend")
    assert texts(legend) == [nasty]


def test_the_same_plot_gives_the_same_text() -> None:
    assert lineplot.svg(plot()) == lineplot.svg(plot())
    assert lineplot.svg(plot()) != lineplot.svg(plot(rules=()))


def test_missing_points_break_the_line_and_have_no_marker() -> None:
    nan = float("nan")
    lines = (Line(((1, 1.0), (2, nan), (3, 2.0), (4, 3.0)), "#1b6ca8", "gappy"),
             Line((), "#d1495b", "empty"),
             Line(((nan, nan),), "#2e933c", "all missing"),
             Line(((1, -1.0), (2, 0.0), (3, 2.5)), "#edae49", "not on a log axis"))
    root = parse(lineplot.svg(plot(x=Axis("x"), y=Axis("y", log=True), lines=lines)))
    gappy, empty, missing, nonpositive = part(root, "lp-line")
    paths = gappy.findall(f"{NS}path")
    assert len(paths) == 1 + 3
    assert paths[0].get("d", "").count("M") == 2  # two runs: (1), (3, 4)
    assert list(empty) == [] and list(missing) == []
    assert len(nonpositive.findall(f"{NS}path")) == 2  # one run of one point, its marker
    for p in root.iter(f"{NS}path"):
        assert "nan" not in p.get("d", "").lower() and "inf" not in p.get("d", "").lower()
    (legend,) = part(root, "lp-legend")
    assert len(texts(legend)) == 4


def test_fixed_limits_widen_to_hold_the_data() -> None:
    root = parse(lineplot.svg(plot(x=Axis("x"), y=Axis("y", limits=(0, 1.0)))))
    (yt,) = part(root, "lp-yticks")
    values = [float(t) for t in texts(yt)]
    assert values[0] == 0 and values[-1] >= 2  # the ideal line reaches 2
    _, top, _, bottom = axes_box(root)
    assert tick_positions(root, "y")[0] == bottom


def test_bad_marker_dash_legend_are_refused() -> None:
    with pytest.raises(ValueError, match="marker"):
        Line(((1, 1),), "#000000", marker="*")
    with pytest.raises(ValueError, match="dash"):
        Line(((1, 1),), "#000000", dash="-.")
    with pytest.raises(ValueError, match="legend"):
        plot(legend="left")
    with pytest.raises(ValueError, match="tick_labels"):
        Axis("x", ticks=(1, 2), tick_labels=("one",))


# --------------------------------------------------------------------------- the report's


SPECS = {s.view: s for s in VIEW_PLOTS}


def scaling_rows() -> pandas.DataFrame:
    return pandas.DataFrame({
        "model": ["sequential", "threads", "threads", "threads", "processes", "processes",
                  "processes", "mp_pool"],
        "workers": [1, 1, 2, 4, 1, 2, 4, 2],
        "speedup": [1.0, 0.99, 1.02, 1.05, 0.93, 1.75, 1.6, None],
        "ideal_speedup": [1, 1, 2, 2, 1, 2, 2, 2]})


def test_view_figure_scaling() -> None:
    rows = scaling_rows()
    fig = view_figure(SPECS["scaling"], "scaling0", "CPU-bound — fleet & co", rows)
    root = parse(fig.svg or "")
    (legend,) = part(root, "lp-legend")
    # the ideal first, then the models (mp_pool had no speedup: no line)
    assert texts(legend) == ["ideal (min of workers and CPUs)", "processes", "threads"]
    ideal, processes, threads = part(root, "lp-line")
    assert ideal.find(f"{NS}path").get("stroke") == "#999999"  # type: ignore[union-attr]
    assert len(threads.findall(f"{NS}path")) == 1 + 3
    assert processes.find(f"{NS}path").get("stroke") == "#2e933c"  # type: ignore[union-attr]
    (xt,) = part(root, "lp-xticks")
    assert texts(xt) == ["1", "2", "4"]
    assert [t.text for t in part(root, "lp-title")] == ["CPU-bound", "fleet & co"]
    assert part(root, "lp-rule")  # speedup 1
    assert [t.text for t in part(root, "lp-ylabel")] == ["speedup over sequential (log scale)"]
    # the rows' order does not matter
    again = view_figure(SPECS["scaling"], "scaling0", "CPU-bound — fleet & co",
                        rows.iloc[::-1].reset_index(drop=True))
    assert again.svg == fig.svg


def test_view_figure_bytes_ticks_dashes_and_y_from_zero() -> None:
    transfer = pandas.DataFrame({
        "model": ["threads"] * 3 + ["processes"] * 6,
        "transport": ["pickle"] * 6 + ["shm"] * 3,
        "payload_bytes": [1024, 2**20, 2**24] * 3,
        "per_task_s": [0.011, 0.012, 0.02, 0.008, 0.011, 0.06, 0.007, 0.008, 0.009]})
    root = parse(view_figure(SPECS["transfer_cost"], "t0", "Transfer", transfer).svg or "")
    (xt,) = part(root, "lp-xticks")
    assert texts(xt) == ["1Ki", "1Mi", "16Mi"]
    labels = texts(part(root, "lp-legend")[0])
    lines = part(root, "lp-line")
    dashed = {lab for lab, g in zip(labels, lines, strict=True)
              if g.find(f"{NS}path").get("stroke-dasharray")}  # type: ignore[union-attr]
    assert dashed == {"processes · shm"}  # transports after the first are dashed
    memory = pandas.DataFrame({"workload": ["cpu_bound"] * 3 + ["transfer"] * 2,
                               "model": ["processes"] * 5, "workers": [1, 2, 4, 2, 2],
                               "worker_peak_rss_bytes": [25 * 2**20] * 3 + [100 * 2**20,
                                                                            120 * 2**20]})
    root = parse(view_figure(SPECS["worker_memory"], "m0", "Memory", memory).svg or "")
    (yt,) = part(root, "lp-yticks")
    assert texts(yt)[0] == "0" and float(texts(yt)[-1]) <= 132  # 0 to max x 1.1
    _, _, _, bottom = axes_box(root)
    assert tick_positions(root, "y")[0] == bottom
    lines = part(root, "lp-line")
    assert [len(g.findall(f"{NS}path")) - 1 for g in lines] == [3, 1]  # max of the two at 2
    # a y label longer than the axes are high: two lines, both kept
    ylabel = [t.text or "" for t in part(root, "lp-ylabel")]
    assert " ".join(ylabel) == SPECS["worker_memory"].y_label and len(ylabel) == 2


def test_history_figure_rings_and_ticks() -> None:
    fig = history_figure("history0", "host <a> & b", 4,
                         [("cpu_bound · threads", [1.0, 1.02, 1.5, 1.49], [2]),
                          ("once", [1.0, None, None, None], []),
                          ("net · asyncio", [2.0, None, 1.9, 2.1], [])])
    root = parse(fig.svg or "")
    (xt,) = part(root, "lp-xticks")
    assert texts(xt) == ["#1", "#2", "#3", "#4"]
    (yt,) = part(root, "lp-yticks")
    assert all(t.endswith("x") for t in texts(yt)) and "1x" in texts(yt)
    assert texts(part(root, "lp-legend")[0]) == ["cpu_bound · threads", "net · asyncio"]
    assert len(part(root, "lp-ring")) == 1
    assert [t.text for t in part(root, "lp-title")] == ["host <a> & b"]
    assert part(root, "lp-grid")[0].get("d", "").count("V") == 0  # y grid only


def test_crowded_tick_labels_are_thinned_roundest_first() -> None:
    """40 sweeps on a history plot, and its fixed y ticks over two decades: every k-th
    tick, no two labels closer than their estimated sizes, the roundest value kept (#10,
    1x)."""
    n = 40
    fig = history_figure("history0", "many sweeps", n,
                         [("a", [1.0] + [0.12] * 19 + [9.0] * 20, []),
                          ("b", [1.0 + i / 100 for i in range(n)], [])])
    root = parse(fig.svg or "")
    (xt,) = part(root, "lp-xticks")
    labels = texts(xt)
    xs = tick_positions(root, "x")
    assert "#10" in labels and 3 <= len(labels) < n
    for (a, la), (b, lb) in zip(zip(xs, labels, strict=True), zip(xs[1:], labels[1:],
                                                                  strict=True), strict=False):
        assert b - a >= lineplot.text_width(la, lineplot.FONT) / 2 + lineplot.text_width(
            lb, lineplot.FONT) / 2
    (yt,) = part(root, "lp-yticks")
    ys = tick_positions(root, "y")
    assert "1x" in texts(yt) and 3 <= len(ys) < len(plots.HISTORY_TICKS)
    assert all(a - b >= lineplot.FONT for a, b in zip(ys, ys[1:], strict=False))
