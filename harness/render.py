"""Formatting of warehouse answers: the matrix per hardware profile, and SQL results.

Python only formats here; every number comes from the views in analysis/views.sql.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import OptionError
from harness.formatting import (
    MISSING,
    MODEL_COLUMNS,
    WORKLOAD_ROWS,
    fmt_seconds,
    get,
    md_cell,
    missing,
    ordered,
    workload_title,
)

if TYPE_CHECKING:
    import pandas
    from rich.table import Table

# pandas and rich are imported by the functions that use them: `harness sql` formats
# plain rows and needs neither (importing both costs ~0.4 s of a command's start).

FORMATS = ("table", "csv", "json", "markdown")


def check_format(fmt: str) -> None:
    """An OptionError unless ``fmt`` is one of FORMATS (checked before any work)."""
    if fmt not in FORMATS:
        raise OptionError(f"--format {fmt!r} is not a format",
                          hint=f"use one of {', '.join(FORMATS)}")


@dataclass(frozen=True)
class Cell:
    """What one matrix cell shows, and the note it adds under the table."""

    text: str
    note: str | None = None
    style: str = ""


def format_cell(row: pandas.Series | dict[str, Any]) -> Cell:
    """The text of one matrix cell from a matrix/profile_matrix row."""
    status = get(row, "status") or "failed"
    reason = get(row, "reason")
    speedup = get(row, "speedup")
    if status == "not_applicable":
        return Cell("n/a", reason or "not applicable", "dim")
    if status in ("failed", "timeout") or (get(row, "n") or 0) == 0:
        return Cell("timeout" if status == "timeout" else "failed", reason or status, "red")
    if speedup is None:
        median = get(row, "median_s")
        text = fmt_seconds(median) if median is not None else MISSING
        return Cell(text, reason or "no sequential baseline", "yellow")
    if get(row, "model") == "sequential":
        median = get(row, "median_s")
        text = f"{speedup:.2f}x" + (f" ({fmt_seconds(median)})" if median is not None else "")
    else:
        lo, hi = get(row, "speedup_ci_low"), get(row, "speedup_ci_high")
        text = f"{speedup:.2f}x"
        if lo is not None and hi is not None:
            text += f" [{lo:.2f}-{hi:.2f}]"
    if status == "partial":
        return Cell(text + "*", f"some repeats failed: {reason}", "yellow")
    style = "green" if speedup >= 1.1 else ("red" if speedup < 0.9 else "")
    return Cell(text, None, style)


def profile_title(rows: pandas.DataFrame) -> str:
    """Host(s), CPU model, usable CPUs, Python version, free-threaded or GIL, NUMA nodes."""
    first = rows.iloc[0]
    hosts_col = "profile_hosts" if "profile_hosts" in rows else "hosts"
    hosts: set[str] = set()
    for col in (hosts_col, "hosts", "host"):
        if col in rows:
            for value in rows[col].dropna():
                hosts.update(h.strip() for h in str(value).split(",") if h.strip())
            if hosts:
                break
    parts = [", ".join(sorted(hosts)) or str(get(first, "profile_id") or "unknown host")]
    cpu = get(first, "cpu_model")
    parts.append(str(cpu) if cpu else "unknown CPU")
    usable = get(first, "usable_cpus")
    parts.append(f"{usable} usable CPUs" if usable is not None else "usable CPUs unknown")
    version = get(first, "python_version")
    impl = get(first, "implementation")
    py = f"Python {version or '?'}"
    if impl and str(impl).lower() != "cpython":
        py += f" ({impl})"
    free = get(first, "free_threaded")
    gil = get(first, "gil_enabled")
    if free:
        py += " free-threaded" + (" (GIL re-enabled)" if gil else "")
    elif free is not None or gil is not None:
        py += " with GIL"
    parts.append(py)
    numa = get(first, "numa_nodes")
    if numa is not None:
        parts.append(f"{numa} NUMA node" + ("" if numa == 1 else "s"))
    return " · ".join(parts)


def _interval_note(rows: pandas.DataFrame) -> str:
    """What the intervals mean, with the confidence they really have."""
    note = "speedup over sequential: median [interval]"
    if "speedup_ci_level" in rows:
        import pandas

        levels = pandas.to_numeric(rows["speedup_ci_level"], errors="coerce").dropna()
        if not levels.empty:
            low = float(levels.min())
            if low >= 0.95:
                return note + ", each interval >= 95% confidence"
            return (note + f", intervals down to {low:.1%} confidence (few repeats; "
                    "7 or more per cell give >= 95%)")
    return note + ", 95% intervals"


def _group_keys(df: pandas.DataFrame) -> list[tuple[Any, Any]]:
    key_col = "profile_id" if "profile_id" in df else "env_id"
    keys = df[["sweep_id", key_col]].astype(object).where(df[["sweep_id", key_col]].notna(), None)
    seen: dict[tuple[Any, Any], None] = {}
    for sweep, key in keys.itertuples(index=False, name=None):
        seen.setdefault((sweep, key), None)
    return list(seen)


VERDICT_STYLES = {"stable": "green", "noisy": "yellow", "unstable": "red", "unknown": "dim"}


def stability_lines(stability: pandas.DataFrame | None, sweep_id: Any, key_col: str,
                    key: Any) -> list[tuple[str, str]]:
    """(line, style) under one matrix: ``host python: verdict (reasons)`` for each
    environment of the matrix's (sweep, profile) in ``stability`` (host_noise joined to
    control_checks, see harness.stability.host_stability), then the failed controls."""
    if stability is None or stability.empty or key_col not in stability:
        return []
    from harness.stability import verdict_line

    rows = stability[(stability["sweep_id"] == sweep_id) & (stability[key_col] == key)]
    lines: list[tuple[str, str]] = []
    controls: list[tuple[str, str]] = []
    for r in rows.to_dict("records"):
        verdict = get(r, "verdict")
        lines.append((verdict_line(str(r["host"]), get(r, "python"), verdict,
                                   get(r, "reasons")), VERDICT_STYLES.get(verdict, "")))
        if get(r, "control_failed") and get(r, "control_message"):
            controls.append((str(r["control_message"]), "red"))
    return lines + controls


def matrix_tables(df: pandas.DataFrame, *, color: bool = True) -> list[Table]:
    """One rich Table per (sweep, profile) from profile_matrix (or matrix) rows."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    if df is None or df.empty:
        return []
    key_col = "profile_id" if "profile_id" in df else "env_id"
    tables: list[Table] = []
    for sweep_id, key in _group_keys(df):
        sel = df["sweep_id"].eq(sweep_id) if sweep_id is not None else df["sweep_id"].isna()
        sel &= df[key_col].eq(key) if key is not None else df[key_col].isna()
        rows = df[sel]
        models = ordered(rows["model"], MODEL_COLUMNS)
        workloads = ordered(rows["workload"], WORKLOAD_ROWS)
        table = Table(
            title=Text(profile_title(rows)),
            caption=None,
            caption_justify="left",
            box=box.SIMPLE_HEAVY if color else box.ASCII2,
            show_lines=False,
        )
        table.add_column("workload", no_wrap=True)
        for model in models:
            table.add_column(model, justify="right", no_wrap=True)
        notes: dict[str, list[str]] = {}
        for workload in workloads:
            wrows = rows[rows["workload"] == workload]
            line = [Text(workload_title(workload))]
            for model in models:
                hit = wrows[wrows["model"] == model]
                if hit.empty:
                    line.append(Text(MISSING))
                    continue
                cell = format_cell(hit.iloc[0])
                if cell.note:
                    label = f"{cell.text.rstrip('*')} {model}: {cell.note}"
                    notes.setdefault(label, []).append(workload)
                line.append(Text(cell.text, style=cell.style if color else ""))
            table.add_row(*line, style=None)
        caption = [f"sweep {sweep_id}, profile {key}"]
        caption += [f"{label} ({', '.join(ws)})" for label, ws in notes.items()]
        caption.append(_interval_note(rows))
        table.caption = Text("\n".join(caption))
        tables.append(table)
    return tables


