"""Does the harness add cost to what it measures? Harness medians vs a plain script.

    .venv/bin/python benchmarks/overhead.py [--profile standard] [--rounds 5]
        [--repeats 7] [-w cpu_bound] [--lock /tmp/harness-cpu.lock] [--json]
    .venv/bin/python benchmarks/overhead.py --profile quick --pairs 16 -w cpu_bound
        [-m sequential ...] [--lock /tmp/harness-cpu.lock] [--json]

Each round runs `harness sweep --no-dimensions -w cpu_bound -w net_high_latency` (the
headline cells of the five models) into one temporary warehouse, reads each cell's
median and resolved params (the calibrated loop size n, tasks, delay, workers), and
times the same work with benchmarks/direct.py (stdlib only, no harness) under the
same interpreter. Rounds alternate the order (even rounds: harness, then direct with
its params; odd rounds: direct with the previous round's params, then harness), so
drift of the machine hits both. All rounds share one warehouse, so later sweeps reuse
the first one's calibrated CPU rate (results/calibration) and time the same n; a CPU
cell's ratio is still taken per unit of n in case it differs. Every round is a fresh
agent process and a fresh direct process, so the process-to-process spread of
CPython (memory layout, hash seed: pyperf's reason to spread values over processes)
shows as the spread of the per-round ratios instead of biasing a single comparison.

Prints a Markdown table: per workload and model the median over rounds of the
harness medians and of the direct medians (their n may differ a little), the median
of the per-round ratios (harness / direct) and their range, then the largest
deviation of a median ratio.
``--lock PATH`` holds an exclusive flock on PATH during each round only (so other
jobs of a shared machine run between rounds, never during one).

``--pairs N`` (paired mode) instead runs, per model, N short pairs of one harness
sweep of that model's cell and one direct.py run of the same cell, seconds apart,
alternating which goes first; the direct side takes as many repeats as the harness
cell kept samples. It reports the median of the per-pair ratios and the ratio of the
pooled medians (every harness sample against every direct sample), each with a
bootstrap 95% interval that resamples whole pairs. A pair's two sides share the
machine's phase of speed, which rounds of whole sweeps minutes apart do not.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = ("sequential", "threads", "processes", "mp_pool", "asyncio")
WORKLOADS = {"cpu_bound": "cpu", "net_high_latency": "net"}
Key = tuple[str, str]


def harness_medians(results: Path, profile: str, workloads: list[str],
                    models: tuple[str, ...] = MODELS) -> dict[Key, dict]:
    cmd = [sys.executable, "-m", "harness", "sweep", "--profile", profile, "--results",
           str(results), "--no-dimensions", *[a for w in workloads for a in ("-w", w)],
           *[a for m in models for a in ("-m", m)]]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    query = ("SELECT c.workload, c.model, c.workers, c.n, c.median_s, c.params, "
             "list(m.wall_s ORDER BY m.repeat) AS walls FROM cells c JOIN measurements m "
             "USING (sweep_id, cell_id) WHERE c.headline AND c.status = 'ok' AND m.ok "
             "AND NOT m.warmup AND c.sweep_id = (SELECT max(sweep_id) FROM sweeps) "
             "GROUP BY ALL")
    out = subprocess.run([sys.executable, "-m", "harness", "sql", query, "--format", "json",
                          "--results", str(results)], check=True, capture_output=True, text=True)
    rows = json.loads(out.stdout)
    return {(r["workload"], r["model"]): {
        "median_s": r["median_s"], "workers": r["workers"], "samples": r["n"],
        "walls": r["walls"],
        "params": json.loads(r["params"]) if isinstance(r["params"], str) else r["params"]}
        for r in rows}


def direct_medians(cells: dict[Key, dict], repeats: int) -> dict[Key, float]:
    return {k: v["median_s"] for k, v in direct_runs(cells, repeats).items()}


def direct_runs(cells: dict[Key, dict], repeats: int) -> dict[Key, dict]:
    """direct.py's {median_s, samples} per cell, with the cells' params."""
    found: dict[Key, dict] = {}
    for workload, kind in WORKLOADS.items():
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
            found[(workload, model)] = entry
    return found


@contextlib.contextmanager
def exclusive(lock: Path | None) -> Iterator[None]:
    if lock is None:
        yield
        return
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_rounds(ns: argparse.Namespace, tmp: Path) -> list[dict]:
    """Odd rounds time the direct script first, with the previous round's params."""
    rounds: list[dict] = []
    cells: dict[Key, dict] = {}
    for i in range(ns.rounds):
        with exclusive(ns.lock):
            load = os.getloadavg()[0]
            t0 = time.monotonic()
            if i % 2 == 0:
                cells = harness_medians(tmp / "results", ns.profile, ns.workload)
                used, direct = cells, direct_medians(cells, ns.repeats)
            else:
                used, direct = cells, direct_medians(cells, ns.repeats)
                cells = harness_medians(tmp / "results", ns.profile, ns.workload)
        rounds.append({
            "order": "harness first" if i % 2 == 0 else "direct first",
            "loadavg_1m": load, "seconds": round(time.monotonic() - t0, 1),
            "cells": {"|".join(k): {
                "harness_s": c["median_s"], "harness_n": c["params"].get("n"),
                "direct_s": direct.get(k),
                "direct_n": used[k]["params"].get("n") if k in used else None}
                for k, c in cells.items()}})
        ratios = ", ".join(f"{k.replace('|', ' ')} {x:.3f}" for k, c in
                           sorted(rounds[-1]["cells"].items()) if (x := ratio(c)) is not None)
        print(f"round {i + 1}/{ns.rounds} done ({rounds[-1]['order']}, load {load:.2f}, "
              f"{rounds[-1]['seconds']} s): {ratios}", file=sys.stderr, flush=True)
    return rounds


