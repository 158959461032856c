"""The ``harness`` command line: a thin typer layer over the library.

Every command parses its options, calls one library function and formats the
answer. HarnessError is caught once, in ``main``: one line on stderr, a hint,
and the error's exit status (2 for bad input), never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harness.engines.registry import DEFAULT_ENGINE, engines_help
from harness.errors import HarnessError, OptionError, WarehouseInputError
from harness.paths import DEFAULT_INVENTORY
from harness.plan.catalog import WORKLOADS_DIR, load_catalog, load_workload_file

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


def _stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _print_matrix(results: Path, sweep_id: str | None, as_json: bool) -> None:
    from harness import render
    from harness.stability import host_stability
    from harness.warehouse import Warehouse

    warehouse = Warehouse(results)
    sid = warehouse.resolve_sweep_id(sweep_id or "latest")
    frame = warehouse.query("SELECT * FROM profile_matrix WHERE sweep_id = ?", [sid])
    if as_json:
        typer.echo(render.format_frame(frame, "json"))
        return
    stability = None
    try:  # the host verdicts under each matrix (analysis/noise.sql)
        stability = host_stability(warehouse, [sid])
    except HarnessError as exc:
        _stderr().print(f"host stability not shown: {exc.message}", markup=False)
    console = _stdout()
    if console.is_terminal:
        for shown in render.matrix_renderables(frame, stability=stability):
            console.print(shown)
    else:
        typer.echo(render.matrix_text(frame, stability))


@app.command()
def sweep(
    inventory: InventoryOpt = DEFAULT_INVENTORY,
    limit: LimitOpt = None,
    profile: Annotated[str, typer.Option(
        "--profile", "-p", help="quick (about a minute here), standard or full.")] = "quick",
    workload: Annotated[list[str] | None, typer.Option(
        "--workload", "-w", help="Only this workload (repeatable).")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="Only this model (repeatable); sequential is always kept.")] = None,
    results: ResultsOpt = DEFAULT_RESULTS,
    resume: Annotated[str | None, typer.Option(
        "--resume", help="Run only the missing cells of this sweep id (or 'latest').")] = None,
    accept_new_host_keys: AcceptKeysOpt = False,
    known_hosts: KnownHostsOpt = None,
    parallel_same_machine: Annotated[bool, typer.Option(
        "--parallel-same-machine",
        help="Run hosts that are one physical machine at the same time (tests only).")] = False,
    engine: Annotated[str, typer.Option(
        "--engine", help=f"{engines_help()}.")] = DEFAULT_ENGINE,
    forks: Annotated[int, typer.Option(
        "--forks", help="With --engine ansible: hosts handled at once (1 to 1000).")] = 8,
    dimensions: Annotated[bool | None, typer.Option(
        "--dimensions/--no-dimensions",
        help="Also run the dimension cells (workers, task size, payload, start method, "
             "NUMA, GIL; see workloads/*.toml). Default: on for standard and full, off "
             "for quick.")] = None,
    dimension: Annotated[list[str] | None, typer.Option(
        "--dimension", "-d",
        help="Only this dimension (repeatable, e.g. workers, task_duration, payload); "
             "implies --dimensions.")] = None,
    recalibrate: Annotated[bool, typer.Option(
        "--recalibrate",
        help="Measure each host's CPU loop rate again instead of reusing the one an "
             "earlier sweep stored in RESULTS/calibration (the loop sizes then change).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the benchmark matrix on every selected host and interpreter, then print it."""
    from harness.progress import make_progress
    from harness.sweep.options import SweepOptions
    from harness.sweep.run import run_sweep

    options = SweepOptions(
        inventory=inventory, results=results, profile=profile, limit=limit,
        workloads=tuple(workload or ()), models=tuple(model or ()), resume=resume,
        accept_new_host_keys=accept_new_host_keys, known_hosts=known_hosts,
        parallel_same_machine=parallel_same_machine, engine=engine, forks=forks,
        dimensions=dimensions, dimension_names=tuple(dimension or ()),
        recalibrate=recalibrate)
    with make_progress(_stderr()) as progress:
        result = run_sweep(options, progress)
    if as_json:
        typer.echo(json.dumps({
            "sweep_id": result.sweep_id, "cells_run": result.cells_run,
            "failures": [f.__dict__ for f in result.failures], "exit_code": result.exit_code,
        }, indent=2))
    else:
        _print_matrix(results, result.sweep_id, False)
        err = _stderr()
        if result.failures:
            err.print(f"{len(result.failures)} failures in sweep {result.sweep_id}:")
            for f in result.failures:
                err.print(f"  {f.host}{' ' + f.python if f.python else ''}: {f.reason}",
                          markup=False)
        err.print(f"sweep {result.sweep_id}: {result.cells_run} cells stored in {results}",
                  markup=False)
    raise typer.Exit(result.exit_code)