def matrix_renderables(df: pandas.DataFrame, *, color: bool = True,
                       stability: pandas.DataFrame | None = None) -> list[Any]:
    """:func:`matrix_tables`, each followed by the stability lines of its environments
    (:func:`stability_lines`) when ``stability`` is given."""
    from rich.text import Text

    out: list[Any] = []
    key_col = "profile_id" if df is not None and "profile_id" in df else "env_id"
    keys = _group_keys(df) if df is not None and not df.empty else []
    for table, (sweep_id, key) in zip(matrix_tables(df, color=color), keys, strict=True):
        out.append(table)
        lines = stability_lines(stability, sweep_id, key_col, key)
        if lines:
            text = Text()
            for i, (line, style) in enumerate(lines):
                text.append(("\n" if i else "") + line, style=style if color else "")
            out.append(text)
    return out


def _render(renderables: Iterable[Any], width: int = 200) -> str:
    from rich.console import Console

    buf = io.StringIO()
    console = Console(
        file=buf, width=width, color_system=None, force_terminal=False, no_color=True,
        highlight=False, emoji=False, markup=False,
    )
    for r in renderables:
        console.print(r)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def matrix_text(df: pandas.DataFrame, stability: pandas.DataFrame | None = None) -> str:
    """The matrix tables as plain text, no colour codes."""
    shown = matrix_renderables(df, color=False, stability=stability)
    if not shown:
        return "no matrix cells\n"
    return _render(shown)


