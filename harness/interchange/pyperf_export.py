"""A sweep as pyperf files: one benchmark suite per environment (host × interpreter),
one benchmark per cell, one run per agent process, so ``pyperf stats``, ``hist`` and
``compare_to`` read what harness measured.

    suite metadata   hostname, python_executable, python_version, python_implementation,
                     cpu_model_name, cpu_count (pyperf's own names), and harness_host,
                     harness_python, harness_env_id, harness_profile_id (the hardware
                     profile), harness_usable_cpus, harness_free_threaded,
                     harness_gil_enabled, harness_sweep_id, harness_sweep_started,
                     harness_profile, harness_version
    benchmark        name ``workload/model/workers=N``; a dimension cell adds
                     ``/dimension=NAME`` and the param it varies (``/task_s=0.001``);
                     metadata unit "second", harness_workload, harness_model,
                     harness_workers, harness_params (JSON), harness_cell_key,
                     harness_headline
    run              the rows of one agent process (``extra.run``; 1 when the sweep ran
                     one): values = the timed repeats' wall_s, warmups = [[1, wall_s]]
                     of the warmup repeats (a harness repeat is one loop); metadata
                     ``date`` = when its first repeat started (UTC)

Only good rows (ok, with a wall time) become values; a cell with none (failed, timed out,
not applicable) is left out of the file and reported with its reason, never given a
value. A sweep imported from pyperf (:mod:`harness.interchange.pyperf_import`) is
written back with its own names, loops and run metadata, so its values round-trip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from harness.errors import HarnessError, OptionError, WarehouseInputError
from harness.interchange.pyperf_file import Benchmark, Run, Suite, metadata, write_suite
from harness.warehouse import Warehouse, sql_error

IMPORTED_MODEL = "pyperf"  # the model of a cell imported from pyperf (pyperf_import)


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the files (with their benchmark counts) and, per cell or
    environment left out, one line saying why."""

    sweep_id: str
    files: tuple[tuple[Path, int], ...]
    left_out: tuple[str, ...]
    notes: tuple[str, ...] = ()


