"""``harness check [--repair]``: verify every file of the warehouse; with ``--repair``
move the damaged ones to ROOT/quarantine/ and rebuild the file index and the views."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from harness.cli.app import DEFAULT_RESULTS, ResultsOpt, app


@app.command()
def check(
    repair: Annotated[bool, typer.Option(
        "--repair", help="Move damaged files to RESULTS/quarantine/ (their relative path "
                         "kept) and rebuild the file index and the views.")] = False,
    results: ResultsOpt = DEFAULT_RESULTS,
) -> None:
    """Verify every warehouse file (footer, schema, rows, cells against their sweep).

    Prints one problem per line; exit 0 when the warehouse is sound, 1 when problems
    were found (with --repair: 1 when problems remain after the repair)."""
    from harness.warehouse import Warehouse

    warehouse = Warehouse(results)
    problems = warehouse.check()
    for problem in problems:
        sys.stdout.write(f"{problem}\n")
    if not problems:
        sys.stdout.write(f"{warehouse.root}: every file is sound\n")
        return
    if not repair:
        sys.stderr.write(f"{len(problems)} problems in {warehouse.root}\n"
                         f"hint: `harness check --repair --results {results}` moves the "
                         f"damaged files to quarantine/ and rebuilds the index and views\n")
        raise typer.Exit(1)
    for source, target in warehouse.repair(problems):
        sys.stdout.write(f"moved {source} to {target}\n")
    sys.stdout.write("rebuilt the file index and the views\n")
    left = warehouse.check()
    for problem in left:
        sys.stdout.write(f"still: {problem}\n")
    if left:
        raise typer.Exit(1)
    sys.stdout.write(f"{warehouse.root}: every file left is sound\n")
