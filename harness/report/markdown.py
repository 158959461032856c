"""The report as Markdown: pipe tables for a code forge, plots linked as SVG files.

Renders the sections of :mod:`harness.report.sections` (built once, shared with the
HTML renderer). Marks (classes, colours) have no Markdown form and are left out; the
figures are written by :mod:`harness.report.write` as ``<image_dir>/<key>.svg`` and
linked as images.
"""

from __future__ import annotations

from harness.formatting import md_cell
from harness.report.plots import Figure
from harness.report.sections import (
    Block,
    Bullets,
    Code,
    Document,
    Legend,
    Paragraph,
    Section,
    SideBySide,
    Table,
)


def _paragraph(p: Paragraph) -> str:
    return "".join(f"`{s.text}`" if isinstance(s, Code) else s for s in p.spans)


def _bullets(items: tuple[str, ...]) -> str:
    return "\n".join(f"- {md_cell(i)}" for i in items)


def _table(t: Table) -> str:
    lines = [f"**{t.label}**\n"] if t.label else []
    lines += ["| " + " | ".join(md_cell(h) for h in t.headers) + " |",
              "|" + "---|" * len(t.headers)]
    lines += ["| " + " | ".join(md_cell(c.text) for c in r) + " |" for r in t.rows]
    if t.notes:
        lines += ["", _bullets(t.notes)]
    return "\n".join(lines)


def _figure(f: Figure, image_dir: str | None) -> str:
    """A drawn figure as a linked image (left out without ``image_dir``); one not drawn
    as its title and why."""
    if f.svg is None:
        return f"_{f.title}: {f.caption}_"
    if image_dir:
        return f"![{md_cell(f.title)}]({image_dir}/{f.key}.svg)\n\n_{f.caption}_"
    return ""


def _block(b: Block, image_dir: str | None) -> str:
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, SideBySide):
        return "\n\n".join(_table(t) for t in b.tables)
    if isinstance(b, Figure):
        return _figure(b, image_dir)
    if isinstance(b, Legend):
        return ""  # no colours in Markdown
    if isinstance(b, Bullets):
        return _bullets(b.items)
    return _paragraph(b)


def _section(s: Section, image_dir: str | None, level: int = 2) -> list[str]:
    out = [f"{'#' * level} {md_cell(s.title)}"]
    out += [_block(b, image_dir) for b in s.blocks]
    for sub in s.subsections:
        out += _section(sub, image_dir, level + 1)
    return out


def markdown(doc: Document, image_dir: str | None) -> str:
    """The report as Markdown; figures link ``image_dir/<key>.svg`` (or are left out
    with a note when ``image_dir`` is None)."""
    out = [f"# {doc.title}", _paragraph(doc.intro),
           f"Plots are SVG files in `{image_dir}/` next to this file." if image_dir
           else "Plots are omitted from this Markdown; the HTML report has them."]
    for s in doc.sections:
        out += _section(s, image_dir)
    return "\n\n".join(part for part in out if part) + "\n"
