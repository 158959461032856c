"""The report as one list of sections, built once from :class:`ReportData`.

A section is a title, blocks (paragraphs, bullet lists, tables of plain text, figures)
and subsections. The two renderers (:mod:`harness.report.markdown`,
:mod:`harness.report.html`) only turn these into markup, so a section, a table or a
column cannot exist in one report and not in the other.

Text is plain (renderers escape it). Marks are hints a renderer may show, named by
what they mean: ``num`` (a number), ``status-failed``, ``status-na``, ``none`` (nothing
to show), ``caption``, ``v-<verdict>``; the HTML report turns them into CSS classes,
Markdown has no styles and ignores them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas

from harness.formatting import (
    MISSING,
    MODEL_COLUMNS,
    WORKLOAD_ROWS,
    fmt_duration,
    fmt_speedup,
    get,
    missing,
    ordered,
    workload_title,
)
from harness.history import METHOD as HISTORY_METHOD
from harness.history import change_lines, grid
from harness.render import format_cell, value_text
from harness.report.data import ProfileSection, ReportData, ViewSection
from harness.report.plots import NOT_MEASURED, Figure
from harness.report.text import (
    STABILITY_HEADERS,
    build_text,
    claim_line,
    claims_overview,
    decision_text,
    fmt_bytes,
    fmt_time,
    method_notes,
    problem_tables,
    stability_by_profile,
    stability_rows,
    threshold_rows,
)
from harness.stability import METHOD_NOTE as STABILITY_NOTE

TITLE = "Python concurrency benchmark report"


# --------------------------------------------------------------------------- blocks


@dataclass(frozen=True)
class Code:
    """Inline code in a paragraph: a view's name, a path, a sweep id."""

    text: str


@dataclass(frozen=True)
class Paragraph:
    """Text, with inline code spans; ``mark``: ``caption`` or ``none``."""

    spans: tuple[str | Code, ...]
    mark: str = ""


@dataclass(frozen=True)
class Bullets:
    """A bullet list of plain text."""

    items: tuple[str, ...]
    mark: str = ""


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, a mark, and for a matrix cell the speedup it shows (the
    HTML colours the cell by it). ``lines``: the text as several lines (``text`` is them
    joined by '; ')."""

    text: str
    mark: str = ""
    speedup: float | None = None
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    """Headers and rows of cells. ``mark``: the kind of table (``matrix``, ``guide``,
    ``stability``, ``thresholds``); columns from ``numeric_from`` on hold numbers;
    ``label``: a short name shown above it; ``notes``: shown under it."""

    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    mark: str = ""
    numeric_from: int | None = None
    label: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SideBySide:
    """Tables to read together (the measured matrix beside the guide's table)."""

    tables: tuple[Table, ...]


@dataclass(frozen=True)
class Legend:
    """The speedup scale of the matrix's colours (shown where cells are coloured)."""

    steps: tuple[float, ...] = (0.25, 0.5, 0.8, 1.0, 1.5, 2, 4, 8, 16)


Block = Paragraph | Bullets | Table | SideBySide | Figure | Legend


@dataclass(frozen=True)
class Section:
    """A titled part of the report; ``anchor``: its link target, ``nav``: its name in
    the table of contents (top-level sections)."""

    title: str
    blocks: tuple[Block, ...] = ()
    subsections: tuple[Section, ...] = ()
    anchor: str = ""
    nav: str = ""


@dataclass(frozen=True)
class Document:
    """The whole report: a title, an introduction and the sections, in order."""

    title: str
    intro: Paragraph
    sections: tuple[Section, ...]

    def figures(self) -> list[Figure]:
        """Every figure, in the report's order."""
        return [b for s in self.sections for b in _blocks(s) if isinstance(b, Figure)]


def _blocks(section: Section) -> Iterator[Block]:
    yield from section.blocks
    for sub in section.subsections:
        yield from _blocks(sub)


def cell(value: object, mark: str = "") -> Cell:
    """A cell showing ``value`` as it is ('' when missing)."""
    return Cell("" if missing(value) else str(value), mark)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]], mark: str = "",
               numeric_from: int | None = None, label: str = "") -> Table:
    """A table of values shown as they are, the cells without marks."""
    return Table(tuple(headers), tuple(tuple(cell(v) for v in r) for r in rows), mark,
                 numeric_from, label)