def ratio(cell: dict) -> float | None:
    """harness / direct per unit of work: the CPU cells' loop size n is calibrated
    afresh by each harness run, so both times are divided by their own n (the task's
    time is linear in n); the network cells have no n (same delay and tasks)."""
    if cell["direct_s"] is None or (cell["harness_n"] is None) != (cell["direct_n"] is None):
        return None
    scale = cell["direct_n"] / cell["harness_n"] if cell["harness_n"] is not None else 1.0
    return cell["harness_s"] * scale / cell["direct_s"]


def run_pairs(ns: argparse.Namespace, tmp: Path) -> dict[Key, list[dict]]:
    """Many short harness/direct pairs, one model per pair, so the two sides of a
    ratio run seconds apart: this VM's CPU speed moves in phases of seconds (see
    RESULTS.md), which a round of whole sweeps minutes apart cannot cancel.

    A first sweep of every model calibrates the loop size and gives each cell's
    params; every later sweep reuses that calibration (same warehouse), so both
    sides time the same n. Pair i runs harness first when i is even, direct first
    when odd; the direct script takes as many repeats as the harness cell had
    samples, so both medians are over the same count."""
    results = tmp / "results"
    with exclusive(ns.lock):
        params = harness_medians(results, ns.profile, ns.workload, ns.models)
    pairs: dict[Key, list[dict]] = {k: [] for k in params}
    for i in range(ns.pairs):
        for key in sorted(params, key=lambda k: (k[0], MODELS.index(k[1]))):
            with exclusive(ns.lock):
                t0 = time.monotonic()
                used = {key: params[key]}
                if i % 2 == 0:
                    cell = harness_medians(results, ns.profile, [key[0]], (key[1],))[key]
                    used = {key: cell}
                    direct = direct_runs(used, cell["samples"])[key]
                else:
                    direct = direct_runs(used, used[key]["samples"])[key]
                    cell = harness_medians(results, ns.profile, [key[0]], (key[1],))[key]
            pair = {"harness_s": cell["median_s"], "harness_n": cell["params"].get("n"),
                    "direct_s": direct["median_s"], "direct_n": used[key]["params"].get("n"),
                    "harness_walls": cell["walls"], "direct_walls": direct["samples"],
                    "samples": cell["samples"], "order": "HD" if i % 2 == 0 else "DH",
                    "seconds": round(time.monotonic() - t0, 1)}
            pairs[key].append(pair)
            print(f"pair {i + 1}/{ns.pairs} {' '.join(key)} {pair['order']}: "
                  f"{ratio(pair):.3f}", file=sys.stderr, flush=True)
    return pairs


def pooled_ratio(cells: list[dict]) -> float:
    """Median of every harness sample over the median of every direct sample, each
    harness sample scaled to the direct side's n (the task is linear in n)."""
    harness = [w * (c["direct_n"] / c["harness_n"] if c["harness_n"] else 1.0)
               for c in cells for w in c["harness_walls"]]
    return (statistics.median(harness)
            / statistics.median([w for c in cells for w in c["direct_walls"]]))