def _plain(value: Any) -> Any:
    """A plain Python value: None when missing, a timestamp as ISO text, a NumPy scalar
    as its Python value."""
    if missing(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (ValueError, TypeError):
            return value
    return value


def value_text(value: Any) -> str:
    """A query answer's value as text: '' when missing, a float to 6 significant digits."""
    cls = value.__class__  # the common plain types first: a table has thousands of cells
    if cls is str:
        return value
    if cls is int or cls is bool:
        return str(value)
    if cls is float:
        return "" if value != value else f"{value:.6g}"
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


_NUMERIC_TYPE_RE = re.compile(
    r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|FLOAT|DOUBLE|REAL|DECIMAL(\(.*\))?)$", re.I)

# The table format: a cell shows at most this many characters (csv, json and markdown
# keep every character).
MAX_CELL_WIDTH = 48


def numeric_type(duckdb_type: str) -> bool:
    """Whether a DuckDB column type is a number (right-aligned in the table format)."""
    return bool(_NUMERIC_TYPE_RE.match(duckdb_type.strip()))


def json_value(value: Any) -> Any:
    """A query answer's value for json.dumps (str, int and bool as they are)."""
    if value is None or value.__class__ in (str, int, bool):
        return value
    return _plain(value)


def _cell(value: Any) -> str:
    text = value_text(value)
    if "\n" in text or "\t" in text or "\r" in text:
        text = " ".join(text.split())
    if len(text) > MAX_CELL_WIDTH:
        text = text[:MAX_CELL_WIDTH - 1] + "…"
    return text


def _widths(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[int]:
    """Each column's width: its longest text, header included."""
    widths = [len(h) for h in headers]
    for r in rows:
        for i, text in enumerate(r):
            if len(text) > widths[i]:
                widths[i] = len(text)
    return widths


def _plain_table(columns: Sequence[str], numeric: Sequence[bool],
                 rows: Iterable[Sequence[Any]]) -> list[str]:
    """A fixed-width table: header, rule, one line per row; numbers right-aligned, other
    values left-aligned, each cell cut at MAX_CELL_WIDTH characters."""
    cells = [[_cell(v) for v in r] for r in rows]
    widths = _widths(columns, cells)

    def join(parts: Iterable[str]) -> str:
        return "  ".join(parts).rstrip()

    out = [join(c.rjust(w) if num else c.ljust(w)
                for c, w, num in zip(columns, widths, numeric, strict=True)),
           join("─" * w for w in widths)]
    out += [join(t.rjust(w) if num else t.ljust(w)
                 for t, w, num in zip(line, widths, numeric, strict=True)) for line in cells]
    return out


def ascii_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *,
                right: Collection[int] = ()) -> list[str]:
    """A boxed table of text in ASCII (+---+ | x |), the columns in ``right``
    right-aligned: the lines, without a trailing newline."""
    rows = [list(r) for r in rows]
    widths = _widths(headers, rows)
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(t.rjust(w) if i in right else t.ljust(w)
                                 for i, (t, w) in enumerate(zip(cells, widths, strict=True))) + " |"

    return [rule, line(headers), rule, *(line(r) for r in rows), rule]


def format_rows(columns: Sequence[str], numeric: Sequence[bool],
                rows: Sequence[Sequence[Any]], fmt: str = "table", *,
                capped: bool = False, total: int | None = None) -> str:
    """Rows as text: table (plain, fixed width), csv, json (records array), markdown.

    ``capped``: ``rows`` are only the first rows of an answer of ``total`` rows (None:
    not counted); the table format says so under the table. csv, json and markdown
    are for complete answers."""
    check_format(fmt)
    columns = [str(c) for c in columns]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if missing(v) else v for v in r] for r in rows])
        return buf.getvalue()
    if fmt == "json":
        return json.dumps([dict(zip(columns, map(json_value, r), strict=True)) for r in rows],
                          default=str, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        def cell(v: Any) -> str:
            return md_cell(value_text(v))

        lines = ["| " + " | ".join(cell(c) for c in columns) + " |",
                 "| " + " | ".join("---" for _ in columns) + " |"]
        lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
        return "\n".join(lines) + "\n"
    if not columns:
        return "\n"
    lines = _plain_table(columns, numeric, rows)
    if capped:
        shown = f"the first {len(rows):,} shown"
        lines.append(f"({total:,} rows, {shown}" if total is not None
                     else f"(more than {len(rows):,} rows, {shown}")
        lines[-1] += "; --max-rows 0 shows all, --format csv or json prints all)"
    return "\n".join(lines) + "\n"


def format_answer(answer: Any, fmt: str = "table") -> str:
    """A :class:`harness.warehouse.Answer` as text (see :func:`format_rows`)."""
    return format_rows(answer.columns, [numeric_type(t) for t in answer.types], answer.rows,
                       fmt, capped=answer.capped, total=answer.total)


def format_frame(df: pandas.DataFrame, fmt: str = "table") -> str:
    """A query answer as text: table (plain), csv, json (records array), markdown (pipes)."""
    import pandas

    check_format(fmt)
    if fmt == "csv":
        return df.to_csv(index=False)
    numeric = [pandas.api.types.is_numeric_dtype(df[c])
               and not pandas.api.types.is_bool_dtype(df[c]) for c in df.columns]
    records = [[_plain(v) for v in row] for row in df.itertuples(index=False, name=None)]
    return format_rows([str(c) for c in df.columns], numeric, records, fmt)


# --------------------------------------------------------------------------- probe --noise


def _noise_summary(r: Any) -> str:
    """One line of what ``harness probe --noise`` measured on an interpreter."""
    noise, verdict = r.noise or {}, r.verdict
    st = verdict.stats
    parts = [f"{st.n_probes} probes in {noise.get('seconds', 0):.1f} s"]
    if st.probe_median_s is not None:
        parts.append(f"median {fmt_seconds(st.probe_median_s)}")
    for label, value, fmt in (("p90/p10", st.p90_p10, "{:.2f}"),
                              ("upper/lower median", st.split_ratio, "{:.2f}x"),
                              ("stdev within the fences", st.inlier_cv, "{:.1%} of the mean"),
                              ("outliers", st.outlier_pct, "{:.1f}%"),
                              ("steal", st.steal_mean_pct, "{:.1f}%"),
                              ("load", st.loadavg_max, "{:.2f}")):
        if value is not None:
            parts.append(f"{label} {fmt.format(value)}")
    return "  " + ", ".join(parts)


def noise_text(results: Sequence[Any], seconds: float) -> str:
    """``harness probe --noise``: per interpreter ``host python: verdict (reasons)`` and a
    line of its probe statistics (``results``: harness.remote.probing.ProbeResult)."""
    from harness.stability import verdict_line

    lines = []
    for r in results:
        verdict = r.verdict
        if verdict is None:
            lines.append(f"{r.host} {r.python}: failed ({r.error or 'no probe series'})")
            continue
        lines.append(verdict_line(r.host, r.python, verdict.verdict, verdict.reasons_text))
        lines.append(_noise_summary(r))
    lines.append(f"({seconds:g} s of speed probes per interpreter; the rules and thresholds: "
                 "analysis/noise.sql)")
    return "\n".join(lines)


def noise_records(results: Sequence[Any]) -> list[dict[str, Any]]:
    """``harness probe --noise --json``: one record per host x interpreter."""
    from dataclasses import asdict

    out = []
    for r in results:
        verdict = r.verdict
        out.append({
            "host": r.host, "python": r.python, "profile_id": r.profile_id, "error": r.error,
            "verdict": verdict.verdict if verdict else None,
            "reasons": list(verdict.reasons) if verdict else [],
            "stats": asdict(verdict.stats) if verdict else None,
            "noise": dict(r.noise) if r.noise is not None else None,
        })
    return out
