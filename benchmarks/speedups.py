"""Do speedups repeat? N consecutive sweeps, the speedups a user reads, side by side.

    .venv/bin/python benchmarks/speedups.py [--sweeps 5] [--profile quick] [--results DIR]
        [--analyse ID ...]

Runs ``harness sweep --profile PROFILE`` N times into one warehouse (a fresh temporary
one unless ``--results``; ``--analyse ID ...`` only analyses stored sweeps) and prints:

* per sweep, the headline speedups of ``cpu_bound`` and ``net_high_latency`` with their
  intervals, paired (``matrix.speedup``, median of per-block ratios) and unpaired
  (``matrix.speedup_unpaired``, ratio of the two cells' medians);
* issue 12's bands: GIL-build CPU-bound ``threads`` and ``asyncio`` within 0.85-1.15;
  ``processes`` and ``mp_pool`` within +-10% of their N-sweep mean; ``net_high_latency``
  ``threads`` and ``asyncio`` within +-5% of theirs; for each, paired and unpaired;
* with two or more sweeps, for each consecutive pair, over every matrix and dimension
  speedup ok in both: the share where each sweep's speedup lies inside the other's
  interval, and where the intervals overlap;
* the check that plain DuckDB over the raw Parquet files (no harness views), median of
  the per-block ratios, gives ``matrix.speedup`` for every paired cell;
* the wall time of each sweep and the load average.

Run it on a quiet machine (nothing else running): it measures the method, not the host.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.warehouse import Warehouse  # noqa: E402

HEADLINE = """
SELECT m.sweep_id, m.host, m.python, m.workload, m.model, m.speedup, m.speedup_ci_low,
       m.speedup_ci_high, m.speedup_unpaired, m.speedup_unpaired_ci_low,
       m.speedup_unpaired_ci_high, m.n_blocks, coalesce(m.gil_enabled, true) AS gil
FROM matrix m
WHERE m.workload IN ('cpu_bound', 'net_high_latency') AND m.model <> 'sequential'
  AND m.speedup IS NOT NULL AND list_contains(?, m.sweep_id)
ORDER BY m.sweep_id, m.workload, m.model
"""

# every matrix and dimension speedup of one sweep, keyed to match across sweeps by the
# planned cell (cell_key: workload, plan params, model, workers), not by the resolved
# params, which record whether the CPU rate was measured or reused
ALL_SPEEDUPS = """
SELECT m.sweep_id, m.host, m.python, c.cell_key, m.workload, m.model,
       m.speedup, m.speedup_ci_low, m.speedup_ci_high, m.n_blocks
FROM matrix m JOIN cells c USING (sweep_id, env_id, cell_id)
WHERE m.model <> 'sequential' AND m.speedup IS NOT NULL AND list_contains(?, m.sweep_id)
UNION ALL
SELECT sweep_id, host, python, cell_key, workload, model,
       speedup, speedup_ci_low, speedup_ci_high, n_blocks
FROM dimension_cells
WHERE model <> 'sequential' AND speedup IS NOT NULL AND list_contains(?, sweep_id)
"""

RAW = """
WITH m AS (
    SELECT * FROM read_parquet('{root}/measurements/**/*.parquet', hive_partitioning = true,
                               union_by_name = true)
), t AS (
    SELECT * FROM m WHERE NOT warmup AND ok AND wall_s IS NOT NULL AND block IS NOT NULL
)
SELECT t.sweep_id, t.env_id, t.cell_id, median(s.wall_s / t.wall_s) AS raw_speedup
FROM t JOIN t s ON s.sweep_id = t.sweep_id AND s.env_id = t.env_id
               AND s.block_group = t.block_group AND s.block = t.block
               AND s.model = 'sequential'
GROUP BY ALL
"""

BANDS = {  # (workload, model): ("abs", low, high) or ("mean", relative half-width)
    ("cpu_bound", "threads"): ("abs", 0.85, 1.15),
    ("cpu_bound", "asyncio"): ("abs", 0.85, 1.15),
    ("cpu_bound", "processes"): ("mean", 0.10),
    ("cpu_bound", "mp_pool"): ("mean", 0.10),
    ("net_high_latency", "threads"): ("mean", 0.05),
    ("net_high_latency", "asyncio"): ("mean", 0.05),
}


def sweep(profile: str, results: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", "sweep", "--profile", profile,
                    "--results", str(results)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def fmt(x: float, lo: float, hi: float) -> str:
    return f"{x:.2f}x [{lo:.2f}-{hi:.2f}]"


def bands(head, column: str) -> list[tuple[str, str, str, bool]]:
    """(workload/model, values, band, met) for the GIL build's rows."""
    out = []
    gil = head[head.gil]
    for (workload, model), rule in BANDS.items():
        vals = gil[(gil.workload == workload) & (gil.model == model)][column].dropna()
        if vals.empty:
            continue
        if rule[0] == "abs":
            low, high = rule[1], rule[2]
            band = f"{low:.2f}-{high:.2f}"
        else:
            mean = vals.mean()
            low, high = mean * (1 - rule[1]), mean * (1 + rule[1])
            band = f"mean {mean:.2f} +-{100 * rule[1]:.0f}% = {low:.2f}-{high:.2f}"
        met = bool(((vals >= low) & (vals <= high)).all())
        out.append((f"{workload}/{model}", ", ".join(f"{v:.2f}" for v in vals), band, met))
    return out


