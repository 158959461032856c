"""``harness workloads list|show|validate``: the workload catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.app import stdout_console, workloads_app
from harness.errors import OptionError
from harness.plan.catalog import WORKLOADS_DIR, load_catalog, load_workload_file


@workloads_app.command("list")
def workloads_list() -> None:
    """List the workloads of the catalogue."""
    from rich.table import Table

    table = Table(title=f"Workloads ({WORKLOADS_DIR})")
    for col in ("name", "title", "models", "params"):
        table.add_column(col)
    for w in load_catalog().values():
        table.add_row(w.name, w.title, " ".join(w.models),
                      " ".join(f"{k}={v}" for k, v in w.params.items()))
    stdout_console().print(table)


@workloads_app.command("show")
def workloads_show(name: Annotated[str, typer.Argument(help="A workload name.")]) -> None:
    """Show one workload's definition file."""
    catalog = load_catalog()
    if name not in catalog:
        raise OptionError(f"workload {name!r} is not in the catalogue",
                          hint=f"known workloads: {', '.join(catalog)}")
    typer.echo(catalog[name].path.read_text())


@workloads_app.command("validate")
def workloads_validate(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Definition files (default: the whole catalogue).")] = None,
) -> None:
    """Check workload definition files; exit 2 on the first invalid one."""
    if not files:
        catalog = load_catalog()
        typer.echo(f"{len(catalog)} workload definitions valid in {WORKLOADS_DIR}")
        return
    for path in files:
        w = load_workload_file(path, impl_dir=WORKLOADS_DIR)
        typer.echo(f"{path}: valid ({w.name})")

