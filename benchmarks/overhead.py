"""Does the harness add cost to what it measures? Harness medians vs a plain script.

    .venv/bin/python benchmarks/overhead.py [--profile standard] [--rounds 2]

Runs `harness sweep -w cpu_bound -w net_high_latency` into a temporary warehouse,
reads each cell's median and resolved params (the calibrated loop size n, tasks,
delay, workers), then times the same work with benchmarks/direct.py (stdlib only,
no harness) under the same interpreter. Rounds alternate harness and direct runs so
drift of the machine hits both. Prints a Markdown table: per workload and model the
two medians and their ratio (harness / direct), and the largest deviation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = ("sequential", "threads", "processes", "mp_pool", "asyncio")


def harness_medians(results: Path, profile: str) -> dict[tuple[str, str], dict]:
    cmd = [sys.executable, "-m", "harness", "sweep", "--profile", profile, "--results",
           str(results), "-w", "cpu_bound", "-w", "net_high_latency",
           *[a for m in MODELS for a in ("-m", m)]]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    query = ("SELECT workload, model, workers, median_s, params FROM cells "
             "WHERE headline AND status = 'ok' AND sweep_id = "
             "(SELECT max(sweep_id) FROM sweeps)")
    out = subprocess.run([sys.executable, "-m", "harness", "sql", query, "--format", "json",
                          "--results", str(results)], check=True, capture_output=True, text=True)
    rows = json.loads(out.stdout)
    return {(r["workload"], r["model"]): {
        "median_s": r["median_s"], "workers": r["workers"],
        "params": json.loads(r["params"]) if isinstance(r["params"], str) else r["params"]}
        for r in rows}


def direct_medians(cells: dict[tuple[str, str], dict], repeats: int) -> dict:
    found: dict[tuple[str, str], float] = {}
    for workload, kind in (("cpu_bound", "cpu"), ("net_high_latency", "net")):
        mine = {m: c for (w, m), c in cells.items() if w == workload}
        if not mine:
            continue
        params = next(iter(mine.values()))["params"]
        args = [sys.executable, str(HERE / "direct.py"), kind, "--tasks", str(params["tasks"]),
                "--repeats", str(repeats), "--models", ",".join(mine),
                "--workers", json.dumps({m: c["workers"] for m, c in mine.items()})]
        if kind == "cpu":
            args += ["--n", str(params["n"])]
        else:
            args += ["--delay", str(params["delay_s"])]
        out = subprocess.run(args, check=True, capture_output=True, text=True)
        for model, entry in json.loads(out.stdout).items():
            found[(workload, model)] = entry["median_s"]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    ns = parser.parse_args()
    harness_runs: list[dict] = []
    direct_runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="harness-overhead-") as tmp:
        for i in range(ns.rounds):
            cells = harness_medians(Path(tmp) / f"r{i}", ns.profile)
            harness_runs.append({k: v["median_s"] for k, v in cells.items()})
            direct_runs.append(direct_medians(cells, ns.repeats))
    print(f"python {sys.version.split()[0]}, profile {ns.profile}, rounds {ns.rounds}\n")
    print("| workload | model | harness median (s) | direct median (s) | harness / direct |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for key in sorted(harness_runs[0]):
        h = statistics.median(r[key] for r in harness_runs if key in r)
        d = statistics.median(r[key] for r in direct_runs if key in r)
        ratio = h / d
        worst = max(worst, abs(ratio - 1))
        print(f"| {key[0]} | {key[1]} | {h:.4f} | {d:.4f} | {ratio:.3f} |")
    print(f"\nlargest deviation: {worst * 100:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
