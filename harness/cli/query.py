"""``harness sql``, ``compare`` and ``report``: questions to the warehouse."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.app import DEFAULT_RESULTS, FormatOpt, ResultsOpt, app
from harness.errors import OptionError


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL over the views sweeps, environments, "
                                              "measurements, cells, matrix, profile_matrix, "
                                              "history, compare_sweeps and the table "
                                              "changes (docs/reference.md).")],
    results: ResultsOpt = DEFAULT_RESULTS,
    fmt: FormatOpt = "table",
    max_rows: Annotated[int, typer.Option(
        "--max-rows", help="With --format table: show at most this many rows, and say how "
                           "many there are (0: all). csv, json and markdown print every "
                           "row.")] = 1000,
) -> None:
    """Run SQL over the warehouse."""
    from harness import render
    from harness.warehouse import Warehouse

    render.check_format(fmt)
    if max_rows < 0:
        raise OptionError(f"--max-rows {max_rows} is negative", hint="use 0 to show every row")
    cap = max_rows if fmt == "table" and max_rows > 0 else None
    answer = Warehouse(results).fetch(query, max_rows=cap)
    typer.echo(render.format_answer(answer, fmt))



@app.command()
def compare(
    by: Annotated[str, typer.Option(
        "--by", "-b", help="host, python or profile: what differs between the two sides; "
                           "sweep: before and after, the same environments (host, "
                           "interpreter, hardware profile) in two sweeps.")] = "profile",
    sweep_ids: Annotated[list[str] | None, typer.Option(
        "--sweep", "-s", help="Sweep id or unique prefix (repeatable; default: the latest). "
                              "With several, compare each later sweep against the first. "
                              "With --by sweep: the sweep compared to the baseline (one).")
    ] = None,
    baseline: Annotated[str | None, typer.Option(
        "--baseline", help="With --by host/python/profile: keep pairs where one side's "
                           "host, interpreter or profile contains this text; that side is "
                           "A. With --by sweep: the baseline sweep (A; an id, a unique "
                           "prefix or 'latest'), required.")] = None,
    results: ResultsOpt = DEFAULT_RESULTS,
    fmt: Annotated[str, typer.Option("--format", "-f",
                                     help="table, markdown or json.")] = "table",
) -> None:
    """Matrices side by side: per cell the ratio between them and whether it is significant.

    --by sweep: per environment in both sweeps, each cell (matched on its planned cell:
    workload, params, model, workers) in the baseline A and in B: B/A time (A's median /
    B's, above 1: B is faster) and B/A speedup, each with its interval and verdict, and
    a summary line as pyperf compare_to ("2 faster, 1 slower, 17 unchanged"). Across
    sweeps both ratios are unpaired (no block holds both sweeps).
    """
    from harness import compare as comparing
    from harness.warehouse import Warehouse

    if by not in (*comparing.BY_CHOICES, "sweep"):
        raise OptionError(f"--by {by!r} is not one of "
                          f"{', '.join((*comparing.BY_CHOICES, 'sweep'))}")
    if fmt not in comparing.FORMATS:
        raise OptionError(f"--format {fmt!r} is not a format",
                          hint="use table, markdown or json")
    if by == "sweep":
        from harness import sweep_compare

        if not baseline:
            raise OptionError("--by sweep needs --baseline SWEEP (the sweep before)",
                              hint="`harness sweeps` lists the sweeps")
        if len(sweep_ids or ()) > 1:
            raise OptionError("--by sweep compares one --sweep against the --baseline",
                              hint="`harness history` shows a cell over every sweep")
        answer = sweep_compare.compare_sweeps(Warehouse(results), baseline,
                                              (sweep_ids or [None])[0])
        typer.echo(sweep_compare.format_sweeps(answer, fmt), nl=False)
        return
    found = comparing.compare(Warehouse(results), by, tuple(sweep_ids or ()), baseline)
    typer.echo(comparing.format_comparisons(found, fmt), nl=False)


@app.command()
def history(
    host: Annotated[str | None, typer.Option(
        "--host", help="Only hosts whose inventory name contains this text.")] = None,
    python: Annotated[str | None, typer.Option(
        "--python", "-p", help="Only interpreters whose path contains this text.")] = None,
    workload: Annotated[str | None, typer.Option(
        "--workload", "-w", help="Only this workload.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model.")
                     ] = None,
    results: ResultsOpt = DEFAULT_RESULTS,
    fmt: Annotated[str, typer.Option("--format", "-f",
                                     help="table, markdown or json.")] = "table",
) -> None:
    """Each cell of an environment over all its sweeps, oldest first, with its steps.

    An environment is a host, an interpreter and a hardware profile; per sweep a cell
    shows its median time and speedup. A step (marked on the first sweep after it: ^
    slower, v faster, + / - speedup up / down) is found by binary segmentation of an
    L1 piecewise-constant fit (segment level = median of its sweeps' medians, interval
    = median of their 97.5% interval ends) and kept only when the two segments'
    intervals do not overlap AND their levels differ by at least 5%. The same steps
    are the table `changes` in `harness sql`.
    """
    from harness import history as histories
    from harness.warehouse import Warehouse

    if fmt not in histories.FORMATS:
        raise OptionError(f"--format {fmt!r} is not a format",
                          hint="use table, markdown or json")
    found = histories.history(Warehouse(results), host=host, python=python,
                              workload=workload, model=model)
    typer.echo(histories.format_history(found, fmt), nl=False)


@app.command()
def report(
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="The report file: FILE.html (self-contained) or FILE.md.")],
    sweep_ids: Annotated[list[str] | None, typer.Option(
        "--sweep", "-s", help="Sweep id (repeatable; default: the latest of each "
                              "inventory).")] = None,
    all_sweeps: Annotated[bool, typer.Option(
        "--all-sweeps", help="Every sweep in the warehouse.")] = False,
    results: ResultsOpt = DEFAULT_RESULTS,
) -> None:
    """A self-contained report (HTML, or Markdown with SVG files) across machines."""
    from harness.report.write import write_report
    from harness.warehouse import Warehouse

    written = write_report(Warehouse(results), out, tuple(sweep_ids or ()),
                           all_sweeps=all_sweeps)
    for path in written:
        typer.echo(str(path))

