"""Line plots written as SVG text directly (stdlib only): the report's dimension views
and history, drawn in about a millisecond each instead of matplotlib's 0.15 s.

A :class:`LinePlot` is lines with markers over two axes (linear or log), grid lines at
the ticks, horizontal reference lines (:class:`Rule`), a legend to the right of the axes
and a title of one or more lines above them, left-aligned; :func:`svg` writes it as one
inline ``<svg>`` element. Text is ``<text>`` (sans-serif) placed with widths estimated
from character counts (:data:`CHAR_EM`, generous: no font metrics are needed), every
string XML-escaped; no ids, so any number of plots share one HTML page. The same plot
gives the same text.

The axes' limits always hold every finite point (log axes: every positive one) and every
rule, with matplotlib's 5% margins unless fixed limits are given (widened to the data if
they would cut it); a point that is not finite breaks its line there and has no marker.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

FONT = 9.0  # tick labels and axis labels
TITLE_FONT = 10.0
LEGEND_FONT = 7.0
CHAR_EM = 0.62  # a character's width, in ems, estimated high (sans-serif digits ~0.64)
PLOT_W, PLOT_H = 390.0, 200.0  # the axes' area (matplotlib's 7 x 3.6 in figure)
PAD = 4.0  # around everything
TICK = 3.5  # tick length and the gap from a tick to its label
MARGIN = 0.05  # of the data range, each side (matplotlib's axes.xmargin)
GRID = "#dddddd"
DASHES = {"-": "", "--": "3.7 1.6", ":": "1 1.65"}  # per unit of line width (matplotlib)
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


@dataclass(frozen=True)
class Line:
    """One series: its points (in order), colour, legend label (None: not in the legend),
    marker (one of :data:`MARKERS`, None: no markers), dash (a key of :data:`DASHES`),
    line width, marker diameter, and points to ring (open circles: history's steps)."""

    points: tuple[tuple[float, float], ...]
    color: str
    label: str | None = None
    marker: str | None = "o"
    dash: str = "-"
    width: float = 1.5
    marker_size: float = 4.0
    rings: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.marker is not None and self.marker not in MARKERS:
            raise ValueError(f"marker {self.marker!r} is not one of {MARKERS}")
        if self.dash not in DASHES:
            raise ValueError(f"dash {self.dash!r} is not one of {tuple(DASHES)}")


@dataclass(frozen=True)
class Rule:
    """A horizontal reference line across the axes at ``y``."""

    y: float
    color: str = "#444444"
    dash: str = ":"
    width: float = 0.8


@dataclass(frozen=True)
class Axis:
    """An axis: its label, scale, ticks (None: chosen from its limits; ``tick_labels``
    None: ``f"{v:g}{suffix}"``), fixed limits (None: the data's with margins) and
    whether grid lines are drawn at its ticks."""

    label: str
    log: bool = False
    ticks: tuple[float, ...] | None = None
    tick_labels: tuple[str, ...] | None = None
    limits: tuple[float, float] | None = None
    suffix: str = ""
    grid: bool = True

    def __post_init__(self) -> None:
        if self.tick_labels is not None and (self.ticks is None
                                             or len(self.ticks) != len(self.tick_labels)):
            raise ValueError("tick_labels needs ticks of the same length")


@dataclass(frozen=True)
class LinePlot:
    """A whole plot. ``legend``: ``"center"`` (centred beside the axes), ``"top"``
    (level with their top) or None; the legend lists the lines with a label, in order."""

    title: tuple[str, ...]
    x: Axis
    y: Axis
    lines: tuple[Line, ...]
    rules: tuple[Rule, ...] = ()
    legend: str | None = "center"
    height: float = PLOT_H

    def __post_init__(self) -> None:
        if self.legend not in ("center", "top", None):
            raise ValueError(f"legend {self.legend!r}: 'center', 'top' or None")


# --------------------------------------------------------------------------- ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks for a log axis from ``lo`` to ``hi`` (both > 0): 1, 2 and 5 x 10^k; decades
    only when those are more than 10; linear ticks when at most one would show."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for subs in ((1.0, 2.0, 5.0), (1.0,)):
        ticks = [_clean(m * 10.0**k) for k in range(first, last + 1) for m in subs]
        ticks = [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
        if len(ticks) <= 10:
            break
    stride = max(1, math.ceil(len(ticks) / 10))
    ticks = ticks[::stride]
    if len(ticks) <= 1:
        ticks = [t for t in linear_ticks(lo, hi) if t > 0]
    return ticks


def linear_ticks(lo: float, hi: float, most: int = 7) -> list[float]:
    """At most ``most`` evenly spaced round ticks (steps 1, 2, 2.5, 5 x 10^k) from ``lo``
    to ``hi``."""
    if not hi > lo:
        return [_clean(lo)]
    raw = (hi - lo) / most
    base = 10.0 ** math.floor(math.log10(raw))
    step = next(m * base for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * base >= raw)
    start = math.ceil(lo / step - 1e-9)
    ticks = []
    k = start
    while k * step <= hi + step * 1e-9:
        ticks.append(_clean(k * step))
        k += 1
    return ticks


def _clean(v: float) -> float:
    """``v`` without the binary noise of its computation (0.30000000000000004 -> 0.3)."""
    return float(f"{v:.12g}")


def _limits(values: Sequence[float], axis: Axis) -> tuple[float, float]:
    """The axis' range: holding every value, with margins unless fixed limits are set."""
    if axis.log:
        values = [math.log10(v) for v in values if v > 0]
    if axis.limits is not None:
        lo, hi = axis.limits
        if axis.log:
            lo, hi = math.log10(lo), math.log10(hi)
        lo, hi = min([lo, *values]), max([hi, *values])
    elif values:
        lo, hi = min(values), max(values)
        if hi == lo:  # one value: a range around it
            half = 0.3 if axis.log else (abs(lo) * 0.1 or 1.0)
            lo, hi = lo - half, hi + half
        span = hi - lo
        lo, hi = lo - span * MARGIN, hi + span * MARGIN
    else:
        lo, hi = 0.0, 1.0
    return (10.0**lo, 10.0**hi) if axis.log else (lo, hi)


@dataclass(frozen=True)
class _Scale:
    """Data to SVG coordinates along one axis: ``lo`` at ``start``, ``hi`` at ``end``."""

    lo: float
    hi: float
    log: bool
    start: float
    end: float

    def __call__(self, v: float) -> float:
        f = math.log10 if self.log else float
        return self.start + (f(v) - f(self.lo)) / (f(self.hi) - f(self.lo)) * (
            self.end - self.start)

    def holds(self, v: float) -> bool:
        return math.isfinite(v) and (v > 0 or not self.log)


def _ticks(axis: Axis, lo: float, hi: float) -> list[tuple[float, str]]:
    """(value, label) of each tick within [lo, hi]."""
    if axis.ticks is not None:
        labels = axis.tick_labels or tuple(f"{t:g}{axis.suffix}" for t in axis.ticks)
        return [(t, s) for t, s in zip(axis.ticks, labels, strict=True) if lo <= t <= hi]
    values = log_ticks(lo, hi) if axis.log else linear_ticks(lo, hi)
    return [(t, f"{t:g}{axis.suffix}") for t in values if lo <= t <= hi]


def _thin(ticks: list[tuple[float, str]], scale: _Scale,
          size: Callable[[str], float]) -> list[tuple[float, str]]:
    """Every k-th tick, k the smallest for which no two labels run into each other
    (``size``: a label's extent along the axis), counted from the roundest value (fewest
    significant digits, 1 x 10^k first; of those the one nearest the middle), so that
    it keeps its label (1x on a history plot)."""
    if len(ticks) < 2:
        return ticks

    def roundness(i: int) -> tuple[int, int, float]:
        mantissa = f"{abs(ticks[i][0]):e}".split("e")[0].rstrip("0").rstrip(".")
        return (len(mantissa.replace(".", "")), mantissa != "1",
                abs(i - (len(ticks) - 1) / 2))

    anchor = min(range(len(ticks)), key=roundness)
    at = [scale(v) for v, _ in ticks]
    extent = [size(label) for _, label in ticks]
    for k in range(1, len(ticks) + 1):
        kept = list(range(anchor % k, len(ticks), k))
        if all(abs(at[b] - at[a]) >= (extent[a] + extent[b]) / 2
               for a, b in zip(kept, kept[1:], strict=False)):
            break
    return [ticks[i] for i in kept]


# --------------------------------------------------------------------------- layout


def text_width(text: str, size: float) -> float:
    """``text``'s estimated width at font ``size`` (generous)."""
    return len(text) * size * CHAR_EM


def _wrap(text: str, width: float, size: float) -> list[str]:
    """``text`` in two lines (split at the space nearest its middle) when one is wider
    than ``width``."""
    if text_width(text, size) <= width or " " not in text:
        return [text]
    spaces = [i for i, c in enumerate(text) if c == " "]
    cut = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return [text[:cut], text[cut + 1:]]


def _n(v: float) -> str:
    """A coordinate: two decimals, trailing zeros dropped."""
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def _text(x: float, y: float, text: str, size: float, anchor: str = "start",
          extra: str = "") -> str:
    return (f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}"'
            + (f' text-anchor="{anchor}"' if anchor != "start" else "")
            + f"{extra}>{escape(text)}</text>")


def _stroke(color: str, width: float, dash: str) -> str:
    out = f'stroke="{color}" stroke-width="{_n(width)}"'
    if DASHES[dash]:
        out += ' stroke-dasharray="' + " ".join(
            _n(float(d) * width) for d in DASHES[dash].split()) + '"'
    return out


def _marker(kind: str, cx: float, cy: float, size: float, color: str) -> str:
    """A filled marker of diameter ``size`` centred on (cx, cy), as a path."""
    r = size / 2
    if kind == "o":
        arc = f"a{_n(r)} {_n(r)} 0 1 0"
        d = f"M{_n(cx - r)} {_n(cy)}{arc} {_n(2 * r)} 0{arc} {_n(-2 * r)} 0z"
    else:
        d = "M" + "L".join(f"{_n(cx + dx * r)} {_n(cy + dy * r)}"
                           for dx, dy in _SHAPES[kind]) + "z"
    return f'<path d="{d}" fill="{color}" stroke="{color}" stroke-width="0.8"/>'


_T = 1 / 3  # the arm half-width of the plus and cross markers
_SHAPES: dict[str, tuple[tuple[float, float], ...]] = {
    "s": ((-1, -1), (1, -1), (1, 1), (-1, 1)),
    "^": ((0, -1), (1, 1), (-1, 1)),
    "v": ((0, 1), (1, -1), (-1, -1)),
    "D": ((0, -1.4), (1.4, 0), (0, 1.4), (-1.4, 0)),
    "P": ((-_T, -1), (_T, -1), (_T, -_T), (1, -_T), (1, _T), (_T, _T), (_T, 1), (-_T, 1),
          (-_T, _T), (-1, _T), (-1, -_T), (-_T, -_T)),
    "X": ((0, -2 * _T), (0.7, -1), (1, -0.7), (2 * _T, 0), (1, 0.7), (0.7, 1), (0, 2 * _T),
          (-0.7, 1), (-1, 0.7), (-2 * _T, 0), (-1, -0.7), (-0.7, -1)),
}


def _runs(line: Line, x: _Scale, y: _Scale) -> list[list[tuple[float, float]]]:
    """The line's points in SVG coordinates, split where a point cannot be drawn."""
    runs: list[list[tuple[float, float]]] = [[]]
    for px, py in line.points:
        if x.holds(px) and y.holds(py):
            runs[-1].append((x(px), y(py)))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


@dataclass(frozen=True)
class _Frame:
    """Where everything goes: the scales (the axes' box is their ranges), the ticks, the
    y label's lines, the legend's corner and row height, the whole size."""

    x: _Scale
    y: _Scale
    xticks: list[tuple[float, str]]
    yticks: list[tuple[float, str]]
    ylabel: list[str]
    legend_x: float
    legend_y: float
    row: float
    width: float
    height: float


def _frame(plot: LinePlot) -> _Frame:
    """The layout: the left margin holds the y label and tick labels, the top the title
    (and half a legend taller than the axes), the right the last x tick label's overhang
    and the legend, the bottom the x tick labels and label."""
    points = [p for line in plot.lines for p in (*line.points, *line.rings)]
    xs = [p[0] for p in points if math.isfinite(p[0])] + list(plot.x.ticks or ())
    ys = [p[1] for p in points if math.isfinite(p[1])]
    ys += [r.y for r in plot.rules if math.isfinite(r.y)]
    (xlo, xhi), (ylo, yhi) = _limits(xs, plot.x), _limits(ys, plot.y)
    xticks = _thin(_ticks(plot.x, xlo, xhi), _Scale(xlo, xhi, plot.x.log, 0, PLOT_W),
                   lambda s: text_width(s, FONT) + 4)
    yticks = _thin(_ticks(plot.y, ylo, yhi), _Scale(ylo, yhi, plot.y.log, 0, plot.height),
                   lambda s: FONT * 1.2)

    ylabel = _wrap(plot.y.label, plot.height, FONT)
    ytick_w = max([text_width(s, FONT) for _, s in yticks] or [0.0])
    xtick_half = text_width(xticks[0][1], FONT) / 2 if xticks else 0.0
    left = max(PAD + len(ylabel) * FONT * 1.2 + 4 + ytick_w + 2 * TICK, PAD + xtick_half)
    entries = [line for line in plot.lines if line.label] if plot.legend else []
    row = LEGEND_FONT * 1.7
    legend_h = len(entries) * row
    top = PAD + len(plot.title) * TITLE_FONT * 1.25 + 6
    if plot.legend == "center":
        top = max(top, PAD + legend_h / 2 - plot.height / 2)
    bottom = top + plot.height
    x = _Scale(xlo, xhi, plot.x.log, left, left + PLOT_W)
    y = _Scale(ylo, yhi, plot.y.log, bottom, top)

    xtick_right = max([x(t) + text_width(s, FONT) / 2 for t, s in xticks] or [0.0])
    legend_x = max(left + PLOT_W + 8, xtick_right + 4)
    legend_w = max([24 + text_width(e.label or "", LEGEND_FONT) for e in entries] or [0.0])
    legend_y = top + plot.height / 2 - legend_h / 2 if plot.legend == "center" else top
    width = max(legend_x + legend_w if entries else left + PLOT_W, xtick_right,
                left + max([text_width(t, TITLE_FONT) for t in plot.title] or [0.0]))
    height = max(bottom + 2 * TICK + FONT * 2.3 + 5, legend_y + legend_h)
    return _Frame(x, y, xticks, yticks, ylabel, legend_x, legend_y, row, width + PAD,
                  height + PAD)


def svg(plot: LinePlot) -> str:
    """The plot as one ``<svg>`` element (no XML prolog): grid, rules, then the lines
    (markers on them), then the axes, ticks and text. Each part is an element or group
    of class ``lp-<part>`` (no ids: any number of plots share a page)."""
    f = _frame(plot)
    w, h = _n(f.width), _n(f.height)
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}pt" height="{h}pt" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif" role="img" '
        f'aria-label="{escape(" ".join(plot.title))}">',
        f'<rect width="{w}" height="{h}" fill="#ffffff"/>',
        *_grid_and_rules(plot, f), *_lines(plot, f), *_axes(plot, f), *_legend(plot, f),
        "</svg>"])


