"""``harness export`` and ``harness import``: a sweep as other tools' files, and their
files as sweeps (pyperf's JSON, both ways)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.app import DEFAULT_RESULTS, ResultsOpt, app
from harness.errors import OptionError, WarehouseInputError

EXPORT_FORMATS = ("pyperf",)

import_app = typer.Typer(help="Store other tools' result files as sweeps.",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")


@app.command()
def export(
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Directory for the files (created if missing).")],
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help="pyperf: one benchmark-suite JSON file per host x "
                               "interpreter.")] = "pyperf",
    sweep_id: Annotated[str | None, typer.Option(
        "--sweep", "-s", help="Sweep id or a unique prefix (default: the latest).")] = None,
    results: ResultsOpt = DEFAULT_RESULTS,
) -> None:
    """Write a sweep as pyperf files (pyperf stats, hist and compare_to read them)."""
    from harness.interchange.pyperf_export import export_pyperf
    from harness.warehouse import Warehouse

    if fmt not in EXPORT_FORMATS:
        raise OptionError(f"--format {fmt!r} is not an export format",
                          hint=f"use {', '.join(EXPORT_FORMATS)}")
    done = export_pyperf(Warehouse(results), sweep_id, out)
    for line in done.left_out:
        typer.echo(f"left out: {line}")
    for line in done.notes:
        typer.echo(f"note: {line}")
    for path, count in done.files:
        typer.echo(f"wrote {path} ({count} benchmarks)")
    if not done.files:
        raise WarehouseInputError(f"sweep {done.sweep_id}: nothing to export: no cell has "
                                  "timed values")


@import_app.command("pyperf")
def import_pyperf(
    files: Annotated[list[Path], typer.Argument(
        help="pyperf JSON files (pyperf -o, pyperformance, harness export); .json.gz too.")],
    results: ResultsOpt = DEFAULT_RESULTS,
    host: Annotated[str | None, typer.Option(
        "--host", help="Host name to store (default: the file's hostname metadata).")] = None,
) -> None:
    """Store each pyperf file as a sweep of its own (profile pyperf-import)."""
    from harness.interchange import pyperf_import
    from harness.warehouse import Warehouse

    suites = pyperf_import.read_all(files)  # every file checked before any is stored
    warehouse = Warehouse(results)
    for path, suite in zip(files, suites, strict=True):
        done = pyperf_import.import_pyperf(warehouse, path, host, suite)
        for line in done.left_out:
            typer.echo(f"left out: {path}: {line}")
        typer.echo(f"sweep {done.sweep_id}: {path}: {done.environments} environments, "
                   f"{done.cells} cells, {done.values} values, {done.warmups} warmups")
