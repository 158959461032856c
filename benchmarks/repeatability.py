"""Repeatability: two sweeps of one profile, one after the other, cell by cell.

    .venv/bin/python benchmarks/repeatability.py [--profile standard] [--results DIR]
        [--sweeps A B]

Runs ``harness sweep --profile PROFILE`` twice into one warehouse (a fresh temporary
one unless ``--results``; ``--sweeps A B`` only analyses two stored sweeps), then for
every cell that finished ``ok`` in both (matched by environment host/python and
``cell_key``), with the same resolved params, asks:

* is the second median inside the first sweep's 95% interval (the strict reading of
  "medians within their stated intervals")?
* is either median inside the other's interval?
* do the two intervals overlap?

and prints the shares overall, for headline and dimension cells, and per workload,
plus how calibration stopped (target / budget / max_repeats). The intervals are the
distribution-free order-statistic intervals of the median the warehouse states
(``cells.ci_low_s`` / ``ci_high_s``).

Run it on a quiet machine: anything else running moves the second sweep's medians.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.warehouse import Warehouse  # noqa: E402

PAIRS = """
WITH c AS (
    SELECT c.*, e.host, e.python FROM cells c JOIN environments e USING (sweep_id, env_id)
    WHERE c.status = 'ok' AND c.median_s IS NOT NULL
)
SELECT a.workload, a.model, a.workers, a.headline,
       coalesce(a.params->>'dimension', 'headline') AS dimension,
       a.median_s AS a_median, a.ci_low_s AS a_low, a.ci_high_s AS a_high, a.n AS a_n,
       b.median_s AS b_median, b.ci_low_s AS b_low, b.ci_high_s AS b_high, b.n AS b_n,
       a.params::VARCHAR = b.params::VARCHAR AS same_params
FROM c a JOIN c b ON a.cell_key = b.cell_key AND a.host = b.host AND a.python = b.python
WHERE a.sweep_id = ? AND b.sweep_id = ?
"""

STOPS = """
WITH last AS (  -- a cell's last stop (earlier agent runs of a cell stop at their share)
    SELECT sweep_id, extra->>'calib_stop' AS stop, (extra->>'calib_repeats')::INT AS n
    FROM measurements WHERE extra->>'calib_stop' IS NOT NULL AND sweep_id IN (?, ?)
    QUALIFY row_number() OVER (PARTITION BY sweep_id, env_id, cell_id ORDER BY repeat DESC) = 1
)
SELECT sweep_id, stop, count(*) AS cells, min(n) AS lo, median(n) AS mid, max(n) AS hi
FROM last GROUP BY ALL ORDER BY ALL
"""


def sweep(profile: str, results: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", "sweep", "--profile", profile,
                    "--results", str(results)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def share(frame, column: str) -> str:
    if len(frame) == 0:
        return "-"
    return f"{100.0 * frame[column].mean():.1f}% ({int(frame[column].sum())}/{len(frame)})"


def analyse(results: Path, first: str, second: str) -> None:
    wh = Warehouse(results)
    pairs = wh.query(PAIRS, [first, second])
    pairs["inside"] = (pairs.b_median >= pairs.a_low) & (pairs.b_median <= pairs.a_high)
    back = (pairs.a_median >= pairs.b_low) & (pairs.a_median <= pairs.b_high)
    pairs["either"] = pairs.inside | back
    pairs["overlap"] = (pairs.a_low <= pairs.b_high) & (pairs.b_low <= pairs.a_high)
    pairs["rel_diff"] = pairs.b_median / pairs.a_median - 1.0
    print(f"sweeps {first} -> {second}: {len(pairs)} cells ok in both, "
          f"{int((~pairs.same_params).sum())} with different params\n")
    print("| cells | 2nd median in 1st interval | either in the other's | intervals overlap |")
    print("|---|---|---|---|")
    groups = [("all", pairs), ("headline", pairs[pairs.headline]),
              ("dimension", pairs[~pairs.headline])]
    groups += [(w, g) for w, g in pairs.groupby("workload")]
    for name, g in groups:
        print(f"| {name} | {share(g, 'inside')} | {share(g, 'either')} | {share(g, 'overlap')} |")
    print("\n|abs difference of medians| median | p90 | max |")
    print("|---|---|---|---|")
    d = pairs.rel_diff.abs() * 100
    print(f"| all cells | {d.median():.2f}% | {d.quantile(0.9):.2f}% | {d.max():.2f}% |")
    misses = pairs[~pairs.inside].sort_values("rel_diff", key=abs, ascending=False)
    print("\nLargest misses (2nd median outside the 1st interval):\n")
    print("| workload | model | workers | dimension | diff | 1st interval width |")
    print("|---|---|---|---|---|---|")
    for r in misses.head(12).itertuples():
        width = (r.a_high - r.a_low) / r.a_median * 100
        print(f"| {r.workload} | {r.model} | {r.workers} | {r.dimension or 'headline'} | "
              f"{100 * r.rel_diff:+.1f}% | {width:.1f}% |")
    print("\nCalibration stops (cells; timed repeats used: min / median / max):\n")
    print("| sweep | stop | cells | repeats |")
    print("|---|---|---|---|")
    for r in wh.query(STOPS, [first, second]).itertuples():
        print(f"| {r.sweep_id} | {r.stop} | {r.cells} | {r.lo} / {r.mid} / {r.hi} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--results", type=Path)
    parser.add_argument("--sweeps", nargs=2, metavar=("FIRST", "SECOND"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="repeatability-") as tmp:
        results = args.results or Path(tmp) / "results"
        if args.sweeps:
            first, second = args.sweeps
        else:
            print(f"load before: {os.getloadavg()[0]:.2f}", flush=True)
            times = [sweep(args.profile, results) for _ in range(2)]
            first, second = Warehouse(results).sweep_ids()[-2:]
            print(f"`harness sweep --profile {args.profile}` twice: "
                  f"{times[0]:.0f} s and {times[1]:.0f} s; load after: "
                  f"{os.getloadavg()[0]:.2f}\n")
        analyse(results, first, second)


if __name__ == "__main__":
    main()