# --------------------------------------------------------------------------- fleet, sweeps


def fleet_table(data: ReportData) -> Table:
    stable = stability_by_profile(data.stability)
    return Table(
        ("sweep", "profile", "hosts", "Python", "build", "CPU", "usable CPUs", "NUMA nodes",
         "memory", "host stability"),
        tuple((cell(r["sweep_id"]), cell(r["profile_id"]), cell(r["hosts"]),
               cell(r["python_version"]), cell(build_text(r["free_threaded"], r["gil_enabled"])),
               cell(r["cpu_model"]), cell(r["usable_cpus"], "num"), cell(r["numa_nodes"], "num"),
               cell(fmt_bytes(r["mem_total_bytes"]), "num"),
               cell(stable.get((r["sweep_id"], r["profile_id"]), "")))
              for r in data.profiles.to_dict("records")))


def hosts_table(environments: pandas.DataFrame) -> Table:
    def status(r: dict[str, object]) -> Cell:
        text = cell(r["status"]).text + ("" if missing(r["error"]) else f": {r['error']}")
        return Cell(text, "" if r["status"] == "ok" else "status-failed")

    return Table(
        ("sweep", "host", "python", "version", "build", "usable/logical CPUs", "profile",
         "status"),
        tuple((cell(r["sweep_id"]), cell(r["host"]), cell(r["python"]),
               cell(r["python_version"]), cell(build_text(r["free_threaded"], r["gil_enabled"])),
               cell(MISSING if missing(r["usable_cpus"])
                    else f"{r['usable_cpus']}/"
                         f"{'?' if missing(r['logical_cpus']) else r['logical_cpus']}"),
               cell(r["profile_id"]), status(r))
              for r in environments.to_dict("records")))


def stability_table(stability: pandas.DataFrame) -> Table:
    verdict_marks = {"stable": "", "unknown": "status-na"}
    return Table(tuple(STABILITY_HEADERS), tuple(
        (*(Cell(c) for c in row[:3]), Cell(row[3], verdict_marks.get(row[3], "status-failed")),
         Cell(row[4]), *(Cell(c, "num") for c in row[5:9]),
         Cell(row[9], "status-failed" if row[9].startswith("failed") else ""))
        for row in stability_rows(stability)), mark="stability")


def fleet_section(data: ReportData) -> Section:
    subsections = [Section("Hosts and interpreters", (hosts_table(data.environments),))]
    if not data.stability.empty:
        subsections.append(Section("Host stability", (
            Paragraph(("From the speed probe timed before every repeat (see Method). A failed "
                       "control: this host's CPU-bound ratios are not to be trusted.",),
                      "caption"),
            stability_table(data.stability)), anchor="stability"))
    return Section("Fleet", (fleet_table(data),), tuple(subsections), "fleet", "Fleet")


def sweeps_section(data: ReportData) -> Section:
    sweeps = Table(
        ("sweep", "started", "took", "status", "inventory", "profile", "hosts", "envs failed",
         "cells ok", "partial", "failed", "timeout", "n/a"),
        tuple((cell(r["sweep_id"]), cell(fmt_time(r["started_at"])),
               cell(fmt_duration(r["duration_s"])),
               cell(r["status"], "" if r["status"] == "complete" else "status-failed"),
               cell(r["inventory"]), cell(r["profile"]),
               *(cell(r[k]) for k in ("n_hosts", "n_envs_failed", "n_cells_ok",
                                      "n_cells_partial", "n_cells_failed", "n_cells_timeout",
                                      "n_cells_not_applicable")))
              for r in data.sweeps.to_dict("records")), numeric_from=6)
    failures, na = problem_tables(data.problems)
    failed: Block = (text_table(["sweep", "what", "host", "python", "cell", "reason"], failures)
                     if failures else Paragraph(("Nothing failed.",), "none"))
    subsections = [Section("What failed and why", (failed,))]
    if na:
        subsections.append(Section("Not applicable", (text_table(["reason", "cells"], na),)))
    return Section("Sweeps", (sweeps,), tuple(subsections), "sweeps", "Sweeps")


