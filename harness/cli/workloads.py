"""``harness workloads list|show|validate``: the workload catalogue (the built-in one and
the user's ``--workloads`` directories)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.app import WorkloadDirsOpt, stdout_console, workloads_app
from harness.errors import OptionError
from harness.plan.catalog import WORKLOADS_DIR, load_catalog, load_workload_file


@workloads_app.command("list")
def workloads_list(workload_dirs: WorkloadDirsOpt = None) -> None:
    """List the workloads of the catalogue and where each comes from."""
    from rich.table import Table

    catalog = load_catalog(extra=workload_dirs or ())
    table = Table(title=f"Workloads (built-in: {WORKLOADS_DIR})")
    for col in ("name", "title", "models", "params"):
        table.add_column(col)
    table.add_column("source", overflow="fold")  # built-in, or the --workloads directory
    for w in catalog.values():
        table.add_row(w.name, w.title, " ".join(w.models),
                      " ".join(f"{k}={v}" for k, v in w.params.items()), w.source)
    stdout_console().print(table)


@workloads_app.command("show")
def workloads_show(name: Annotated[str, typer.Argument(help="A workload name.")],
                   workload_dirs: WorkloadDirsOpt = None) -> None:
    """Show one workload's definition file."""
    catalog = load_catalog(extra=workload_dirs or ())
    if name not in catalog:
        raise OptionError(f"workload {name!r} is not in the catalogue",
                          hint=f"known workloads: {', '.join(catalog)}")
    typer.echo(catalog[name].path.read_text())


@workloads_app.command("validate")
def workloads_validate(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Definition files (default: the whole catalogue).")] = None,
    workload_dirs: WorkloadDirsOpt = None,
) -> None:
    """Check workload definition files; exit 2 on the first invalid one."""
    if not files:
        catalog = load_catalog(extra=workload_dirs or ())
        where = ", ".join([str(WORKLOADS_DIR), *(str(d) for d in workload_dirs or ())])
        typer.echo(f"{len(catalog)} workload definitions valid in {where}")
        return
    for path in files:
        # its modules: its own directory's, else the built-in ones
        w = load_workload_file(path, impl_dir=(path.parent, WORKLOADS_DIR))
        typer.echo(f"{path}: valid ({w.name})")