def bootstrap_ci(cells: list[dict], stat, resamples: int = 2000) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of ``stat(pairs)``, resampling whole pairs
    (the two sides of a pair share the machine's phase), fixed seed."""
    rng = random.Random(1)
    values = sorted(stat(rng.choices(cells, k=len(cells))) for _ in range(resamples))
    return values[int(0.025 * resamples)], values[int(0.975 * resamples) - 1]


def median_of_ratios(cells: list[dict]) -> float:
    return statistics.median(x for x in map(ratio, cells) if x is not None)


def summarise_pairs(pairs: dict[Key, list[dict]]) -> list[dict]:
    rows = []
    for (workload, model), cells in sorted(pairs.items()):
        cells = [c for c in cells if ratio(c) is not None]
        if not cells:
            continue
        ratios = [ratio(c) for c in cells]
        low, high = bootstrap_ci(cells, median_of_ratios)
        plow, phigh = bootstrap_ci(cells, pooled_ratio)
        rows.append({
            "workload": workload, "model": model, "pairs": len(ratios),
            "harness_s": statistics.median(c["harness_s"] for c in cells),
            "direct_s": statistics.median(c["direct_s"] for c in cells),
            "ratio": statistics.median(ratios), "ci_low": low, "ci_high": high,
            "pooled": pooled_ratio(cells), "pooled_low": plow, "pooled_high": phigh,
            "within_3pct": sum(abs(x - 1) <= 0.03 for x in ratios) / len(ratios),
            "ratio_min": min(ratios), "ratio_max": max(ratios)})
    return rows


def summarise(rounds: list[dict]) -> list[dict]:
    rows = []
    for key in sorted({k for r in rounds for k in r["cells"]}):
        cells = [r["cells"][key] for r in rounds if key in r["cells"]]
        ratios = [x for x in map(ratio, cells) if x is not None]
        if not ratios:
            continue
        workload, model = key.split("|")
        rows.append({
            "workload": workload, "model": model,
            "harness_s": statistics.median(c["harness_s"] for c in cells),
            "direct_s": statistics.median(c["direct_s"] for c in cells
                                          if c["direct_s"] is not None),
            "ratio": statistics.median(ratios), "ratio_min": min(ratios),
            "ratio_max": max(ratios), "rounds": len(ratios)})
    return rows


def print_pairs(ns: argparse.Namespace, machine: dict) -> int:
    if not 2 <= ns.pairs <= 200:
        raise SystemExit("--pairs 2..200")
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="harness-overhead-") as tmp:
        pairs = run_pairs(ns, Path(tmp))
    rows = summarise_pairs(pairs)
    if ns.json:
        print(json.dumps({"machine": machine, "pairs": {"|".join(k): v for k, v in
                                                      pairs.items()}, "summary": rows}, indent=1))
        return 0
    print(f"{machine['cores']} cores, python {machine['python']}, {machine['date']}, "
          f"profile {ns.profile}, {ns.pairs} pairs per model, load {load0:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end\n")
    print("| workload | model | pairs | harness median (s) | direct median (s) | "
          "median of pair ratios [95% CI] | pooled samples: harness / direct median "
          "[95% CI] | pairs within 3% | pair range |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workload']} | {r['model']} | {r['pairs']} | {r['harness_s']:.4f} | "
              f"{r['direct_s']:.4f} | {r['ratio']:.3f} [{r['ci_low']:.3f}-{r['ci_high']:.3f}] | "
              f"{r['pooled']:.3f} [{r['pooled_low']:.3f}-{r['pooled_high']:.3f}] | "
              f"{r['within_3pct']:.0%} | {r['ratio_min']:.3f}-{r['ratio_max']:.3f} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("-w", "--workload", action="append", choices=sorted(WORKLOADS))
    parser.add_argument("--lock", type=Path, help="flock this file exclusively per round")
    parser.add_argument("-m", "--model", action="append", choices=MODELS,
                        help="paired mode: only these models (default: all five)")
    parser.add_argument("--pairs", type=int, default=0,
                        help="paired mode: this many harness/direct pairs per model")
    parser.add_argument("--json", action="store_true")
    ns = parser.parse_args()
    ns.workload = ns.workload or sorted(WORKLOADS)
    ns.models = tuple(ns.model or MODELS)
    if not 1 <= ns.rounds <= 50:
        raise SystemExit("--rounds 1..50")
    machine = {"cores": os.cpu_count(), "python": platform.python_version(),
               "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    if ns.pairs:
        return print_pairs(ns, machine)
    with tempfile.TemporaryDirectory(prefix="harness-overhead-") as tmp:
        rounds = run_rounds(ns, Path(tmp))
    rows = summarise(rounds)
    if ns.json:
        print(json.dumps({"machine": machine, "rounds": rounds, "summary": rows}, indent=1))
        return 0
    loads = [r["loadavg_1m"] for r in rounds]
    print(f"{machine['cores']} cores, python {machine['python']}, {machine['date']}, "
          f"profile {ns.profile}, {ns.rounds} rounds x {ns.repeats} direct repeats, "
          f"load {min(loads):.2f}-{max(loads):.2f} at round starts\n")
    print("| workload | model | harness median (s) | direct median (s) | "
          "harness / direct, median of rounds | range over rounds |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['workload']} | {row['model']} | {row['harness_s']:.4f} | "
              f"{row['direct_s']:.4f} | {row['ratio']:.3f} | "
              f"{row['ratio_min']:.3f}-{row['ratio_max']:.3f} ({row['rounds']}) |")
    worst = max(rows, key=lambda r: abs(r["ratio"] - 1))
    print(f"\nlargest deviation of a median ratio: {abs(worst['ratio'] - 1) * 100:.1f}% "
          f"({worst['workload']} {worst['model']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