def _rows(con: duckdb.DuckDBPyConnection, sql: str,
          params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    try:
        res = con.execute(sql, list(params))
    except duckdb.Error as e:
        raise sql_error(e) from e
    cols = [d[0] for d in res.description or []]
    return [dict(zip(cols, row, strict=True)) for row in res.fetchall()]


def _dimension_vary() -> dict[tuple[str, str], str]:
    """(workload, dimension) -> the param it varies, from the workload catalogue (empty
    when it cannot be read: names then fall back to the cell key)."""
    try:
        from harness.plan.catalog import load_catalog

        return {(w.name, d.name): d.vary for w in load_catalog().values()
                for d in w.dimensions.values()}
    except (HarnessError, OSError):
        return {}


def benchmark_name(cell: Mapping[str, Any], params: Mapping[str, Any],
                   vary: Mapping[tuple[str, str], str]) -> str:
    """``workload/model/workers=N``, for a dimension cell with ``/dimension=NAME`` and
    the param it varies; an imported cell keeps its pyperf name."""
    if cell["model"] == IMPORTED_MODEL:
        return str(cell["workload"])
    name = f"{cell['workload']}/{cell['model']}/workers={cell['workers']}"
    dim = params.get("dimension")
    if not cell["headline"] and dim is not None:
        name += f"/dimension={dim}"
        key = vary.get((str(cell["workload"]), str(dim)))
        if key and key != "workers" and key in params:
            name += f"/{key}={params[key]}"
    return name


def _date(unix: Any) -> str | None:
    if not isinstance(unix, (int, float)):
        return None
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _runs(rows: Sequence[Mapping[str, Any]]) -> tuple[Run, ...]:
    """A cell's good rows (in repeat order) as pyperf runs, one per agent run."""
    by_run: dict[int, dict[str, Any]] = {}
    for row in rows:
        extra = json.loads(row["extra"] or "{}")
        run = by_run.setdefault(int(extra.get("run") or 1), {
            "values": [], "warmups": [], "meta": dict(extra.get("pyperf_run") or {}),
            "start": None, "end": None, "loops": None})
        loops = int(extra.get("loops") or 1)
        if row["warmup"]:
            run["warmups"].append((loops, row["wall_s"]))
        elif row["wall_s"] > 0:
            run["values"].append(row["wall_s"])
            run["loops"] = loops
        start = extra.get("window_start_unix", extra.get("cell_start_unix"))
        if isinstance(start, (int, float)):
            run["start"] = start if run["start"] is None else min(run["start"], start)
            end = start + row["wall_s"]
            run["end"] = end if run["end"] is None else max(run["end"], end)
    out = []
    for _, run in sorted(by_run.items()):
        meta = run["meta"]
        if not meta and run["start"] is not None:  # a harness run: when, how long
            meta = metadata({"date": _date(run["start"]),
                             "duration": round(run["end"] - run["start"], 6)})
        if run["loops"] not in (None, 1):
            meta.setdefault("loops", run["loops"])
        if run["values"] or run["warmups"]:
            out.append(Run(tuple(run["values"]), tuple(run["warmups"]), meta))
    return tuple(out)


def _benchmark(name: str, cell: Mapping[str, Any],
               rows: Sequence[Mapping[str, Any]]) -> Benchmark | str:
    """The cell's benchmark, or why it has none (its status and reason)."""
    if cell["status"] not in ("ok", "partial") or not cell["n"]:
        return f"{cell['status']}: {cell['reason'] or 'no timed repeat'}"
    runs = _runs(rows)
    if not runs:
        return "no value above 0 s"
    first = json.loads(rows[0]["extra"] or "{}")
    meta = dict(first.get("pyperf_benchmark") or {})
    if cell["model"] != IMPORTED_MODEL:
        meta.update(metadata({
            "harness_workload": cell["workload"], "harness_model": cell["model"],
            "harness_workers": cell["workers"], "harness_params": cell["params"],
            "harness_cell_key": cell["cell_key"], "harness_headline": bool(cell["headline"])}))
    return Benchmark(name, runs, {**meta, "unit": "second"})


def _suite_metadata(env: Mapping[str, Any], sweep: Mapping[str, Any]) -> dict[str, Any]:
    probe = json.loads(env["probe"] or "{}") if env.get("probe") else {}
    base = dict(probe.get("metadata") or {}) if probe.get("source") == "pyperf" else {}
    impl = env.get("implementation")
    started = sweep.get("started_at")
    return {**base, **metadata({
        "hostname": env.get("hostname") or env["host"],
        "python_executable": env.get("executable") or env["python"],
        "python_version": env.get("python_version"),
        "python_implementation": impl.lower() if isinstance(impl, str) else None,
        "cpu_model_name": env.get("cpu_model"),
        "cpu_count": env.get("logical_cpus"),
        "unit": "second",
        "harness_host": env["host"],
        "harness_python": env["python"],
        "harness_env_id": env["env_id"],
        "harness_profile_id": env.get("profile_id"),
        "harness_usable_cpus": env.get("usable_cpus"),
        "harness_free_threaded": env.get("free_threaded"),
        "harness_gil_enabled": env.get("gil_enabled"),
        "harness_sweep_id": sweep["sweep_id"],
        "harness_sweep_started": (started.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
                                  if isinstance(started, datetime) else None),
        "harness_profile": sweep.get("profile"),
        "harness_version": sweep.get("harness_version"),
    })}


def file_name(env: Mapping[str, Any]) -> str:
    """``host-interpreter-envid.json``, with only safe characters."""
    python = str(env["python"]).rstrip("/").rsplit("/", 1)[-1]
    stem = f"{env['host']}-{python}-{str(env['env_id'])[:8]}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem) + ".json"


def export_pyperf(warehouse: Warehouse, sweep_ref: str | None, out: Path) -> Exported:
    """Write one pyperf file per environment of the sweep into ``out``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {out} is not a directory")
    sweep_id = warehouse.resolve_sweep_id(sweep_ref)
    con = warehouse.connect([sweep_id])
    try:
        sweep = _rows(con, "SELECT sweep_id, started_at, profile, harness_version "
                           "FROM sweeps WHERE sweep_id = ?", [sweep_id])[0]
        envs = _rows(con, "SELECT * EXCLUDE (probe), probe::VARCHAR AS probe FROM environments "
                          "WHERE sweep_id = ? ORDER BY host, python, env_id", [sweep_id])
        cells = _rows(con, """
            SELECT env_id, cell_id, cell_key, workload, params::VARCHAR AS params, model,
                   workers, headline, status, n, n_failed, reason
            FROM cells WHERE sweep_id = ?
            ORDER BY env_id, NOT headline, workload, model, workers, cell_id""", [sweep_id])
        rows = _rows(con, """
            SELECT env_id, cell_id, repeat, warmup, wall_s, extra::VARCHAR AS extra
            FROM measurements
            WHERE sweep_id = ? AND ok AND wall_s IS NOT NULL AND wall_s >= 0
            ORDER BY env_id, cell_id, repeat""", [sweep_id])
    finally:
        con.close()
    by_cell: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        by_cell.setdefault((row["env_id"], row["cell_id"]), []).append(row)
    vary = _dimension_vary()
    files: list[tuple[Path, int]] = []
    left_out: list[str] = []
    notes: list[str] = []
    for env in envs:
        label = f"{env['host']} {env['python']}"
        if env["status"] == "failed":
            left_out.append(f"{label}: environment not run: {env.get('error') or 'failed'}")
            continue
        if env["status"] == "incomplete":
            notes.append(f"{label}: environment incomplete: {env.get('error')}")
        benches: list[Benchmark] = []
        for cell in (c for c in cells if c["env_id"] == env["env_id"]):
            name = benchmark_name(cell, json.loads(cell["params"] or "{}"), vary)
            if name in {b.name for b in benches}:  # two cells the name cannot tell apart
                name = f"{name}#{cell['cell_key'][:8]}"
            bench = _benchmark(name, cell, by_cell.get((env["env_id"], cell["cell_id"]), []))
            if isinstance(bench, str):
                left_out.append(f"{label}: {name}: {bench}")
                continue
            if cell["status"] == "partial":
                notes.append(f"{label}: {name}: {cell['n_failed']} failed repeats left out "
                             f"({cell['reason']})")
            benches.append(bench)
        if not benches:
            left_out.append(f"{label}: no file: no cell with timed values")
            continue
        path = out / file_name(env)
        out.mkdir(parents=True, exist_ok=True)
        write_suite(Suite(tuple(benches), _suite_metadata(env, sweep)), path)
        files.append((path, len(benches)))
    if not envs:
        raise WarehouseInputError(f"sweep {sweep_id} has no environment")
    return Exported(sweep_id, tuple(files), tuple(left_out), tuple(notes))
