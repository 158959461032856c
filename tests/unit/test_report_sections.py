"""The report's two renderers over one list of sections: every section, table header,
cell and paragraph of a document shows in the Markdown and in the HTML alike."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pandas

from harness.report.data import _in_profile_order, gather
from harness.report.html import html
from harness.report.markdown import markdown
from harness.report.plots import Figure
from harness.report.sections import (
    Bullets,
    Cell,
    Code,
    Document,
    Legend,
    Paragraph,
    Section,
    SideBySide,
    Table,
    build_document,
)
from tests.unit.test_claims import BASE, make


def sample() -> Document:
    table = Table(("workload", "threads"), ((Cell("CPU-bound"), Cell("1.9x", speedup=1.9)),
                                            (Cell("disk | io"), Cell("failed", "status-failed"))),
                  "matrix", numeric_from=1, label="Measured", notes=("threads: a note",))
    details = Table(("rule", "details"), ((Cell("knee"), Cell("a; b", lines=("a", "b"))),))
    drawn = Figure("fig1", "A plot", "<svg><path/></svg>", "the caption")
    undrawn = Figure("fig2", "No plot", None, "not measured")
    return Document("Report", Paragraph(("From ", Code("/r"), " · sweeps: ", Code("s1")),
                                        "caption"), (
        Section("First", (Legend(), SideBySide((table, details))),
                (Section("Sub", (Paragraph(("A note",), "none"), drawn)),),
                anchor="first", nav="1st"),
        Section("Second", (Bullets(("one", "two")), undrawn), anchor="second", nav="2nd")))


def test_both_renderers_show_the_same_sections() -> None:
    doc = sample()
    md = markdown(doc, "img")
    page = html(doc)
    assert md.startswith("# Report\n\nFrom `/r` · sweeps: `s1`\n")
    for heading in ("## First", "### Sub", "## Second"):
        assert f"\n{heading}\n" in md
    for heading in ('<h2 id="first">First</h2>', "<h3>Sub</h3>", '<h2 id="second">Second'):
        assert heading in page
    assert '<nav><a href="#first">1st</a><a href="#second">2nd</a></nav>' in page
    # tables: the same headers and cells; Markdown escapes pipes, HTML marks and colours
    assert "**Measured**\n\n| workload | threads |\n|---|---|\n| CPU-bound | 1.9x |" in md
    assert "| disk \\| io | failed |" in md and "- threads: a note" in md
    assert '<td class="num heat" style="background:#' in page
    assert '<td class="num status-failed">failed</td>' in page
    assert '<ul class="caption"><li>threads: a note</li></ul>' in page
    assert "| knee | a; b |" in md and "<td>a<br>b</td>" in page
    # figures: linked files in Markdown, inline SVG in HTML; one not drawn says why
    assert "![A plot](img/fig1.svg)\n\n_the caption_" in md
    assert '<figure id="fig-fig1" data-figure="fig1"><svg><path/></svg>' in page
    assert "_No plot: not measured_" in md and '<p class="none">No plot: not measured</p>' in page
    assert "- one\n- two" in md and "<ul><li>one</li><li>two</li></ul>" in page
    assert "speedup colour:" in page and "colour" not in md  # colours are HTML's only
    assert [f.key for f in doc.figures()] == ["fig1", "fig2"]
    assert "fig1" not in markdown(doc, None)  # no image directory: drawn plots left out


def _md_headings(md: str) -> list[str]:
    return re.findall(r"^#{2,3} (.+)$", md, re.M)


def _html_headings(page: str) -> list[str]:
    return [unescape(h) for h in re.findall(r"<h[23][^>]*>(.*?)</h[23]>", page)]


def _md_headers(md: str) -> list[str]:
    return [ln for ln in md.splitlines() if ln.startswith("| ") and ln.endswith(" |")]


def test_a_gathered_report_has_the_same_sections_and_tables_in_both(tmp_path: Path) -> None:
    doc = build_document(gather(make(tmp_path / "r", BASE, cpus=2)))
    md, page = markdown(doc, None), html(doc)
    assert _md_headings(md) == _html_headings(page)
    assert "Hosts and interpreters" in _md_headings(md)
    # every table: its header row in both
    tables = [t for s in doc.sections for t in _tables(s)]
    assert tables
    for t in tables:
        assert "| " + " | ".join(t.headers) + " |" in _md_headers(md)
        assert "".join(f"<th>{h}</th>" for h in t.headers).replace("'", "&#x27;") in page
    assert "| usable CPUs | NUMA nodes |" in md and "<th>NUMA nodes</th>" in page


def _tables(s: Section) -> list[Table]:
    out = [b for b in s.blocks if isinstance(b, Table)]
    out += [t for b in s.blocks if isinstance(b, SideBySide) for t in b.tables]
    return out + [t for sub in s.subsections for t in _tables(sub)]


def test_view_figures_follow_the_profile_sections_whatever_the_row_order() -> None:
    """A view's rows come from DuckDB in an order that varies (parallel scans); its
    figures per (sweep, profile) are keyed in the profile sections' order all the same,
    profiles without a section after them by name."""
    rows = pandas.DataFrame({"sweep_id": ["s1", "s1", "s2", "s1", "s1"],
                             "profile_id": ["b", "a", "a", "zz", "b"], "v": range(5)})
    titles = {("s1", "b"): "B", ("s2", "a"): "A2", ("s1", "a"): "A"}
    want = [("s1", "b"), ("s2", "a"), ("s1", "a"), ("s1", "zz")]
    for order in (rows.index, rows.index[::-1], [3, 0, 4, 2, 1]):
        groups = _in_profile_order(rows.loc[order].groupby(["sweep_id", "profile_id"],
                                                           dropna=False, sort=False), titles)
        assert [tuple(k) for k, _ in groups] == want
        assert sorted(groups[0][1]["v"]) == [0, 4]
