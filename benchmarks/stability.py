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
2. Fixed cost per cell (local engine): ``-w empty -m threads --dimensions`` (five cells
   of empty tasks); per cell, (sweep duration - sum of every row's wall_s, warmups
   included) / cells: agent start, protocol, calibration bookkeeping and warehouse
   writes, everything but the timed work. And the agent start alone: LocalTransport,
   upload and ``probe`` until the hello line.
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


def fixed_cost(tmp: Path, rounds: int) -> dict:
    per_cell = []
    for r in range(rounds):
        res = tmp / f"fixed{r}"
        harness(res, "--profile", "quick", "-w", "empty", "-m", "threads", "--dimensions")
        (row,) = sql(res, "SELECT epoch(s.finished_at) - epoch(s.started_at) AS sweep_s, "
                          "(SELECT sum(wall_s) FROM measurements) AS work_s, "
                          "(SELECT count(*) FROM cells) AS cells FROM sweeps s")
        per_cell.append((row["sweep_s"] - row["work_s"]) / row["cells"])
    from harness.bundle import build_agent
    from harness.inventory import Host
    from harness.remote import read_messages
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
    print(f"| fixed cost per cell, local (sweep - sum of wall_s) / cells | "
          f"{f['per_cell_median_s'] * 1000:.1f} ms (rounds: "
          f"{', '.join(f'{x * 1000:.1f}' for x in f['per_cell_s'])}) | | < 50 ms |")
    print(f"| agent start to hello, local | {f['agent_start_to_hello_s'] * 1000:.1f} ms | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
