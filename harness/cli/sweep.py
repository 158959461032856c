"""``harness sweep``, ``sweeps`` and ``matrix``: run a sweep, list sweeps, print matrices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.app import (
    DEFAULT_RESULTS,
    AcceptKeysOpt,
    FormatOpt,
    InventoryOpt,
    JsonOpt,
    KnownHostsOpt,
    LimitOpt,
    ResultsOpt,
    WorkloadDirsOpt,
    app,
    stderr_console,
    stdout_console,
)
from harness.engines.registry import DEFAULT_ENGINE, engines_help
from harness.errors import HarnessError, WarehouseInputError
from harness.paths import DEFAULT_INVENTORY
from harness.remote.owner import HOST_WAIT_DEFAULT_S


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
        stderr_console().print(f"host stability not shown: {exc.message}", markup=False)
    console = stdout_console()
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
    workload_dirs: WorkloadDirsOpt = None,
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
    host_wait: Annotated[float, typer.Option(
        "--host-wait", metavar="SECONDS",
        help="Wait at most this long for a host another sweep is measuring; then the "
             "host is recorded as failed (busy) and --resume measures it later.")
    ] = HOST_WAIT_DEFAULT_S,
    as_json: JsonOpt = False,
) -> None:
    """Run the benchmark matrix on every selected host and interpreter, then print it."""
    from harness.progress import make_progress
    from harness.sweep.options import SweepOptions
    from harness.sweep.run import run_sweep

    options = SweepOptions(
        inventory=inventory, results=results, profile=profile, limit=limit,
        workloads=tuple(workload or ()), workload_dirs=tuple(workload_dirs or ()),
        models=tuple(model or ()), resume=resume,
        accept_new_host_keys=accept_new_host_keys, known_hosts=known_hosts,
        parallel_same_machine=parallel_same_machine, engine=engine, forks=forks,
        dimensions=dimensions, dimension_names=tuple(dimension or ()),
        recalibrate=recalibrate, host_wait=host_wait)
    with make_progress(stderr_console()) as progress:
        result = run_sweep(options, progress)
    if as_json:
        typer.echo(json.dumps({
            "sweep_id": result.sweep_id, "cells_run": result.cells_run,
            "failures": [f.__dict__ for f in result.failures], "exit_code": result.exit_code,
        }, indent=2))
    else:
        _print_matrix(results, result.sweep_id, False)
        err = stderr_console()
        if result.failures:
            err.print(f"{len(result.failures)} failures in sweep {result.sweep_id}:")
            for f in result.failures:
                err.print(f"  {f.host}{' ' + f.python if f.python else ''}: {f.reason}",
                          markup=False)
        err.print(f"sweep {result.sweep_id}: {result.cells_run} cells stored in {results}",
                  markup=False)
    raise typer.Exit(result.exit_code)



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
    """List the sweeps: status (running, abandoned, interrupted, complete, failed) and cell
    counts."""
    from harness import render
    from harness.remote.owner import this_controller
    from harness.report.sql import connect, query
    from harness.sweep.lease import lease_state, read_lease, shown_status
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
    # a stored 'running' whose controller's lease expired: abandoned (harness.sweep.lease)
    me = this_controller()
    frame["status"] = [shown_status(warehouse.root, sid, status, me)
                       for sid, status in zip(frame.sweep_id, frame.status, strict=True)]
    # cells whose only record is an unfinished attempt (host lost, agent killed, interrupt)
    frame["unfinished"] = [len(warehouse.unfinished_cells(sid)) for sid in frame.sweep_id]
    typer.echo(render.format_frame(frame, fmt))
    pending = frame[frame.status.isin(["interrupted", "abandoned"]) | (frame.unfinished > 0)]
    if fmt == "table":
        for sid in frame.sweep_id[frame.status == "abandoned"]:
            why = lease_state(read_lease(warehouse.root, sid), me).why
            stderr_console().print(f"sweep {sid} is abandoned ({why}); take it over with: "
                                   f"harness sweep --resume {sid} --results {results} "
                                   "(and the sweep's --inventory)", markup=False)
    if fmt == "table" and len(pending):
        sid = pending.sweep_id.iloc[-1]
        stderr_console().print(f"resume with: harness sweep --resume {sid} --results {results} "
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

