"""The warehouse at scale: synthesize, ingest, query, report, measure size and memory.

    .venv/bin/python benchmarks/warehouse_scale.py [--rows 10000000] [--sweeps 1000]
        [--hosts 100] [--profiles 4] [--root DIR] [--keep] [--json]

Synthesizes ``--rows`` measurement rows across ``--sweeps`` sweeps and ``--hosts``
hosts with the real schemas (harness.warehouse MEASUREMENT_SCHEMA, ENVIRONMENT_SCHEMA,
SWEEP_SCHEMA): per sweep and host, 4 headline workloads x 5 models, each cell one warmup
and timed repeats, hosts spread over ``--profiles`` hardware profiles (4 of 25 hosts by
default; host h has profile h mod N). Each sweep is stored as a finished
sweep is after :meth:`Warehouse.compact` -- one measurements file and one environments
file per sweep partition, written with the warehouse's own atomic writer
(write_parquet_atomic: temp file, fsync, link, directory fsync). Then:

* ingest rate: rows per second of the measurement writes (encode + fsync + rename);
  the synthesis of the Arrow tables is timed apart and not counted;
* the real path for one sweep of ``--hosts`` hosts: every cell through
  ``Warehouse.add_cell`` (one fsynced file per cell, as a sweep writes them) and
  ``Warehouse.compact``, with the file counts before and after, then the sweep's end
  (``set_sweep_status``: the writer refreshes the file index and view caches);
* the first read after that sweep: a fresh process's matrix query of the new sweep and
  ``harness sql`` of it, and whether either reader had to write the file index or a
  view cache (it should not: the sweep did);
* Parquet bytes per million rows;
* ``SELECT * FROM matrix WHERE sweep_id = ?`` through ``Warehouse(root).query`` (the
  latest sweep and a middle one), the cross-host compare (``harness compare --by host
  --sweep ID``) and the full report (``harness report --sweep ID --out report.html``),
  each as a subprocess timed end to end (interpreter start and view creation
  included), with the peak RSS of that process (``/usr/bin/time``-style, from
  ``wait4``'s rusage).

* the same matrix query through the CLI, ``harness sql "SELECT * FROM matrix WHERE
  sweep_id = '...'" --results DIR`` (``--format csv``, and the default table), and once
  with the warehouse's file index (``.file-index.json``) deleted first: the cold
  case, right after files were added, when every new file's footer is read once;
* the number of files per table.

Prints a Markdown summary (or ``--json``). The data goes to a temporary directory
unless ``--root``; ``--keep`` keeps it. ``--existing`` measures a warehouse this
script built before (``--root DIR --keep``) without writing anything but the index.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness.warehouse import (
    ATTEMPT_SCHEMA,
    ENVIRONMENT_SCHEMA,
    INDEX_NAME,
    MEASUREMENT_SCHEMA,
    SCHEMA_VERSION,
    SWEEP_SCHEMA,
    VIEW_CACHE_PREFIX,
    Warehouse,
    write_parquet_atomic,
)

WORKLOADS = ("cpu_bound", "net_low_latency", "net_high_latency", "disk_io")
MODELS = ("sequential", "threads", "processes", "mp_pool", "asyncio")
PROFILES = 4  # the default hardware profile count (--profiles)
EXTRA = json.dumps({"busy_procs": 0, "calib_budget_s": 5.0, "calib_max_repeats": 11,
                    "calib_min_repeats": 7, "calib_target_rel_ci": 0.05, "cpu_governor": None,
                    "cpu_mhz": 2596.1, "gil_enabled": True, "loadavg_1m": 0.12,
                    "procs_peak": 2, "worker_peak_rss_bytes": 31457280}, sort_keys=True)


def _digest(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:16]


def sweep_ids(n: int) -> list[str]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [f"{(start + timedelta(minutes=10 * i)):%Y%m%dT%H%M%SZ}-{i:06x}" for i in range(n)]


class Synth:
    """Arrow tables of one sweep, vectorised (the per-sweep constants built once)."""

    def __init__(self, hosts: int, rows_per_sweep: int, seed: int = 7,
                 profiles: int = PROFILES) -> None:
        self.hosts = hosts
        self.profiles = profiles
        cells = [(w, m) for w in WORKLOADS for m in MODELS]
        per_cell = max(2, rows_per_sweep // (hosts * len(cells)))  # 1 warmup + timed
        self.per_cell = per_cell
        self.rng = np.random.default_rng(seed)
        n_env_cells = hosts * len(cells)
        self.n = n_env_cells * per_cell
        idx_cell = np.tile(np.repeat(np.arange(len(cells)), per_cell), hosts)
        self.idx_host = np.repeat(np.arange(hosts), len(cells) * per_cell)
        self.idx_cell = idx_cell
        self.cells = cells
        workers = np.array([1 if m == "sequential" else 4 for _, m in cells])
        self.workers = pa.array(workers[idx_cell], pa.int64())
        self.repeat = pa.array(np.tile(np.arange(per_cell), n_env_cells), pa.int64())
        self.warmup = pa.array(np.tile(np.arange(per_cell) == 0, n_env_cells), pa.bool_())
        self.true = pa.array(np.ones(self.n, dtype=bool), pa.bool_())
        params = [json.dumps({"n": 2_000_000, "tasks": 8} if w == "cpu_bound" else
                             {"delay_s": 0.05, "tasks": 64} if w.startswith("net") else
                             {"file_bytes": 1048576, "tasks": 16}, sort_keys=True)
                  for w, _ in cells]
        keys = [_digest(w, p, m) for (w, m), p in zip(cells, params, strict=True)]
        take = pa.array(idx_cell, pa.int32())
        self.workload = pc.take(pa.array([w for w, _ in cells]), take)
        self.model = pc.take(pa.array([m for _, m in cells]), take)
        self.params = pc.take(pa.array(params), take)
        self.cell_key = pc.take(pa.array(keys), take)
        self.cell_ids = [f"{w}.{m}.{k[:8]}" for (w, m), k in zip(cells, keys, strict=True)]
        self.cell_id = pc.take(pa.array(self.cell_ids), take)
        self.status = pa.array(["ok"] * self.n, pa.string())
        self.extra = pa.array([EXTRA] * self.n, pa.string())
        self.nulls = pa.nulls(self.n, pa.string())
        self.version = pa.array(np.full(self.n, SCHEMA_VERSION, np.int32), pa.int32())
        # blocks (schema 2): the timed repeat r of every cell of a workload is block r - 1;
        # a cell's position in its block is its index among the workload's cells
        rep = np.tile(np.arange(per_cell), n_env_cells)
        self.block = pa.array(np.where(rep == 0, None, rep - 1).tolist(), pa.int64())
        pos = np.array([sum(1 for w2, _ in cells[:i] if w2 == w) for i, (w, _) in
                        enumerate(cells)])
        self.block_pos = pa.array(np.where(rep == 0, None, pos[idx_cell]).tolist(), pa.int64())
        self.block_group = pc.take(pa.array([_digest("group", w) for w, _ in cells]), take)
        base = np.array([{"sequential": 1.0, "threads": 0.9, "processes": 0.35, "mp_pool": 0.34,
                          "asyncio": 0.95}[m] for _, m in cells])
        self.base = base[idx_cell] * (1 + 0.2 * (self.idx_host % profiles))

    def env_id(self, sweep_id: str, host: int) -> str:
        return _digest(sweep_id, f"node{host:03d}", "python3.13")

    def measurements(self, sweep_id: str) -> pa.Table:
        envs = pa.array([self.env_id(sweep_id, h) for h in range(self.hosts)])
        wall = self.base * self.rng.lognormal(0.0, 0.03, self.n)
        cols = {
            "env_id": pc.take(envs, pa.array(self.idx_host, pa.int32())),
            "cell_id": self.cell_id, "cell_key": self.cell_key, "workload": self.workload,
            "params": self.params, "model": self.model, "workers": self.workers,
            "repeat": self.repeat, "warmup": self.warmup, "headline": self.true,
            "wall_s": pa.array(wall), "cpu_user_s": pa.array(wall * 0.97),
            "cpu_sys_s": pa.array(wall * 0.02),
            "peak_rss_bytes": pa.array(30_000_000 + self.idx_host * 1000, pa.int64()),
            "ok": self.true, "error": self.nulls, "status": self.status, "extra": self.extra,
            "block": self.block, "block_pos": self.block_pos, "block_group": self.block_group,
            "probe_s": pa.array(0.001 * self.rng.lognormal(0.0, 0.03, self.n)),
            "schema_version": self.version,
        }
        return pa.Table.from_pydict(cols, schema=MEASUREMENT_SCHEMA)

    def environments(self, sweep_id: str) -> pa.Table:
        rows = []
        for h in range(self.hosts):
            p = h % self.profiles
            rows.append({
                "host": f"node{h:03d}", "python": "python3.13",
                "env_id": self.env_id(sweep_id, h), "profile_id": f"profile{p}",
                "hostname": f"node{h:03d}", "os": "Linux", "kernel": "6.1.0", "arch": "x86_64",
                "cpu_model": f"Synthetic CPU {p}", "logical_cpus": 8 * (p + 1),
                "physical_cores": 4 * (p + 1), "usable_cpus": 8 * (p + 1), "numa_nodes": 1,
                "numa_cpus": "[]", "mem_total_bytes": 16 << 30, "python_version": "3.13.1",
                "implementation": "CPython", "free_threaded": False, "gil_enabled": True,
                "executable": "/usr/bin/python3.13", "machine_id": _digest("m", h),
                "boot_id": _digest("b", h), "status": "ok", "error": None,
                "probe": json.dumps({"host": f"node{h:03d}"}), "schema_version": SCHEMA_VERSION,
            })
        return pa.Table.from_pylist(rows, schema=ENVIRONMENT_SCHEMA)

    def sweep(self, sweep_id: str, index: int) -> pa.Table:
        started = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=10 * index)
        row = {"started_at": started, "finished_at": started + timedelta(minutes=9),
               "status": "complete", "harness_version": "0.1.0", "inventory": "fleet.ini",
               "profile": "standard",
               "plan": json.dumps({"profile": "standard", "workloads": list(WORKLOADS),
                                   "models": list(MODELS)}),
               "schema_version": SCHEMA_VERSION}
        return pa.Table.from_pylist([row], schema=SWEEP_SCHEMA)


def ingest(root: Path, synth: Synth, ids: list[str]) -> dict:
    """Write every sweep in its compacted layout; time the measurement writes."""
    synth_s = write_s = other_s = 0.0
    rows = 0
    for i, sid in enumerate(ids):
        t0 = time.perf_counter()
        table = synth.measurements(sid)
        t1 = time.perf_counter()
        write_parquet_atomic(table, root / "measurements" / f"sweep_id={sid}" /
                             "part-synthetic.parquet", replace=False)
        t2 = time.perf_counter()
        write_parquet_atomic(synth.environments(sid), root / "environments" /
                             f"sweep_id={sid}" / "part-synthetic.parquet", replace=False)
        write_parquet_atomic(synth.sweep(sid, i), root / "sweeps" / f"sweep_id={sid}" /
                             "sweep.parquet", replace=False)
        # begin_sweep writes an empty attempts file in every sweep
        write_parquet_atomic(ATTEMPT_SCHEMA.empty_table(), root / "attempts" /
                             f"sweep_id={sid}" / "attempts-none.parquet", replace=False)
        t3 = time.perf_counter()
        synth_s += t1 - t0
        write_s += t2 - t1
        other_s += t3 - t2
        rows += table.num_rows
    return {"rows": rows, "synth_s": synth_s, "write_s": write_s,
            "rows_per_s": rows / write_s, "env_and_sweep_files_s": other_s}


def real_path(root: Path, synth: Synth, sid: str = "zz-real-path-sweep") -> dict:
    """One sweep the way `harness sweep` stores it: a file per cell, then compact()."""
    wh = Warehouse(root)
    wh.begin_sweep(sid, started_at=datetime.now(UTC), harness_version="0.1.0",
                   inventory="fleet.ini", profile="standard", plan={"synthetic": True})
    for env in synth.environments(sid).to_pylist():
        wh.add_environment(sid, env)
    table = synth.measurements(sid)
    rows = table.to_pylist()
    per = synth.per_cell
    t0 = time.perf_counter()
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        wh.add_cell(sid, chunk[0]["env_id"], chunk[0]["cell_id"], chunk)
    t1 = time.perf_counter()
    before = _count_files(root, sid)
    t2 = time.perf_counter()
    compacted = wh.compact(sid) if hasattr(wh, "compact") else None
    t3 = time.perf_counter()
    after = _count_files(root, sid)
    t4 = time.perf_counter()
    wh.set_sweep_status(sid, "complete", finished_at=datetime.now(UTC))
    t5 = time.perf_counter()
    first = first_read(root, sid)
    (n_db,) = wh.query("SELECT count(*) AS n FROM measurements WHERE sweep_id = ?",
                       [sid]).n.tolist()
    return {"sweep_id": sid, "cells": len(rows) // per, "rows": len(rows),
            "add_cell_s": t1 - t0, "add_cell_rows_per_s": len(rows) / (t1 - t0),
            "files_before": before, "compact_s": t3 - t2, "files_after": after,
            "compacted": compacted, "end_s": t5 - t4, "rows_in_view": int(n_db),
            "first_read": first}


def first_read(root: Path, sid: str) -> dict:
    """The first commands after a sweep stored its files (the sweep ended: compacted,
    the readers' caches refreshed by the writer): a fresh process's matrix query of the
    new sweep, then ``harness sql`` of it, each the first of its kind since the sweep
    (and whether the file index or a view cache had to be written by that reader)."""
    def caches() -> dict[str, int]:
        found = {p.name: p.stat().st_mtime_ns
                 for p in root.glob(f"{VIEW_CACHE_PREFIX}*.duckdb")}
        with contextlib.suppress(OSError):
            found[INDEX_NAME] = (root / INDEX_NAME).stat().st_mtime_ns
        return found

    before = caches()
    query = matrix_query(root, sid, 1)
    sql = timed([sys.executable, "-m", "harness", "sql",
                 f"SELECT * FROM matrix WHERE sweep_id = '{sid}'", "--results", str(root)], 1)
    return {"query_s": query["query_s"], "process_s": query["process_s"],
            "sql_table_s": sql["median_s"], "reader_wrote_caches": caches() != before}


def _count_files(root: Path, sid: str) -> dict[str, int]:
    return {t: len(list((root / t / f"sweep_id={sid}").glob("*.parquet")))
            for t in ("measurements", "environments", "attempts", "sweeps")}


def timed(argv: list[str], repeats: int = 3) -> dict:
    """Run ``argv`` ``repeats`` times; wall times and the child's own peak RSS (wait4)."""
    walls, rss = [], []
    for _ in range(repeats):
        with tempfile.TemporaryFile() as log:
            t0 = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)
            walls.append(time.perf_counter() - t0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-800:]
                raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {tail}")
        rss.append(usage.ru_maxrss * 1024)
    return {"wall_s": walls, "median_s": sorted(walls)[len(walls) // 2],
            "peak_rss_bytes": max(rss)}


QUERY_SNIPPET = """
import sys, time, json, resource
t0 = time.perf_counter()
from harness.warehouse import Warehouse
t1 = time.perf_counter()
wh = Warehouse(sys.argv[1])
df = wh.query("SELECT * FROM matrix WHERE sweep_id = ?", [sys.argv[2]])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "query_s": t2 - t1, "rows": len(df),
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def matrix_query(root: Path, sid: str, repeats: int = 3) -> dict:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", QUERY_SNIPPET, str(root), sid],
                             check=True, capture_output=True, text=True)
        runs.append({**json.loads(out.stdout), "process_s": time.perf_counter() - t0})
    runs.sort(key=lambda r: r["query_s"])
    best = runs[len(runs) // 2]
    return {**best, "query_s_all": [r["query_s"] for r in runs],
            "process_s_all": [r["process_s"] for r in runs]}


def count_rows(root: Path) -> int:
    """The measurement rows, from the Parquet footers."""
    return sum(pq.read_metadata(f).num_rows
               for f in (root / "measurements").glob("sweep_id=*/*.parquet"))


def parquet_bytes(root: Path, table: str) -> tuple[int, int]:
    files = list((root / table).glob("sweep_id=*/*.parquet"))
    return sum(f.stat().st_size for f in files), len(files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--sweeps", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--profiles", type=int, default=PROFILES,
                        help="hardware profiles the hosts are spread over (host h: h mod N)")
    parser.add_argument("--root", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--existing", action="store_true",
                        help="measure the warehouse already in --root (built with --keep)")
    ns = parser.parse_args()
    if not 1 <= ns.sweeps <= 100_000 or not 1 <= ns.hosts <= 10_000:
        raise SystemExit("--sweeps 1..100000, --hosts 1..10000")
    if not 1 <= ns.profiles <= ns.hosts:
        raise SystemExit("--profiles 1..--hosts")
    tmp = None
    if ns.root is None:
        tmp = tempfile.mkdtemp(prefix="harness-wh-scale-")
        root = Path(tmp)
    else:
        root = ns.root.resolve()
        if ns.existing:
            if not (root / "sweeps").is_dir():
                raise SystemExit(f"--existing: no warehouse in {root}")
        elif root.exists() and any(root.iterdir()):
            raise SystemExit(f"{root} is not empty")
    if ns.existing and ns.root is None:
        raise SystemExit("--existing needs --root")
    try:
        synth = Synth(ns.hosts, ns.rows // ns.sweeps, profiles=ns.profiles)
        ids = sweep_ids(ns.sweeps)
        result: dict = {"machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                                    "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                                    "loadavg": os.getloadavg()},
                        "args": {"rows": ns.rows, "sweeps": ns.sweeps, "hosts": ns.hosts,
                                 "profiles": ns.profiles, "rows_per_cell": synth.per_cell}}
        if ns.existing:
            ids = [i for i in Warehouse(root).sweep_ids() if not i.startswith("zz-")]
            result["args"]["sweeps"] = len(ids)
            result["ingest"] = None
            result["real_path"] = None
            latest = Warehouse(root).sweep_ids()[-1]
        else:
            result["ingest"] = ingest(root, synth, ids)
            result["real_path"] = real_path(root, synth)
            latest = result["real_path"]["sweep_id"]
        size, files = parquet_bytes(root, "measurements")
        n_rows = count_rows(root)
        result["size"] = {"measurement_bytes": size, "measurement_files": files,
                          "measurement_rows": n_rows,
                          "bytes_per_million_rows": size / (n_rows / 1e6)}
        middle = ids[len(ids) // 2]
        (root / INDEX_NAME).unlink(missing_ok=True)
        for cache in root.glob(f"{VIEW_CACHE_PREFIX}*.duckdb"):
            cache.unlink()
        result["matrix_query_cold"] = matrix_query(root, middle, 1)
        result["matrix_query"] = {"middle": matrix_query(root, middle, ns.repeats),
                                  "latest": matrix_query(root, latest, ns.repeats)}
        hx = [sys.executable, "-m", "harness"]
        sql = f"SELECT * FROM matrix WHERE sweep_id = '{middle}'"
        result["sql_cli"] = timed([*hx, "sql", sql, "--results", str(root), "--format", "csv"],
                                  ns.repeats)
        result["sql_cli_table"] = timed([*hx, "sql", sql, "--results", str(root)], ns.repeats)
        # Cross-host: the hardware profiles of the sweep pooled and paired (4 profiles,
        # 6 pairs), and one host against each of the other hosts (hosts - 1 pairs).
        # Every pair of 100 hosts (4,950 matrices) is not a question anyone reads.
        result["compare"] = timed([*hx, "compare", "--by", "profile", "--sweep", middle,
                                   "--results", str(root)], ns.repeats)
        result["compare_host"] = timed([*hx, "compare", "--by", "host", "--sweep", middle,
                                        "--baseline", "node000", "--results", str(root)],
                                       ns.repeats)
        result["compare_host_json"] = timed([*hx, "compare", "--by", "host", "--sweep", middle,
                                             "--baseline", "node000", "--format", "json",
                                             "--results", str(root)], ns.repeats)
        out = root.parent / f"{root.name}-report.html"
        result["report"] = timed([*hx, "report", "--sweep", middle, "--out", str(out),
                                  "--results", str(root)], ns.repeats)
        out.unlink(missing_ok=True)
        totals = {t: parquet_bytes(root, t) for t in ("measurements", "environments",
                                                     "attempts", "sweeps")}
        result["files"] = {t: n for t, (_, n) in totals.items()}
    finally:
        if tmp and not ns.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if ns.json:
        print(json.dumps(result, indent=1, default=str))
    else:
        print(render(result))
    return 0


def render(r: dict) -> str:
    s, m, c = r["size"], r["matrix_query"], r["matrix_query_cold"]
    rss = max(r["compare"]["peak_rss_bytes"], r["compare_host"]["peak_rss_bytes"])
    n_files = sum(r["files"].values())
    lines = [
        f"machine: {r['machine']['cores']} cores, Python {r['machine']['python']}, "
        f"{r['machine']['date']}, load {r['machine']['loadavg'][0]:.2f}",
        f"data: {s['measurement_rows']:,} measurement rows, {r['args']['sweeps']} sweeps, "
        f"{r['args']['hosts']} hosts in {r['args'].get('profiles', PROFILES)} profiles, "
        f"{r['args']['rows_per_cell']} rows per cell",
        "",
        "| figure | value | target |",
        "|---|---|---|",
    ]
    if r["ingest"]:
        i, p = r["ingest"], r["real_path"]
        lines += [
            f"| ingest (compacted layout, encode+fsync+rename) | "
            f"{i['rows_per_s'] / 1e6:.2f} M rows/s ({i['write_s']:.1f} s; synthesis "
            f"{i['synth_s']:.1f} s not counted) | >= 1 M rows/s |",
            f"| add_cell path, one {r['args']['hosts']}-host sweep | {p['cells']} cells in "
            f"{p['add_cell_s']:.2f} s ({p['add_cell_rows_per_s']:,.0f} rows/s) | reported |",
            f"| compact() that sweep | {p['compact_s']:.3f} s; files {p['files_before']} -> "
            f"{p['files_after']}; rows in view {p['rows_in_view']:,} of {p['rows']:,} "
            "(includes refreshing the readers' caches) | few files per sweep |",
            f"| the sweep's end (status stored, warehouse.duckdb and the readers' caches "
            f"refreshed) | {p['end_s']:.2f} s | reported |",
            f"| first read after that sweep: matrix WHERE sweep_id in a fresh process "
            f"(import excluded) / its whole process / `harness sql` table | "
            f"{p['first_read']['query_s']:.3f} s / {p['first_read']['process_s']:.2f} s / "
            f"{p['first_read']['sql_table_s']:.2f} s (a reader wrote caches: "
            f"{'yes' if p['first_read']['reader_wrote_caches'] else 'no'}) | < 1 s |",
        ]
    lines += [
        f"| Parquet size (measurements) | {s['bytes_per_million_rows'] / 2**20:.2f} MiB per "
        f"million rows ({s['measurement_bytes'] / 2**20:.1f} MiB, {s['measurement_files']} "
        "files) | reported |",
        f"| files in the warehouse | {n_files:,} ("
        f"{', '.join(f'{t} {n}' for t, n in r['files'].items())}) | no thousands of tiny files |",
        f"| matrix WHERE sweep_id, `Warehouse(root).query` in a fresh process (middle "
        f"sweep; import excluded, {m['middle']['import_s']:.2f} s) | "
        f"{m['middle']['query_s']:.3f} s ({m['middle']['rows']} rows; all "
        f"{', '.join(f'{x:.3f}' for x in m['middle']['query_s_all'])}) | < 1 s |",
        f"| same, the whole process (interpreter start, imports, query) | "
        f"{', '.join(f'{x:.2f}' for x in m['middle']['process_s_all'])} s | < 1 s |",
        f"| same, latest sweep | {m['latest']['query_s']:.3f} s ({m['latest']['rows']} rows) "
        "| < 1 s |",
        f"| same, cold: no file index and no view cache yet (every footer read once, the "
        f"views created once) | {c['query_s']:.3f} s | reported |",
        f"| `harness sql \"SELECT * FROM matrix WHERE sweep_id = '...'\" --format csv` "
        f"(process, end to end) | {r['sql_cli']['median_s']:.2f} s (all "
        f"{', '.join(f'{x:.2f}' for x in r['sql_cli']['wall_s'])}) | < 1 s |",
        f"| same, default table format (the first 1,000 of 2,000 rows shown) | "
        f"{r['sql_cli_table']['median_s']:.2f} s (all "
        f"{', '.join(f'{x:.2f}' for x in r['sql_cli_table']['wall_s'])}) | < 1 s |",
        f"| `harness compare --by profile` (process, end to end) | "
        f"{r['compare']['median_s']:.2f} s (all "
        f"{', '.join(f'{x:.2f}' for x in r['compare']['wall_s'])}) | < 1 s |",
        f"| `harness compare --by host --baseline node000` ({r['args']['hosts'] - 1} pairs, "
        f"table) | {r['compare_host']['median_s']:.2f} s (all "
        f"{', '.join(f'{x:.2f}' for x in r['compare_host']['wall_s'])}) | < 1 s |",
        f"| same, `--format json` | {r['compare_host_json']['median_s']:.2f} s (all "
        f"{', '.join(f'{x:.2f}' for x in r['compare_host_json']['wall_s'])}) | < 1 s |",
        f"| `harness report` HTML (process, end to end) | {r['report']['median_s']:.2f} s "
        f"(all {', '.join(f'{x:.2f}' for x in r['report']['wall_s'])}) | < 10 s |",
        f"| peak RSS: matrix query / compare / report processes | "
        f"{m['middle']['peak_rss_bytes'] / 2**20:.0f} / {rss / 2**20:.0f} / "
        f"{r['report']['peak_rss_bytes'] / 2**20:.0f} MiB | < 1 GiB |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
