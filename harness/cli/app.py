"""The typer application, the options several commands share, and ``main``.

Every command parses its options, calls one library function and formats the
answer. HarnessError is caught once, in ``main``: one line on stderr, a hint,
and the error's exit status (2 for bad input), never a traceback.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harness.errors import HarnessError, WarehouseWarning

if TYPE_CHECKING:
    from rich.console import Console

# Each command imports what it needs (rich, pandas, the warehouse, ...) when it runs:
# a command's start is the user's wait, and `harness sql` needs neither rich nor pandas.

DEFAULT_RESULTS = Path("results")

app = typer.Typer(
    help="Benchmark Python concurrency models across machines; query the results in DuckDB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
workloads_app = typer.Typer(help="The workload catalogue.", no_args_is_help=True)
app.add_typer(workloads_app, name="workloads")

InventoryOpt = Annotated[Path, typer.Option(
    "--inventory", "-i", help="Ansible inventory (INI or YAML); default: this machine alone.")]
LimitOpt = Annotated[str | None, typer.Option(
    "--limit", "-l", help="Ansible host pattern selecting hosts of the inventory.")]
ResultsOpt = Annotated[Path, typer.Option(
    "--results", "-r", help="The warehouse directory.")]
AcceptKeysOpt = Annotated[bool, typer.Option(
    "--accept-new-host-keys", help="Trust and remember host keys not yet in known_hosts.")]
KnownHostsOpt = Annotated[Path | None, typer.Option(
    "--known-hosts", help="A known_hosts file checked besides ~/.ssh/known_hosts.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, csv, json or markdown.")]
WorkloadDirsOpt = Annotated[list[Path] | None, typer.Option(
    "--workloads", metavar="DIR", help="Also a directory of your own workload definitions "
                                       "(*.toml) and their modules (*.py) (repeatable).")]



def stdout_console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)



def show_warning(message: Warning | str, category: type[Warning], filename: str,
                 lineno: int, file: object = None, line: str | None = None) -> None:
    """A WarehouseWarning (a damaged file a reader left out) as one line on stderr; any
    other warning as Python shows it."""
    if issubclass(category, WarehouseWarning):
        sys.stderr.write(f"harness: warning: {message}\n")
        return
    _python_show_warning(message, category, filename, lineno, file, line)  # type: ignore[arg-type]


_python_show_warning = warnings.showwarning


def main() -> None:
    """Entry point: run the app, turning HarnessError into one line and an exit status."""
    warnings.showwarning = show_warning
    try:
        status = app(standalone_mode=False)
    except HarnessError as exc:
        # Plain writes: a console would wrap the one line at the terminal's width.
        sys.stderr.write(f"harness: error: {exc.message}\n")
        if exc.hint:
            sys.stderr.write(f"hint: {exc.hint}\n")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        stderr_console().print("harness: interrupted", markup=False)
        sys.exit(130)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:
        # click's own usage errors (a ClickException: typer bundles click as a private
        # module in recent releases (0.29 here), so it is recognised by what it offers)
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
    # Outside standalone mode click returns the status of typer.Exit instead of exiting.
    sys.exit(status if isinstance(status, int) else 0)
