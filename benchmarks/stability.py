"""Stability vs pyperf, and the harness's fixed cost per cell on the local engine.

    .venv/bin/python benchmarks/stability.py [--profile quick] [--rounds 3]
        [--pyperf-processes 4] [--json]

1. Stability: ``harness sweep -w cpu_bound -m sequential`` on this machine ``--rounds``
   times; each cell's coefficient of variation (cells.cv = stdev / mean of its timed
   repeats) and its median. pyperf (a dev dependency) times the same batch -- the
   guide's cpu task (benchmarks/direct.py cpu_task) ``tasks`` times with the harness's
   calibrated ``n`` -- with pyperf.Runner in a subprocess (``--processes``, 3 values
   each, 1 warmup); its CV is stdev / mean of all its values. Also the CV of the
   medians across rounds (run-to-run stability).
2. Fixed cost per cell (local engine): ``--profile quick -w empty --dimensions`` (28
   cells of empty tasks, all models and the pool start-up dimensions). Per cell, from
   the agent's timestamps in the samples (extra.cell_start_unix, window_start_unix):
   the time from the end of the previous cell's last window to the end of this cell's
   last window, minus this cell's windows (warmups included) -- setup, noise facts,
   bookkeeping between repeats, protocol lines, teardown; the controller works
   concurrently and its lag shows as "last window to sweep end". Per sweep: the
   command's wall time minus the span of the cells (first cell start to last window
   end): interpreter and controller start, agent build, start and probe, final writes,
   matrix. And the agent start alone: LocalTransport, upload and ``probe`` until the
   hello line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent

PYPERF_SCRIPT = r"""
import sys
sys.path.insert(0, {here!r})
import pyperf
from direct import cpu_task

N, TASKS = {n}, {tasks}

def batch():
    for _ in range(TASKS):
        cpu_task(N)

runner = pyperf.Runner()
runner.bench_func("cpu_batch", batch)
"""


def harness(results: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "harness", "sweep", "--results", str(results),
                    *args], check=True, capture_output=True, text=True)


def sql(results: Path, query: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "harness", "sql", query, "--format", "json",
                          "--results", str(results)], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)


def stability(tmp: Path, profile: str, rounds: int, processes: int) -> dict:
    cells = []
    for r in range(rounds):
        res = tmp / f"stab{r}"
        harness(res, "--profile", profile, "-w", "cpu_bound", "-m", "sequential")
        cells += sql(res, "SELECT n, median_s, cv, params FROM cells WHERE workload = "
                          "'cpu_bound' AND model = 'sequential' AND headline")
    params = json.loads(cells[0]["params"]) if isinstance(cells[0]["params"], str) \
        else cells[0]["params"]
    script = tmp / "pyperf_bench.py"
    script.write_text(PYPERF_SCRIPT.format(here=str(HERE), n=params["n"],
                                           tasks=params["tasks"]))
    out_json = tmp / "pyperf.json"
    subprocess.run([sys.executable, str(script), "--processes", str(processes), "--values",
                    "3", "--warmups", "1", "--quiet", "-o", str(out_json)], check=True,
                   capture_output=True, text=True)
    import pyperf

    bench = pyperf.Benchmark.load(str(out_json))
    values = bench.get_values()
    medians = [c["median_s"] for c in cells]
    return {
        "params": params,
        "harness_cells": cells,
        "harness_cv_median": statistics.median(c["cv"] for c in cells),
        "harness_cv_max": max(c["cv"] for c in cells),
        "harness_repeats": [c["n"] for c in cells],
        "harness_median_s": statistics.median(medians),
        "harness_round_to_round_cv": (statistics.stdev(medians) / statistics.mean(medians)
                                      if len(medians) > 1 else None),
        "pyperf_values": len(values),
        "pyperf_mean_s": statistics.mean(values),
        "pyperf_median_s": statistics.median(values),
        "pyperf_cv": statistics.stdev(values) / statistics.mean(values),
    }


# Per cell, from the agent's timestamps (extra.cell_start_unix, extra.window_start_unix):
# what a cell costs beyond its timed windows is the time from the end of the previous
# cell's last window to the end of its own last window, minus the sum of its windows
# (warmups included). Split into: between (the previous cell's last sample, teardown and
# cell_done, this cell's cell_start), setup (import, noise facts, workload setup) and
# the gaps between its windows (sampler start/stop, check, sample line).
CELL_COST_SQL = """
WITH r AS (
  SELECT env_id, cell_id, wall_s,
         TRY_CAST(extra->>'window_start_unix' AS DOUBLE) AS t0,
         TRY_CAST(extra->>'cell_start_unix' AS DOUBLE) AS c0
  FROM measurements WHERE wall_s IS NOT NULL),
c AS (
  SELECT env_id, cell_id, min(c0) AS cell_start, min(t0) AS first_start,
         max(t0 + wall_s) AS last_end, sum(wall_s) AS work_s
  FROM r GROUP BY env_id, cell_id),
o AS (
  SELECT *, lag(last_end) OVER (PARTITION BY env_id ORDER BY cell_start) AS prev_end
  FROM c)
SELECT cell_id, work_s, cell_start - prev_end AS between_s,
       first_start - cell_start AS setup_s, last_end - first_start - work_s AS gaps_s,
       last_end - prev_end - work_s AS fixed_s, cell_start, last_end
