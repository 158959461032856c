"""The report as one HTML file: inline CSS and SVG, no script, nothing fetched.

Renders the sections of :mod:`harness.report.sections` (built once, shared with the
Markdown renderer); marks become CSS classes and a matrix cell's speedup its colour.
Responsive: the text column is at most 1400 px wide, every table sits in a wrapper
that scrolls horizontally on a narrow window, and SVG plots scale to the width.
"""

from __future__ import annotations

import math
from html import escape

from harness.formatting import missing
from harness.report.plots import Figure
from harness.report.sections import (
    Block,
    Bullets,
    Cell,
    Code,
    Document,
    Legend,
    Paragraph,
    Section,
    SideBySide,
    Table,
)

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1d2329; background: #fafbfc; }
main { max-width: 1400px; margin: 0 auto; padding: 12px 16px 48px; }
h1 { font-size: 1.6em; margin: 0.4em 0; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #d8dee4; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin: 1.4em 0 0.4em; overflow-wrap: anywhere; }
p, li { overflow-wrap: anywhere; }
nav { display: flex; flex-wrap: wrap; gap: 4px 14px; }
nav a { white-space: nowrap; }
.scroll { overflow-x: auto; max-width: 100%; margin: 6px 0 10px; }
table { border-collapse: collapse; font-size: 13px; background: #fff; }
th, td { border: 1px solid #d8dee4; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f4; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.matrix td.num { min-width: 7em; }
.pair { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.pair > div { min-width: 0; max-width: 100%; }
.caption, figcaption { font-size: 12px; color: #57606a; }
figure { margin: 10px 0 18px; max-width: 760px; }
figure svg { width: 100%; height: auto; display: block; background: #fff; }
.none { color: #57606a; font-style: italic; }
.v-confirmed { background: #dff3e2; }
.v-refuted { background: #fbe0e3; }
.v-not-measurable { background: #eef1f4; color: #57606a; }
.v-inconclusive { background: #fff5d6; }
.v-not-testable-here { background: #eef1f4; }
.status-failed, .status-timeout { background: #fbe0e3; }
.status-na { color: #8a939c; }
.legend span { display: inline-block; padding: 1px 6px; margin-right: 2px; font-size: 12px;
               border: 1px solid #d8dee4; }
"""


def _e(value: object) -> str:
    return escape("" if missing(value) else str(value))


def heat(speedup: float) -> str:
    """A background colour for a speedup: red below 1 (saturated at 0.25x), neutral at 1,
    green above (saturated at 16x); log scale."""
    if not math.isfinite(speedup) or speedup <= 0:
        return "#ffffff"
    t = math.log2(speedup)
    t = max(-1.0, t / 2) if t < 0 else min(1.0, t / 4)
    rgb = (209, 73, 91) if t < 0 else (46, 160, 67)
    a = 0.08 + 0.62 * abs(t) if abs(t) > 0.03 else 0.0
    mixed = [round(255 + (c - 255) * a) for c in rgb]
    return "#{:02x}{:02x}{:02x}".format(*mixed)


def _td(c: Cell, numeric: bool) -> str:
    """One cell: its marks as classes (``num`` for a number column), its speedup as the
    ``heat`` class and a background colour, its lines broken."""
    classes = [k for k in ("num" if numeric else "", c.mark,
                           "heat" if c.speedup is not None else "") if k]
    style = f' style="background:{heat(c.speedup)}"' if c.speedup is not None else ""
    text = "<br>".join(_e(x) for x in c.lines) if c.lines else _e(c.text)
    return (f'<td class="{" ".join(classes)}"{style}>{text}</td>' if classes or style
            else f"<td>{text}</td>")


def _table(t: Table) -> str:
    numeric_from = 99 if t.numeric_from is None else t.numeric_from
    out = [f"<strong>{_e(t.label)}</strong>" if t.label else "",
           f'<div class="scroll"><table class="{_e(t.mark)}"><thead><tr>']
    out += [f"<th>{_e(h)}</th>" for h in t.headers]
    out.append("</tr></thead><tbody>")
    for row in t.rows:
        out.append("<tr>" + "".join(_td(c, i >= numeric_from) for i, c in enumerate(row))
                   + "</tr>")
    out.append("</tbody></table></div>")
    if t.notes:
        out.append('<ul class="caption">' + "".join(f"<li>{_e(n)}</li>" for n in t.notes)
                   + "</ul>")
    return "".join(out)


def _figure(f: Figure) -> str:
    if f.svg is None:
        return f'<p class="none">{_e(f.title)}: {_e(f.caption)}</p>'
    return (f'<figure id="fig-{_e(f.key)}" data-figure="{_e(f.key)}">{f.svg}'
            f"<figcaption>{_e(f.title)} — {_e(f.caption)}</figcaption></figure>")


def _legend(legend: Legend) -> str:
    spans = "".join(f'<span style="background:{heat(s)}">{s:g}x</span>' for s in legend.steps)
    return f'<p class="legend caption">speedup colour: {spans}</p>'


def _paragraph(p: Paragraph) -> str:
    text = "".join(f"<code>{_e(s.text)}</code>" if isinstance(s, Code) else _e(s)
                   for s in p.spans)
    return f'<p class="{p.mark}">{text}</p>' if p.mark else f"<p>{text}</p>"


def _bullets(b: Bullets) -> str:
    items = "".join(f"<li>{_e(i)}</li>" for i in b.items)
    return f'<ul class="{b.mark}">{items}</ul>' if b.mark else f"<ul>{items}</ul>"


def _block(b: Block) -> str:
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, SideBySide):
        return ('<div class="pair">' + "".join(f"<div>{_table(t)}</div>" for t in b.tables)
                + "</div>")
    if isinstance(b, Figure):
        return _figure(b)
    if isinstance(b, Legend):
        return _legend(b)
    if isinstance(b, Bullets):
        return _bullets(b)
    return _paragraph(b)


def _section(s: Section, level: int = 2) -> list[str]:
    anchor = f' id="{_e(s.anchor)}"' if s.anchor else ""
    parts = [f"<h{level}{anchor}>{_e(s.title)}</h{level}>"]
    parts += [_block(b) for b in s.blocks]
    for sub in s.subsections:
        parts += _section(sub, level + 1)
    return parts


def _nav(sections: tuple[Section, ...]) -> str:
    return ("<nav>" + "".join(f'<a href="#{_e(s.anchor)}">{_e(s.nav)}</a>'
                              for s in sections if s.nav) + "</nav>")


def html(doc: Document) -> str:
    """The whole report as one HTML document."""
    parts = [f"<h1>{_e(doc.title)}</h1>", _paragraph(doc.intro), _nav(doc.sections)]
    for s in doc.sections:
        parts += _section(s)
    body = "\n".join(parts)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(doc.title)}</title>"
            f"<style>{CSS}</style></head><body><main>\n{body}\n</main></body></html>\n")
