"""The report as one HTML file: inline CSS and SVG, no script, nothing fetched.

Responsive: the text column is at most 1400 px wide, every table sits in a wrapper
that scrolls horizontally on a narrow window, and SVG plots scale to the width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from harness import render
from harness.report import (
    NOT_MEASURED,
    STABILITY_HEADERS,
    Figure,
    ProfileSection,
    ReportData,
    ViewSection,
    build_text,
    claim_line,
    claims_overview,
    decision_text,
    fmt_bytes,
    fmt_duration,
    fmt_speedup,
    fmt_time,
    guide_grid,
    method_notes,
    problem_tables,
    stability_by_profile,
    stability_rows,
    threshold_rows,
)
from harness.stability import METHOD_NOTE as STABILITY_NOTE

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
    return escape("" if render._missing(value) else str(value))


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


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "",
           numeric_from: int = 99) -> str:
    """Cells are already-escaped HTML; a (cell, class) tuple sets a td class."""
    out = [f'<div class="scroll"><table class="{cls}"><thead><tr>']
    out += [f"<th>{h}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>")
        for i, c in enumerate(r):
            css, style = ("num" if i >= numeric_from else ""), ""
            if isinstance(c, tuple):
                c, extra, *rest = c
                css = f"{css} {extra}".strip()
                style = f' style="{rest[0]}"' if rest else ""
            out.append(f'<td class="{css}"{style}>{c}</td>' if css or style else f"<td>{c}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _figure(f: Figure) -> str:
    if f.svg is None:
        return f'<p class="none">{_e(f.title)}: {_e(f.caption)}</p>'
    return (f'<figure id="fig-{_e(f.key)}" data-figure="{_e(f.key)}">{f.svg}'
            f"<figcaption>{_e(f.title)} — {_e(f.caption)}</figcaption></figure>")


def _matrix_table(s: ProfileSection) -> str:
    m = s.matrix
    models = render._ordered(m["model"], render.MODEL_COLUMNS)
    rows = []
    notes: list[str] = []
    for workload in render._ordered(m["workload"], render.WORKLOAD_ROWS):
        line: list[object] = [_e(render.WORKLOAD_ROWS.get(workload, workload))]
        for model in models:
            hit = m[(m["workload"] == workload) & (m["model"] == model)]
            if hit.empty:
                line.append(render.MISSING)
                continue
            row = hit.iloc[0]
            cell = render.format_cell(row)
            speedup = render._get(row, "speedup")
            status = render._get(row, "status")
            if status == "not_applicable":
                line.append((_e(cell.text), "status-na"))
            elif status in ("failed", "timeout") or speedup is None:
                line.append((_e(cell.text), "status-failed"))
            else:
                line.append((_e(cell.text), "heat", f"background:{heat(float(speedup))}"))
            if cell.note:
                note = f"{model}: {cell.note}"
                if note not in notes:
                    notes.append(note)
        rows.append(line)
    table = _table(["workload", *map(_e, models)], rows, "matrix", numeric_from=1)
    caption = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return table + (f'<ul class="caption">{caption}</ul>' if caption else "")


def _legend() -> str:
    steps = (0.25, 0.5, 0.8, 1.0, 1.5, 2, 4, 8, 16)
    spans = "".join(f'<span style="background:{heat(s)}">{s:g}x</span>' for s in steps)
    return f'<p class="legend caption">speedup colour: {spans}</p>'


def _profile_section(s: ProfileSection, guide_headers: list[str],
                     guide_rows: list[list[str]], anchor: str) -> str:
    measured = _matrix_table(s)
    guide = _table([_e(h) for h in guide_headers],
                   [[_e(c) for c in r] for r in guide_rows], "guide", numeric_from=1)
    levels = s.matrix["speedup_ci_level"].dropna() if "speedup_ci_level" in s.matrix else []
    conf = (f"intervals down to {float(min(levels)):.1%} confidence" if len(levels)
            else "no intervals")
    return (f'<section id="{anchor}"><h3>{_e(s.title)}</h3>'
            f'<p class="caption">sweep {_e(s.sweep_id)} · profile {_e(s.profile_id)} · '
            f"speedup over sequential: median [interval], {conf}</p>"
            f'<div class="pair"><div><strong>Measured</strong>{measured}</div>'
            f"<div><strong>The guide</strong>{guide}</div></div>"
            f"{_figure(s.figure)}</section>")


def _views(views: Sequence[ViewSection]) -> str:
    out = []
    for v in views:
        out.append(f"<h3>{_e(v.spec.title)}</h3>")
        if not v.figures:
            why = "has no rows for them" if v.present else "is not defined"
            out.append(f'<p class="none">{NOT_MEASURED.capitalize()} '
                       f"(view <code>{_e(v.spec.view)}</code> {why}).</p>")
            continue
        out += [_figure(f) for f in v.figures]
        if any(f.svg is None and "none of the columns" in f.caption
               for f in v.figures) and not v.rows.empty:
            rows = v.rows.head(60)
            out.append(_table([_e(c) for c in rows.columns],
                              [[_e(render._text(x)) for x in r]
                               for r in rows.itertuples(index=False, name=None)]))
    return "".join(out)


def html(data: ReportData) -> str:
    """The whole report as one HTML document."""
    g_headers, g_rows = guide_grid(data.guide)
    parts: list[str] = []
    parts.append('<h1>Python concurrency benchmark report</h1>')
    parts.append(f'<p class="caption">Generated {_e(fmt_time(data.generated_at))} from '
                 f"<code>{_e(data.root)}</code> · sweeps: "
                 + ", ".join(f"<code>{_e(s)}</code>" for s in data.sweep_ids) + "</p>")
    parts.append('<nav><a href="#fleet">Fleet</a><a href="#sweeps">Sweeps</a>'
                 '<a href="#matrix">Matrix</a><a href="#builds">Builds</a>'
                 '<a href="#more">More</a><a href="#claims">Claims</a>'
                 '<a href="#decide">Decision guide</a><a href="#method">Method</a></nav>')

    parts.append('<h2 id="fleet">Fleet</h2>')
    stable = stability_by_profile(data.stability)
    parts.append(_table(
        ["sweep", "profile", "hosts", "Python", "build", "CPU", "usable CPUs", "NUMA nodes",
         "memory", "host stability"],
        [[_e(r["sweep_id"]), _e(r["profile_id"]), _e(r["hosts"]), _e(r["python_version"]),
          _e(build_text(r["free_threaded"], r["gil_enabled"])), _e(r["cpu_model"]),
          (_e(r["usable_cpus"]), "num"), (_e(r["numa_nodes"]), "num"),
          (_e(fmt_bytes(r["mem_total_bytes"])), "num"),
          _e(stable.get((r["sweep_id"], r["profile_id"]), ""))]
         for r in data.profiles.to_dict("records")]))
    parts.append("<h3>Hosts and interpreters</h3>")
    parts.append(_table(
        ["sweep", "host", "python", "version", "build", "usable/logical CPUs", "profile",
         "status"],
        [[_e(r["sweep_id"]), _e(r["host"]), _e(r["python"]), _e(r["python_version"]),
          _e(build_text(r["free_threaded"], r["gil_enabled"])),
          _e("—" if render._missing(r["usable_cpus"])
             else f"{r['usable_cpus']}/{r['logical_cpus']}"), _e(r["profile_id"]),
          (_e(r["status"]) + (f": {_e(r['error'])}" if not render._missing(r["error"])
                              else ""), "" if r["status"] == "ok" else "status-failed")]
         for r in data.environments.to_dict("records")]))

    if not data.stability.empty:
        parts.append('<h3 id="stability">Host stability</h3>')
        parts.append('<p class="caption">From the speed probe timed before every repeat (see '
                     "Method). A failed control: this host's CPU-bound ratios are not to be "
                     "trusted.</p>")
        parts.append(_table(
            STABILITY_HEADERS,
            [[*(_e(c) for c in row[:3]),
              (_e(row[3]), {"stable": "", "unknown": "status-na"}.get(row[3], "status-failed")),
              _e(row[4]), *((_e(c), "num") for c in row[5:9]),
              (_e(row[9]), "status-failed" if row[9].startswith("failed") else "")]
             for row in stability_rows(data.stability)], "stability"))

    parts.append('<h2 id="sweeps">Sweeps</h2>')
    parts.append(_table(
        ["sweep", "started", "took", "status", "inventory", "profile", "hosts",
         "envs failed", "cells ok", "partial", "failed", "timeout", "n/a"],
        [[_e(r["sweep_id"]), _e(fmt_time(r["started_at"])), _e(fmt_duration(r["duration_s"])),
          (_e(r["status"]), "" if r["status"] == "complete" else "status-failed"),
          _e(r["inventory"]), _e(r["profile"]),
          *[_e(r[k]) for k in ("n_hosts", "n_envs_failed", "n_cells_ok", "n_cells_partial",
                               "n_cells_failed", "n_cells_timeout", "n_cells_not_applicable")]]
         for r in data.sweeps.to_dict("records")], numeric_from=6))
    failures, na = problem_tables(data.problems)
    parts.append("<h3>What failed and why</h3>")
    parts.append(_table(["sweep", "what", "host", "python", "cell", "reason"],
                        [[_e(c) for c in r] for r in failures])
                 if failures else '<p class="none">Nothing failed.</p>')
    if na:
        parts.append("<h3>Not applicable</h3>")
        parts.append(_table(["reason", "cells"], [[_e(c) for c in r] for r in na]))

    parts.append('<h2 id="matrix">Matrix per profile</h2>')
    parts.append(_legend())
    for i, s in enumerate(data.sections):
        parts.append(_profile_section(s, g_headers, g_rows, f"profile-{i}"))

    parts.append('<h2 id="builds">Free-threaded against standard build</h2>')
    if data.build_figures:
        parts += [_figure(f) for f in data.build_figures]
    else:
        parts.append(f'<p class="none">No host ran both builds: {NOT_MEASURED}.</p>')

    parts.append('<h2 id="more">More measurements</h2>')
    parts.append(_views(data.views))

    parts.append("<h2 id=\"claims\">The guide's claims, checked</h2>")
    sentence, why = claims_overview(data.sections)
    parts.append(f"<p>{_e(sentence)}</p>")
    if why:
        parts.append('<ul class="claims-why">' + "".join(f"<li>{_e(w)}</li>" for w in why)
                     + "</ul>")
    parts.append(_table(
        ["claim", "confirmed", "refuted", "inconclusive", "not testable", "not measurable",
         "measured here"],
        [[_e(claim_line(r)), (_e(r["n_confirmed"]), "num"), (_e(r["n_refuted"]), "num"),
          (_e(r["n_inconclusive"]), "num"), (_e(r["n_not_testable"]), "num"),
          (_e(r["n_not_measurable"]), "num"), _e(r["measured"])]
         for r in data.claims_summary.to_dict("records")]))
    for s in data.sections:
        parts.append(f"<h3>{_e(s.title)}</h3>")
        parts.append(_table(
            ["claim", "measured", "verdict", "note"],
            [[_e(claim_line(r)),
              (_e(fmt_speedup(r["speedup"], r["speedup_ci_low"], r["speedup_ci_high"])), "num"),
              (_e(r["verdict"]), "v-" + str(r["verdict"]).replace(" ", "-")), _e(r["note"])]
             for r in s.claims.to_dict("records")]))

    parts.append('<h2 id="decide">Decision guide, from these measurements</h2>')
    for s in data.sections:
        parts.append(f"<h3>{_e(s.title)}</h3>")
        parts.append(_table(
            ["workload", "use", "measured", "why", "the guide says"],
            [[_e(render.WORKLOAD_ROWS.get(r["workload"], r["workload"])),
              *[_e(x) for x in decision_text(r)],
              _e(f"{r['guide_choice']} {r['guide_claim']}")]
             for r in s.decisions.to_dict("records")]))
        parts.append('<p class="caption">Thresholds measured here, in place of the '
                     "guide's numbers:</p>")
        parts.append(_table(
            ["rule", "measured here", "details", "the guide says"],
            [[_e(rule), (_e(summary), "" if details else "none"),
              "<br>".join(_e(d) for d in details), _e(guide)]
             for rule, summary, details, guide
             in threshold_rows(s.thresholds, s.thresholds_error)],
            "thresholds"))

    parts.append('<h2 id="method">Method</h2><ul>')
    parts += [f"<li>{_e(n)}</li>" for n in method_notes(data.claim_tolerance)]
    parts.append(f"<li>{_e(STABILITY_NOTE)}</li>")
    parts.append("</ul>")
    body = "\n".join(parts)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>Python concurrency benchmark report</title>"
            f"<style>{CSS}</style></head><body><main>\n{body}\n</main></body></html>\n")