FROM o ORDER BY cell_start
"""
SWEEP_SQL = ("SELECT epoch(started_at) AS started, epoch(finished_at) AS finished "
             "FROM sweeps")


def fixed_cost(tmp: Path, rounds: int) -> dict:
    """Per cell and per sweep, ``harness sweep --profile quick -w empty --dimensions``."""
    per_cell: list[float] = []
    parts: dict[str, list[float]] = {"between_s": [], "setup_s": [], "gaps_s": []}
    sweeps = []
    for r in range(rounds):
        res = tmp / f"fixed{r}"
        t0 = time.time()
        harness(res, "--profile", "quick", "-w", "empty", "--dimensions")
        t1 = time.time()
        cells = sql(res, CELL_COST_SQL)
        (sweep,) = sql(res, SWEEP_SQL)
        later = [c for c in cells if c["fixed_s"] is not None]  # the first has no previous
        per_cell += [c["fixed_s"] for c in later]
        for name, values in parts.items():
            values += [c[name] for c in later]
        span = cells[-1]["last_end"] - cells[0]["cell_start"]
        sweeps.append({
            "cells": len(cells), "command_s": t1 - t0,
            "work_s": sum(c["work_s"] for c in cells),
            "fixed_per_cell_mean_s": (span - sum(c["work_s"] for c in cells))
            / max(1, len(later)),
            # per sweep: all but the cells' span (first cell start to last window end)
            "per_sweep_s": (t1 - t0) - span,
            "command_to_sweep_start_s": sweep["started"] - t0,
            "sweep_start_to_first_cell_s": cells[0]["cell_start"] - sweep["started"],
            "last_window_to_sweep_end_s": sweep["finished"] - cells[-1]["last_end"],
            "sweep_end_to_exit_s": t1 - sweep["finished"]})
    from harness.plan.inventory import Host
    from harness.remote.bundle import build_agent
    from harness.remote.session import read_messages
    from harness.transport.local import LocalTransport

    agent = build_agent(tmp / "agent")
    starts = []
    for _ in range(5):
        t0 = time.perf_counter()
        with LocalTransport(Host(name="localhost", address="localhost", connection="local")) as tr:
            path = tr.put(agent, "agent.pyz")
            for _msg in read_messages(tr.run([sys.executable, path, "probe"], timeout=60),
                                      "localhost", sys.executable):
                starts.append(time.perf_counter() - t0)
                break
    return {"per_cell_s": per_cell, "per_cell_median_s": statistics.median(per_cell),
            "per_cell_p90_s": statistics.quantiles(per_cell, n=10)[-1],
            "per_cell_max_s": max(per_cell),
            "parts_median_s": {k: statistics.median(v) for k, v in parts.items()},
            "sweeps": sweeps,
            "agent_start_to_hello_s": statistics.median(starts)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pyperf-processes", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    ns = parser.parse_args()
    if not 1 <= ns.rounds <= 20 or not 1 <= ns.pyperf_processes <= 40:
        raise SystemExit("--rounds 1..20, --pyperf-processes 1..40")
    with tempfile.TemporaryDirectory(prefix="harness-stability-") as tmp:
        r = {"machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                         "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                         "loadavg": os.getloadavg()[0]},
             "stability": stability(Path(tmp), ns.profile, ns.rounds, ns.pyperf_processes),
             "fixed": fixed_cost(Path(tmp), ns.rounds)}
    if ns.json:
        print(json.dumps(r, indent=1))
        return 0
    s, f = r["stability"], r["fixed"]
    print(f"machine: {r['machine']}\n")
    print("| figure | harness | pyperf | target |\n|---|---|---|---|")
    print(f"| CV of one cell's repeats (cpu_bound sequential, n={s['params']['n']}, "
          f"tasks={s['params']['tasks']}) | median {s['harness_cv_median']:.4f}, max "
          f"{s['harness_cv_max']:.4f} over {len(s['harness_cells'])} cells "
          f"(repeats {s['harness_repeats']}) | {s['pyperf_cv']:.4f} "
          f"({s['pyperf_values']} values) | harness <= pyperf |")
    print(f"| median (s) | {s['harness_median_s']:.4f} | {s['pyperf_median_s']:.4f} | |")
    rr = s["harness_round_to_round_cv"]
    print(f"| CV of the cell median across rounds | {rr if rr is None else f'{rr:.4f}'} | | |")
    p = f["parts_median_s"]
    print(f"| fixed cost per cell, local (agent timestamps: end of the previous cell's "
          f"last window to the end of its own, minus its windows; {len(f['per_cell_s'])} "
          f"cells) | median {f['per_cell_median_s'] * 1000:.1f} ms, p90 "
          f"{f['per_cell_p90_s'] * 1000:.1f}, max {f['per_cell_max_s'] * 1000:.1f} "
          f"(medians: between cells {p['between_s'] * 1000:.1f}, setup "
          f"{p['setup_s'] * 1000:.1f}, gaps between repeats {p['gaps_s'] * 1000:.1f}) "
          f"| | < 50 ms |")
    for sw in f["sweeps"]:
        print(f"| per sweep ({sw['cells']} cells, command {sw['command_s']:.2f} s, "
              f"windows {sw['work_s']:.2f} s) | {sw['per_sweep_s'] * 1000:.0f} ms: "
              f"to sweep start {sw['command_to_sweep_start_s'] * 1000:.0f}, to first cell "
              f"{sw['sweep_start_to_first_cell_s'] * 1000:.0f}, last window to sweep end "
              f"{sw['last_window_to_sweep_end_s'] * 1000:.0f}, to exit "
              f"{sw['sweep_end_to_exit_s'] * 1000:.0f}; mean per cell "
              f"{sw['fixed_per_cell_mean_s'] * 1000:.1f} ms | | |")
    print(f"| agent start to hello, local | {f['agent_start_to_hello_s'] * 1000:.1f} ms | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