# --------------------------------------------------------------------------- matrices


def matrix_table(s: ProfileSection) -> Table:
    """The measured matrix (render.format_cell's text per cell), each cell marked by its
    status or carrying its speedup, the cells' notes under it."""
    m = s.matrix
    models = ordered(m["model"], MODEL_COLUMNS)
    first: dict[tuple[object, object], dict[str, object]] = {}  # the first row of a cell
    for r in m.to_dict("records"):
        first.setdefault((r["workload"], r["model"]), r)
    rows = []
    notes: list[str] = []
    for workload in ordered(m["workload"], WORKLOAD_ROWS):
        line = [Cell(workload_title(workload))]
        for model in models:
            row = first.get((workload, model))
            if row is None:
                line.append(Cell(MISSING))
                continue
            shown = format_cell(row)
            speedup, status = get(row, "speedup"), get(row, "status")
            if status == "not_applicable":
                line.append(Cell(shown.text, "status-na"))
            elif status in ("failed", "timeout") or speedup is None:
                line.append(Cell(shown.text, "status-failed"))
            else:
                line.append(Cell(shown.text, speedup=float(speedup)))
            if shown.note and f"{model}: {shown.note}" not in notes:
                notes.append(f"{model}: {shown.note}")
        rows.append(tuple(line))
    return Table(("workload", *models), tuple(rows), "matrix", numeric_from=1,
                 label="Measured", notes=tuple(notes))


def guide_table(guide: pandas.DataFrame) -> Table:
    """The guide's table: its claims per workload and column."""
    cols = list(dict.fromkeys(guide["guide_column"]))
    rows = []
    for workload in ordered(guide["workload"], WORKLOAD_ROWS):
        g = guide[guide["workload"] == workload]
        rows.append([workload_title(workload)]
                    + [str(g[g["guide_column"] == c]["claim_text"].iloc[0])
                       if (g["guide_column"] == c).any() else "" for c in cols])
    return text_table(["workload (the guide)", *cols], rows, mark="guide", numeric_from=1,
                      label="The guide")


def profile_section(s: ProfileSection, guide: Table, anchor: str) -> Section:
    levels = s.matrix["speedup_ci_level"].dropna() if "speedup_ci_level" in s.matrix else []
    conf = (f"intervals down to {float(min(levels)):.1%} confidence" if len(levels)
            else "no intervals")
    caption = Paragraph((f"sweep {s.sweep_id} · profile {s.profile_id} · speedup over "
                         f"sequential: median [interval], {conf}",), "caption")
    return Section(s.title, (caption, SideBySide((matrix_table(s), guide)), s.figure),
                   anchor=anchor)


def matrix_section(data: ReportData) -> Section:
    guide = guide_table(data.guide)
    return Section("Matrix per profile", (Legend(),),
                   tuple(profile_section(s, guide, f"profile-{i}")
                         for i, s in enumerate(data.sections)), "matrix", "Matrix")


