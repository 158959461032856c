"""A pyperf file as a sweep of its own: its environments, one cell per benchmark, one
measurements row per value and per warmup, written with the warehouse's own writers.

    sweep          a new id; profile "pyperf-import"; status complete; started_at /
                   finished_at from the runs' ``date`` metadata (pyperf writes local
                   time without a zone: taken as UTC), the import time when none has one;
                   inventory = the file's path; plan = {"source": "pyperf", "file": ...}
    environment    one per (host, python executable) of the file:
                   host = --host, else ``hostname``, else "pyperf"; python =
                   ``python_executable``; python_version = the first word of pyperf's
                   ``python_version``; implementation from ``python_implementation``
                   (cpython -> CPython); cpu_model = ``cpu_model_name``; logical_cpus =
                   ``cpu_count``; free_threaded / gil_enabled unknown (NULL) unless the
                   file came from ``harness export`` (harness_* metadata);
                   probe = {"source": "pyperf", "metadata": the suite's metadata}
    cell           one per benchmark: workload = the benchmark's name, model "pyperf"
                   (pyperf says nothing of a concurrency model; the matrix shows such a
                   cell without a speedup, as it has no sequential baseline), workers 1,
                   params {}, headline (so ``compare`` pairs it by name across sweeps);
                   a benchmark written by ``harness export`` gets its original workload,
                   model, workers, params, cell key and headline back
    measurements   per run (numbered 1, 2, ... in file order), its warmups then its
                   values; repeat counts on across runs; warmup rows flagged;
                   wall_s = the value as pyperf stores it (seconds per loop iteration);
                   extra = {"run": n, "loops": loops, "pyperf_run": the run's own
                   metadata, "pyperf_benchmark": the benchmark's own metadata}

A benchmark in another unit than seconds (``--track-memory``: bytes) is not a time: it
is left out and reported. Nothing is written unless the whole file is valid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import BadInput
from harness.interchange.pyperf_export import IMPORTED_MODEL
from harness.interchange.pyperf_file import Benchmark, Suite, merged, read_suite
from harness.plan.cells import canonical_json, digest, env_id, profile_id
from harness.sweep.context import new_sweep_id
from harness.warehouse import Warehouse

PROFILE = "pyperf-import"
IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalPy"}


@dataclass(frozen=True)
class Imported:
    """What one import stored: the new sweep, its counts, and what was left out."""

    sweep_id: str
    path: Path
    environments: int
    cells: int
    values: int
    warmups: int
    left_out: tuple[str, ...]


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value in ("true", 1):
        return True
    if value in ("false", 0):
        return False
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


def environment(meta: Mapping[str, Any], host: str | None) -> dict[str, Any]:
    """The environments row (without ids) from a benchmark's merged metadata."""
    version = meta.get("python_version")
    impl = meta.get("python_implementation")
    env: dict[str, Any] = {
        "host": host or _text(meta.get("harness_host")) or _text(meta.get("hostname"))
        or "pyperf",
        "python": _text(meta.get("harness_python")) or _text(meta.get("python_executable"))
        or "unknown",
        "hostname": _text(meta.get("hostname")),
        "os": _text(meta.get("platform")).split("-", 1)[0] if meta.get("platform") else None,
        "cpu_model": _text(meta.get("cpu_model_name")),
        "logical_cpus": _int(meta.get("cpu_count")),
        "usable_cpus": _int(meta.get("harness_usable_cpus")),
        "python_version": str(version).split()[0] if version else None,
        "implementation": (IMPLEMENTATIONS.get(str(impl).lower(), str(impl))
                           if impl else None),
        "free_threaded": _flag(meta.get("harness_free_threaded")),
        "gil_enabled": _flag(meta.get("harness_gil_enabled")),
        "executable": _text(meta.get("python_executable")),
        "status": "ok",
        "error": None,
    }
    env["profile_id"] = _text(meta.get("harness_profile_id")) or profile_id(env)
    return env