def _grid_and_rules(plot: LinePlot, f: _Frame) -> list[str]:
    left, right, top, bottom = f.x.start, f.x.end, f.y.end, f.y.start
    grid = []
    if plot.x.grid:
        grid += [f"M{_n(f.x(t))} {_n(top)}V{_n(bottom)}" for t, _ in f.xticks]
    if plot.y.grid:
        grid += [f"M{_n(left)} {_n(f.y(t))}H{_n(right)}" for t, _ in f.yticks]
    out = ([f'<path class="lp-grid" d="{"".join(grid)}" fill="none" stroke="{GRID}" '
            'stroke-width="0.6"/>'] if grid else [])
    return out + [f'<path class="lp-rule" d="M{_n(left)} {_n(f.y(r.y))}H{_n(right)}" '
                  f'fill="none" {_stroke(r.color, r.width, r.dash)}/>'
                  for r in plot.rules if f.y.holds(r.y)]


def _lines(plot: LinePlot, f: _Frame) -> list[str]:
    out = []
    for line in plot.lines:
        out.append('<g class="lp-line">')
        runs = _runs(line, f.x, f.y)
        d = "".join("M" + "L".join(f"{_n(a)} {_n(b)}" for a, b in run) for run in runs)
        if d:
            out.append(f'<path d="{d}" fill="none" {_stroke(line.color, line.width, line.dash)}'
                       ' stroke-linejoin="round"/>')
        if line.marker:
            out += [_marker(line.marker, a, b, line.marker_size, line.color)
                    for run in runs for a, b in run]
        out += [f'<circle class="lp-ring" cx="{_n(f.x(a))}" cy="{_n(f.y(b))}" r="5.5" '
                f'fill="none" stroke="{line.color}" stroke-width="1.4"/>'
                for a, b in line.rings if f.x.holds(a) and f.y.holds(b)]
        out.append("</g>")
    return out