def ft_overhead_blocks(ft: pandas.DataFrame) -> tuple[Block, ...]:
    """Single-thread cost: ft_overhead per host, and the pairs of builds it compared."""
    if ft.empty:
        return (Paragraph(("Single-thread cost (view ", Code("ft_overhead"), "): no host ran a "
                           f"standard and a free-threaded build of one version: {NOT_MEASURED}. "
                           "harness provision --python 3.13 --python 3.13t installs both."),
                          "none"),)
    pairs = ft.drop_duplicates(["sweep_id", "host", "std_python", "ft_python"])
    named = "; ".join(f"{r['host']}: {r['std_python']} ({r['std_version']}) against "
                      f"{r['ft_python']} ({r['ft_version']})" for r in pairs.to_dict("records"))
    rows = []
    for r in ft.to_dict("records"):
        if missing(r["ft_over_std"]):
            ratio, overhead = MISSING, r["reason"] or MISSING
        else:
            ratio = (f"{r['ft_over_std']:.2f}x [{r['ratio_ci_low']:.2f}-"
                     f"{r['ratio_ci_high']:.2f}] at {r['ratio_ci_level']:.1%}")
            sig = {True: "", False: " (not significant)"}.get(r["significant"],
                                                               " (too few repeats)")
            overhead = f"{r['overhead_pct']:+.0f}%{sig}"
        rows.append((r["host"], r["minor"], workload_title(r["workload"]), r["basis"] or "",
                     ratio, overhead))
    return (Paragraph(("Single-thread cost (view ", Code("ft_overhead"), "): the sequential "
                       "cells of the free-threaded build against the standard build of the "
                       "same version on the same host, time per run (per loop iteration where "
                       "the builds sized the loop differently); above 1x the free-threaded "
                       "build is slower. The 3.13 docs say about 40% on pyperformance, "
                       "What's New in 3.14 5-10% for 3.14t. Pairs compared: " + named + ".")),
            text_table(("host", "version", "workload", "basis", "free-threaded / standard",
                        "overhead"), rows, label="ft_overhead"))


def ft_parallel_gain_blocks(gain: pandas.DataFrame) -> tuple[Block, ...]:
    """Parallel gain: CPU-bound threads by workers on both builds of one version, and the
    free-threaded build with the GIL forced on (PYTHON_GIL=1) and off."""
    if gain.empty:
        return ()
    rows = [(r["host"], r["minor"], f"{float(r['workers']):g}",
             fmt_speedup(r["std_speedup"], r["std_ci_low"], r["std_ci_high"]),
             fmt_speedup(r["ft_speedup"], r["ft_ci_low"], r["ft_ci_high"]),
             fmt_speedup(r["gil_off_speedup"], r["gil_off_ci_low"], r["gil_off_ci_high"]),
             fmt_speedup(r["gil_on_speedup"], r["gil_on_ci_low"], r["gil_on_ci_high"]))
            for r in gain.to_dict("records")]
    return (Paragraph(("Parallel gain (view ", Code("ft_parallel_gain"), "): CPU-bound "
                       "threads over sequential by workers, the standard and the "
                       "free-threaded build side by side (the same pairs), and on the "
                       "free-threaded build with PYTHON_GIL=0 and PYTHON_GIL=1 (the gil "
                       "dimension; NULL unless the sweep ran it). On a GIL build threads "
                       "stay near 1x; without the GIL they can reach the CPU count.")),
            text_table(("host", "version", "workers", "standard", "free-threaded",
                        "free-threaded, PYTHON_GIL=0", "free-threaded, PYTHON_GIL=1"), rows,
                       label="ft_parallel_gain"))


def builds_section(data: ReportData) -> Section:
    figures: tuple[Block, ...] = data.build_figures or (
        Paragraph((f"No host ran both builds: {NOT_MEASURED}.",), "none"),)
    return Section("Free-threaded against standard build",
                   ft_overhead_blocks(data.ft_overhead)
                   + ft_parallel_gain_blocks(data.ft_parallel_gain) + figures, anchor="builds",
                   nav="Builds")


def view_section(v: ViewSection) -> Section:
    """An optional view's figures; its rows when they have none of the plotted columns."""
    if not v.figures:
        why = "has no rows for them" if v.present else "is not defined"
        return Section(v.spec.title, (Paragraph(
            (f"{NOT_MEASURED.capitalize()} (view ", Code(v.spec.view), f" {why})."), "none"),))
    blocks: list[Block] = list(v.figures)
    if any(f.svg is None and "none of the columns" in f.caption
           for f in v.figures) and not v.rows.empty:
        rows = v.rows.head(60)
        blocks.append(Table(tuple(str(c) for c in rows.columns),
                            tuple(tuple(Cell(value_text(x)) for x in r)
                                  for r in rows.itertuples(index=False, name=None))))
    return Section(v.spec.title, tuple(blocks))


def views_section(data: ReportData) -> Section:
    return Section("More measurements", (), tuple(view_section(v) for v in data.views),
                   "more", "More")


# --------------------------------------------------------------------------- claims, decisions