# ``--noise`` takes an optional SECONDS (an argument after it): unknown options reach
# that argument, so ``--noise -1`` is refused as a bad SECONDS, not as an unknown option.
@app.command(context_settings={"ignore_unknown_options": True})
def probe(
    inventory: InventoryOpt = DEFAULT_INVENTORY,
    limit: LimitOpt = None,
    accept_new_host_keys: AcceptKeysOpt = False,
    known_hosts: KnownHostsOpt = None,
    noise: Annotated[bool, typer.Option(
        "--noise", help="Time the speed probe on every host for SECONDS (default 5, at most "
                        "600) and print each host's stability verdict: stable, noisy or "
                        "unstable, with reasons (the rules of analysis/noise.sql).")] = False,
    seconds: Annotated[str | None, typer.Argument(
        metavar="SECONDS", help="With --noise: how long to probe each host (default 5).",
        show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fingerprint every host and interpreter (cores, affinity, NUMA, memory, build, GIL);
    with --noise, judge each host's stability from a few seconds of speed probes."""
    from rich.table import Table

    from harness.plan.inventory import load_inventory
    from harness.remote.probing import probe_hosts

    if seconds is not None and not noise:
        if seconds.startswith("-"):
            raise OptionError(f"no such option: {seconds}", hint="see harness probe --help")
        raise OptionError(f"unexpected argument {seconds!r}: SECONDS goes with --noise",
                          hint=f"harness probe --noise {seconds}")
    if noise:
        _probe_noise(inventory, limit, accept_new_host_keys, known_hosts, seconds, as_json)
        return
    hosts = load_inventory(inventory, limit)
    found = probe_hosts(hosts, accept_new_host_keys=accept_new_host_keys,
                        known_hosts=known_hosts)
    if as_json:
        typer.echo(json.dumps([{"host": r.host, "python": r.python, "profile_id": r.profile_id,
                                "env": r.env, "error": r.error} for r in found], indent=2))
    else:
        table = Table(title="Hosts and interpreters")
        for col in ("host", "python", "profile", "cpu", "usable/logical/cores", "numa",
                    "memory", "version", "build", "GIL"):
            table.add_column(col)
        for r in found:
            if r.env is None:
                table.add_row(r.host, r.python, "[red]failed", r.error or "", "", "", "", "",
                              "", "")
                continue
            e = r.env
            table.add_row(
                r.host, r.python, r.profile_id, str(e.get("cpu_model")),
                f"{e.get('usable_cpus')}/{e.get('logical_cpus')}/{e.get('physical_cores')}",
                f"{e.get('numa_nodes')} {e.get('numa_cpus')}",
                f"{(e.get('mem_total_bytes') or 0) / 2**30:.1f} GiB",
                str(e.get("python_version")),
                "free-threaded" if e.get("free_threaded") else "standard",
                "on" if e.get("gil_enabled") else "off")
        _stdout().print(table)
    if any(r.error for r in found):
        raise typer.Exit(1)


def _probe_noise(inventory: Path, limit: str | None, accept_new_host_keys: bool,
                 known_hosts: Path | None, seconds_text: str | None, as_json: bool) -> None:
    """``harness probe --noise [SECONDS]``: the stability verdict of every host."""
    from harness import render
    from harness.plan.inventory import load_inventory
    from harness.remote.probing import NOISE_DEFAULT_S, check_noise_seconds, noise_hosts

    try:
        seconds = NOISE_DEFAULT_S if seconds_text is None else float(seconds_text)
    except ValueError:
        raise OptionError(f"--noise {seconds_text}: SECONDS is not a number",
                          hint=f"e.g. --noise {NOISE_DEFAULT_S:g}") from None
    check_noise_seconds(seconds)
    hosts = load_inventory(inventory, limit)
    if not as_json:
        _stderr().print(f"timing the speed probe for {seconds:g} s on {len(hosts)} "
                        f"host{'s' if len(hosts) != 1 else ''}...", markup=False)
    found = noise_hosts(hosts, seconds, accept_new_host_keys=accept_new_host_keys,
                        known_hosts=known_hosts)
    if as_json:
        typer.echo(json.dumps(render.noise_records(found), indent=2))
    else:
        typer.echo(render.noise_text(found, seconds))
    if any(r.error for r in found):
        raise typer.Exit(1)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL over the views sweeps, environments, "
                                              "measurements, cells, matrix, profile_matrix.")],
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


SWEEPS_SQL = """
SELECT s.sweep_id, s.status, strftime(s.started_at, '%Y-%m-%d %H:%M:%S') AS started,
       CASE WHEN s.finished_at IS NOT NULL
            THEN round(s.duration_s)::BIGINT END AS duration_s,
       s.profile, s.n_hosts AS hosts, s.n_envs_failed AS envs_failed,
       s.n_cells_ok AS ok, s.n_cells_failed + s.n_cells_partial AS failed,
       s.n_cells_timeout AS timeout, s.n_cells_not_applicable AS n_a
FROM sweep_summary s
ORDER BY s.started_at, s.sweep_id
"""


@app.command()
def sweeps(
    results: ResultsOpt = DEFAULT_RESULTS,
    fmt: FormatOpt = "table",
) -> None:
    """List the sweeps: status (running, interrupted, complete, failed) and cell counts."""
    from harness import render
    from harness.report.sql import connect, query
    from harness.warehouse import Warehouse

    render.check_format(fmt)
    warehouse = Warehouse(results)
    if not warehouse.sweep_ids():
        raise WarehouseInputError(f"no sweep in {warehouse.root}", hint="run `harness sweep` first")
    con = connect(warehouse)
    try:
        frame = query(con, SWEEPS_SQL)
    finally:
        con.close()
    # cells whose only record is an unfinished attempt (host lost, agent killed, interrupt)
    frame["unfinished"] = [len(warehouse.unfinished_cells(sid)) for sid in frame.sweep_id]
    typer.echo(render.format_frame(frame, fmt))
    pending = frame[frame.status.isin(["interrupted", "running"]) | (frame.unfinished > 0)]
    if fmt == "table" and len(pending):
        sid = pending.sweep_id.iloc[-1]
        _stderr().print(f"resume with: harness sweep --resume {sid} --results {results} "
                        "(and the sweep's --inventory)", markup=False)


@app.command()
def matrix(
    sweep_id: Annotated[str | None, typer.Option(
        "--sweep", "-s", help="Sweep id (default: the latest).")] = None,
    results: ResultsOpt = DEFAULT_RESULTS,
    as_json: JsonOpt = False,
) -> None:
    """Print the matrix of each hardware profile of a sweep."""
    _print_matrix(results, sweep_id, as_json)


@app.command()
def compare(
    by: Annotated[str, typer.Option(
        "--by", "-b", help="host, python or profile: what differs between the two sides.")
    ] = "profile",
    sweep_ids: Annotated[list[str] | None, typer.Option(
        "--sweep", "-s", help="Sweep id (repeatable; default: the latest). With several, "
                              "compare each later sweep against the first.")] = None,
    baseline: Annotated[str | None, typer.Option(
        "--baseline", help="Keep pairs where one side's host, interpreter or profile "
                           "contains this text; that side is A.")] = None,
    results: ResultsOpt = DEFAULT_RESULTS,
    fmt: Annotated[str, typer.Option("--format", "-f",
                                     help="table, markdown or json.")] = "table",
) -> None:
    """Matrices side by side: per cell the ratio between them and whether it is significant."""
    from harness import compare as comparing
    from harness.warehouse import Warehouse

    if by not in comparing.BY_CHOICES:
        raise OptionError(f"--by {by!r} is not one of {', '.join(comparing.BY_CHOICES)}")
    if fmt not in comparing.FORMATS:
        raise OptionError(f"--format {fmt!r} is not a format",
                          hint="use table, markdown or json")
    found = comparing.compare(Warehouse(results), by, tuple(sweep_ids or ()), baseline)
    typer.echo(comparing.format_comparisons(found, fmt), nl=False)


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
    _stdout().print(table)


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


def main() -> None:
    """Entry point: run the app, turning HarnessError into one line and an exit status."""
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
        _stderr().print("harness: interrupted", markup=False)
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