def _date(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _cell(bench: Benchmark, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Workload, model, workers, params, cell_key and headline of a benchmark's cell."""
    params_text = meta.get("harness_params")
    workers = _int(meta.get("harness_workers"))
    if meta.get("harness_workload") and meta.get("harness_model") and workers is not None:
        try:
            params = json.loads(str(params_text or "{}"))
        except json.JSONDecodeError:
            params = {}
        cell = {"workload": str(meta["harness_workload"]), "model": str(meta["harness_model"]),
                "workers": workers, "params": params,
                "headline": _flag(meta.get("harness_headline")) is not False}
        cell["cell_key"] = (_text(meta.get("harness_cell_key"))
                            or digest(cell["workload"], params, cell["model"], workers))
        return cell
    return {"workload": bench.name, "model": IMPORTED_MODEL, "workers": 1, "params": {},
            "headline": True, "cell_key": digest(bench.name, {}, IMPORTED_MODEL, 1)}


def cell_rows(bench: Benchmark, meta: Mapping[str, Any], cell: Mapping[str, Any], eid: str,
              cell_id: str) -> list[dict[str, Any]]:
    """The measurements rows of one benchmark (``meta``: the suite's metadata updated by
    the benchmark's): per run its warmups then its values."""
    own = {k: v for k, v in bench.metadata.items() if k not in ("name", "unit")
           and not k.startswith("harness_")}
    base = {"env_id": eid, "cell_id": cell_id, "cell_key": cell["cell_key"],
            "workload": cell["workload"], "params": canonical_json(cell["params"]),
            "model": cell["model"], "workers": cell["workers"], "headline": cell["headline"],
            "cpu_user_s": None, "cpu_sys_s": None, "peak_rss_bytes": None, "ok": True,
            "error": None, "status": "ok"}
    rows: list[dict[str, Any]] = []
    for number, run in enumerate(bench.runs, 1):
        run_meta = {k: v for k, v in run.metadata.items() if k != "loops"}
        loops = _int(merged(meta, run.metadata).get("loops")) or 1

        def extra(n: int, meta: Mapping[str, Any] = run_meta, r: int = number) -> str:
            ex: dict[str, Any] = {"run": r, "loops": n}
            if meta:
                ex["pyperf_run"] = dict(meta)
            if own:
                ex["pyperf_benchmark"] = own
            return canonical_json(ex)

        for n, value in run.warmups:
            rows.append({**base, "repeat": len(rows), "warmup": True, "wall_s": float(value),
                         "extra": extra(n)})
        for value in run.values:
            rows.append({**base, "repeat": len(rows), "warmup": False, "wall_s": float(value),
                         "extra": extra(loops)})
    return rows


def _span(suite: Suite) -> tuple[datetime, datetime]:
    """When the file's runs started and ended (UTC); now when no run says."""
    starts, ends = [], []
    for bench in suite.benchmarks:
        for run in bench.runs:
            meta = merged(suite.metadata, bench.metadata, run.metadata)
            when = _date(meta.get("date"))
            if when is None:
                continue
            starts.append(when)
            duration = meta.get("duration")
            ok = isinstance(duration, (int, float)) and duration >= 0
            ends.append(when + timedelta(seconds=float(duration)) if ok else when)
    now = datetime.now(UTC)
    return (min(starts), max(ends)) if starts else (now, now)


@dataclass(frozen=True)
class EnvGroup:
    """One environment of a file: its row (without ids) and its benchmarks, each with
    its metadata (the suite's updated by the benchmark's)."""

    env: Mapping[str, Any]
    benchmarks: tuple[tuple[Benchmark, Mapping[str, Any]], ...]


def plan_import(suite: Suite, host: str | None) -> tuple[list[EnvGroup], list[str]]:
    """The file's benchmarks by environment, and the lines of those left out."""
    # keyed as env_id is: by host and interpreter
    envs: dict[tuple[str, str], dict[str, Any]] = {}
    benches: dict[tuple[str, str], list[tuple[Benchmark, Mapping[str, Any]]]] = {}
    left_out: list[str] = []
    for bench in suite.benchmarks:
        meta = merged(suite.metadata, bench.metadata)
        if bench.unit != "second":
            left_out.append(f"{bench.name}: unit {bench.unit!r} is not a time")
            continue
        env = environment(meta, host)
        key = (env["host"], env["python"])
        envs.setdefault(key, env)
        benches.setdefault(key, []).append((bench, meta))
    return [EnvGroup(envs[k], tuple(benches[k])) for k in envs], left_out


def import_pyperf(warehouse: Warehouse, path: Path, host: str | None = None,
                  suite: Suite | None = None) -> Imported:
    """Store the pyperf file at ``path`` as a new sweep (read it first with
    :func:`read_suite` to check several files before storing any)."""
    suite = suite if suite is not None else read_suite(path)
    groups, left_out = plan_import(suite, host)
    if not groups:
        raise BadInput(f"{path}: no benchmark measured in seconds", hint="; ".join(left_out))
    warehouse.check_schema()
    started, finished = _span(suite)
    sweep_id = new_sweep_id(started)
    warehouse.begin_sweep(sweep_id, started_at=started, harness_version=__version__,
                          inventory=str(Path(path).resolve()), profile=PROFILE,
                          plan={"source": "pyperf", "file": str(Path(path).resolve()),
                                "benchmarks": len(suite.benchmarks)})
    status = "failed"
    cells = values = warmups = 0
    try:
        for group in groups:
            env = group.env
            eid = env_id(sweep_id, env["host"], env["python"])
            warehouse.add_environment(sweep_id, {
                **env, "env_id": eid,
                "probe": canonical_json({"source": "pyperf", "file": str(path),
                                         "metadata": dict(suite.metadata)})})
            for bench, meta in group.benchmarks:
                cell = _cell(bench, meta)
                cell_id = digest(env["host"], env["python"], cell["cell_key"])
                rows = cell_rows(bench, meta, cell, eid, cell_id)
                warehouse.add_cell(sweep_id, eid, cell_id, rows)
                cells += 1
                warmups += sum(1 for r in rows if r["warmup"])
                values += sum(1 for r in rows if not r["warmup"])
        status = "complete"
    finally:
        warehouse.set_sweep_status(sweep_id, status, finished_at=finished)
    return Imported(sweep_id, Path(path), len(groups), cells, values, warmups,
                    tuple(left_out))


def read_all(paths: Sequence[Path]) -> list[Suite]:
    """Every file read and checked before any is stored (BadInput on the first bad one)."""
    return [read_suite(p) for p in paths]