def agreement(wh: Warehouse, ids: list[str]) -> None:
    frame = wh.query(ALL_SPEEDUPS, [ids, ids])
    key = ["host", "python", "cell_key"]
    print("\n| sweeps | speedups ok in both | each inside the other's interval "
          "| intervals overlap |")
    print("|---|---|---|---|")
    for a, b in zip(ids, ids[1:], strict=False):
        pa = frame[frame.sweep_id == a]
        pb = frame[frame.sweep_id == b]
        pairs = pa.merge(pb, on=key, suffixes=("_a", "_b"))
        if pairs.empty:
            continue
        inside_b = (pairs.speedup_b >= pairs.speedup_ci_low_a) & (
            pairs.speedup_b <= pairs.speedup_ci_high_a)
        inside_a = (pairs.speedup_a >= pairs.speedup_ci_low_b) & (
            pairs.speedup_a <= pairs.speedup_ci_high_b)
        both = inside_a & inside_b
        overlap = (pairs.speedup_ci_low_a <= pairs.speedup_ci_high_b) & (
            pairs.speedup_ci_low_b <= pairs.speedup_ci_high_a)
        print(f"| {a} -> {b} | {len(pairs)} | {100 * both.mean():.1f}% "
              f"({int(both.sum())}) | {100 * overlap.mean():.1f}% ({int(overlap.sum())}) |")
        # by the fewer blocks of the two: the interval's width against the median's spread
        # depends on the count (plan/cells.py MIN_BLOCKS)
        fewer = pairs[["n_blocks_a", "n_blocks_b"]].min(axis=1)
        print("|   by blocks: " + ", ".join(
            f"{int(n)}: {int(both[fewer == n].sum())}/{int((fewer == n).sum())}"
            for n in sorted(fewer.dropna().unique())) + " | | | |")
        misses = pairs[~both]
        for r in misses.itertuples():
            print(f"|   miss: {r.workload_a}/{r.model_a} | | {r.speedup_a:.2f}x "
                  f"[{r.speedup_ci_low_a:.2f}-{r.speedup_ci_high_a:.2f}] vs {r.speedup_b:.2f}x "
                  f"[{r.speedup_ci_low_b:.2f}-{r.speedup_ci_high_b:.2f}] | |")


def raw_check(wh: Warehouse, results: Path, ids: list[str]) -> None:
    raw = duckdb.connect().sql(RAW.format(root=str(results.resolve()))).df()
    mat = wh.query("SELECT sweep_id, env_id, cell_id, speedup, speedup_method FROM matrix "
                   "WHERE list_contains(?, sweep_id) AND speedup_method = 'paired'", [ids])
    both = mat.merge(raw, on=["sweep_id", "env_id", "cell_id"], how="left")
    diff = (both.speedup - both.raw_speedup).abs()
    equal = int((diff <= 1e-12 * both.speedup.abs()).sum())
    print(f"\nplain DuckDB over the raw Parquet (median of per-block ratios) equals "
          f"matrix.speedup for {equal} of {len(both)} paired matrix cells "
          f"(largest difference {diff.max():.2e})")


def analyse(results: Path, ids: list[str]) -> None:
    wh = Warehouse(results)
    head = wh.query(HEADLINE, [ids])
    print("| sweep | workload | model | paired | unpaired | blocks |")
    print("|---|---|---|---|---|---|")
    for r in head.itertuples():
        print(f"| {r.sweep_id} | {r.workload} | {r.model} | "
              f"{fmt(r.speedup, r.speedup_ci_low, r.speedup_ci_high)} | "
              f"{fmt(r.speedup_unpaired, r.speedup_unpaired_ci_low, r.speedup_unpaired_ci_high)}"
              f" | {r.n_blocks} |")
    for column, name in (("speedup", "paired"), ("speedup_unpaired", "unpaired")):
        print(f"\nBands, {name} (GIL build):\n")
        print("| cell | speedups | band | met |")
        print("|---|---|---|---|")
        for cell, values, band, met in bands(head, column):
            print(f"| {cell} | {values} | {band} | {'yes' if met else 'NO'} |")
    if len(ids) >= 2:
        agreement(wh, ids)
    raw_check(wh, results, ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=5)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--results", type=Path)
    parser.add_argument("--analyse", nargs="+", metavar="ID")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="speedups-") as tmp:
        results = args.results or Path(tmp) / "results"
        if args.analyse:
            ids = list(args.analyse)
        else:
            print(f"load before: {os.getloadavg()[0]:.2f}", flush=True)
            times = [sweep(args.profile, results) for _ in range(args.sweeps)]
            ids = Warehouse(results).sweep_ids()[-args.sweeps:]
            print(f"`harness sweep --profile {args.profile}` x {args.sweeps}: "
                  + ", ".join(f"{t:.0f} s" for t in times)
                  + f"; load after: {os.getloadavg()[0]:.2f}\n")
        analyse(results, ids)


if __name__ == "__main__":
    main()