def claims_section(data: ReportData) -> Section:
    sentence, why = claims_overview(data.sections)
    blocks: list[Block] = [Paragraph((sentence,))]
    if why:
        blocks.append(Bullets(tuple(why), "claims-why"))
    blocks.append(Table(
        ("claim", "confirmed", "refuted", "inconclusive", "not testable", "not measurable",
         "measured here"),
        tuple((Cell(claim_line(r)), *(cell(r[k], "num") for k in (
            "n_confirmed", "n_refuted", "n_inconclusive", "n_not_testable",
            "n_not_measurable")), cell(r["measured"]))
            for r in data.claims_summary.to_dict("records"))))
    per_profile = tuple(Section(s.title, (Table(
        ("claim", "measured", "verdict", "note"),
        tuple((Cell(claim_line(r)),
               Cell(fmt_speedup(r["speedup"], r["speedup_ci_low"], r["speedup_ci_high"]), "num"),
               cell(r["verdict"], "v-" + str(r["verdict"]).replace(" ", "-")), cell(r["note"]))
              for r in s.claims.to_dict("records"))),)) for s in data.sections)
    return Section("The guide's claims, checked", tuple(blocks), per_profile, "claims",
                   "Claims")


def thresholds_table(s: ProfileSection) -> Table:
    return Table(("rule", "measured here", "details", "the guide says"), tuple(
        (Cell(rule), Cell(summary, "" if details else "none"),
         Cell("; ".join(details), lines=tuple(details)), Cell(guide))
        for rule, summary, details, guide in threshold_rows(s.thresholds, s.thresholds_error)),
        mark="thresholds")


def decisions_section(data: ReportData) -> Section:
    per_profile = tuple(Section(s.title, (
        text_table(["workload", "use", "measured", "why", "the guide says"],
                   [[workload_title(r["workload"]), *decision_text(r),
                     f"{r['guide_choice']} {r['guide_claim']}"]
                    for r in s.decisions.to_dict("records")]),
        Paragraph(("Thresholds measured here, in place of the guide's numbers:",), "caption"),
        thresholds_table(s))) for s in data.sections)
    return Section("Decision guide, from these measurements", (), per_profile, "decide",
                   "Decision guide")


def over_time_section(data: ReportData) -> Section | None:
    """Each environment in two or more of the sweeps: its cells per sweep, the steps
    (harness history), a plot; None when no environment ran twice."""
    if not data.over_time:
        return None
    parts = []
    for o in data.over_time:
        h = o.history
        headers = ("workload", "model", *(f"#{i + 1}" for i in range(len(h.sweeps))))
        changes = change_lines(h)
        parts.append(Section(h.env.describe(), (
            Paragraph(("Sweeps, oldest first: ",
                       *[x for i, sid in enumerate(h.sweeps)
                         for x in ((", " if i else "") + f"#{i + 1} ", Code(sid))]),
                      "caption"),
            text_table(headers, grid(h), "history", numeric_from=2),
            Bullets(tuple(changes)) if changes else Paragraph(("No change detected.",)),
            o.figure)))
    return Section("Over time", (Paragraph((HISTORY_METHOD,), "caption"),), tuple(parts),
                   "over-time", "Over time")


def method_section(data: ReportData) -> Section:
    return Section("Method", (Bullets((*method_notes(data.claim_tolerance), STABILITY_NOTE)),),
                   anchor="method", nav="Method")


def build_document(data: ReportData) -> Document:
    """The report's sections, in order, for either renderer."""
    intro: list[str | Code] = ["Generated ", fmt_time(data.generated_at), " from ",
                               Code(str(data.root)), " · sweeps: "]
    for i, sweep in enumerate(data.sweep_ids):
        intro += [", ", Code(sweep)] if i else [Code(sweep)]
    return Document(TITLE, Paragraph(tuple(intro), "caption"), (
        fleet_section(data), sweeps_section(data), matrix_section(data), builds_section(data),
        *((over,) if (over := over_time_section(data)) else ()),
        views_section(data), claims_section(data), decisions_section(data),
        method_section(data)))