def _axes(plot: LinePlot, f: _Frame) -> list[str]:
    """The left and bottom spines, ticks and their labels, the axis labels, the title."""
    left, right, top, bottom = f.x.start, f.x.end, f.y.end, f.y.start
    black = 'stroke="#000000" stroke-width="0.8"'
    out = [f'<path class="lp-axes" d="M{_n(left)} {_n(top)}V{_n(bottom)}H{_n(right)}" '
           f'fill="none" {black}/>', '<g class="lp-xticks">']
    out += [f'<path d="M{_n(f.x(t))} {_n(bottom)}v{_n(TICK)}" {black}/>' for t, _ in f.xticks]
    out += [_text(f.x(t), bottom + 2 * TICK + FONT, s, FONT, "middle") for t, s in f.xticks]
    out += ["</g>", '<g class="lp-yticks">']
    out += [f'<path d="M{_n(left)} {_n(f.y(t))}h{_n(-TICK)}" {black}/>' for t, _ in f.yticks]
    out += [_text(left - 2 * TICK, f.y(t) + FONT * 0.35, s, FONT, "end")
            for t, s in f.yticks]
    out.append("</g>")
    out.append(_text((left + right) / 2, bottom + 2 * TICK + FONT * 2 + 5, plot.x.label,
                     FONT, "middle", ' class="lp-xlabel"'))
    for i, part in enumerate(f.ylabel):
        bx, by = PAD + FONT + i * FONT * 1.2, (top + bottom) / 2
        out.append(_text(bx, by, part, FONT, "middle",
                         f' class="lp-ylabel" transform="rotate(-90 {_n(bx)} {_n(by)})"'))
    out += [_text(left, PAD + TITLE_FONT + i * TITLE_FONT * 1.25, t, TITLE_FONT, "start",
                  ' class="lp-title"') for i, t in enumerate(plot.title)]
    return out


def _legend(plot: LinePlot, f: _Frame) -> list[str]:
    """Each labelled line: a short stretch of it (with its marker), then the label."""
    entries = [line for line in plot.lines if line.label] if plot.legend else []
    if not entries:
        return []
    out = ['<g class="lp-legend">']
    for i, e in enumerate(entries):
        cy = f.legend_y + f.row * (i + 0.5)
        out.append(f'<path d="M{_n(f.legend_x)} {_n(cy)}h20" fill="none" '
                   f"{_stroke(e.color, e.width, e.dash)}/>")
        if e.marker:
            out.append(_marker(e.marker, f.legend_x + 10, cy, e.marker_size, e.color))
        out.append(_text(f.legend_x + 24, cy + LEGEND_FONT * 0.35, e.label or "",
                         LEGEND_FONT))
    out.append("</g>")
    return out
