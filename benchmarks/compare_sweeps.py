"""Before and after at scale: `harness compare --by sweep` over two sweeps of a large
warehouse (acceptance target: under 1 s), and `harness history` of one host.

    .venv/bin/python benchmarks/compare_sweeps.py [--rows 10000000] [--sweeps 1000]
        [--hosts 100] [--root DIR] [--keep] [--existing] [--repeats 3] [--json]

The warehouse is warehouse_scale.py's (the same synthesis: real schemas, one compacted
measurements file per sweep, 4 workloads x 5 models per host, 4 hardware profiles; the
hosts, interpreter and profiles are the same in every sweep, so each environment is in
every sweep). ``--existing`` measures a warehouse built before (by this script or by
``warehouse_scale.py --root DIR --keep``). Each command is timed as a fresh process
end to end (interpreter start, views, query, formatting), with its peak RSS; the file
index and view cache are built once beforehand, as after any earlier command.

* ``harness compare --by sweep --baseline MIDDLE --sweep LATEST`` (table, and json):
  every host's 20 cells in the two sweeps; the json answer is checked to hold
  hosts x 20 cells;
* ``harness history --host node000 -w cpu_bound``: one host's 5 cells over every sweep
  (reported, no target: it reads every sweep's partition);
* with ``--changes``: ``harness sql "SELECT count(*) FROM changes"``, the step detection
  over every series of the warehouse (reported).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from warehouse_scale import MODELS, WORKLOADS, Synth, count_rows, ingest, sweep_ids, timed  # noqa: E402

from harness.warehouse import Warehouse  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--sweeps", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--root", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--existing", action="store_true",
                        help="measure the warehouse already in --root")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--changes", action="store_true",
                        help="also time `harness sql 'SELECT count(*) FROM changes'` (the "
                             "steps of every series of every sweep, in Python)")
    ns = parser.parse_args()
    if not 2 <= ns.sweeps <= 100_000 or not 1 <= ns.hosts <= 10_000 or ns.repeats < 1:
        raise SystemExit("--sweeps 2..100000, --hosts 1..10000, --repeats >= 1")
    if ns.existing and ns.root is None:
        raise SystemExit("--existing needs --root")
    tmp = None
    if ns.root is None:
        tmp = tempfile.mkdtemp(prefix="harness-compare-sweeps-")
        root = Path(tmp)
    else:
        root = ns.root.resolve()
        if ns.existing and not (root / "sweeps").is_dir():
            raise SystemExit(f"--existing: no warehouse in {root}")
        if not ns.existing and root.exists() and any(root.iterdir()):
            raise SystemExit(f"{root} is not empty")
    try:
        result: dict = {"machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                                    "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                                    "loadavg": os.getloadavg()}}
        if ns.existing:
            ids = [i for i in Warehouse(root).sweep_ids() if not i.startswith("zz-")]
        else:
            ids = sweep_ids(ns.sweeps)
            ingest(root, Synth(ns.hosts, ns.rows // ns.sweeps), ids)
        baseline, latest = ids[len(ids) // 2], ids[-1]
        result["data"] = {"rows": count_rows(root), "sweeps": len(ids), "hosts": ns.hosts,
                          "baseline": baseline, "sweep": latest}
        hx = [str(Path(sys.executable).with_name("harness"))]
        if not Path(hx[0]).exists():
            hx = [sys.executable, "-m", "harness"]
        cmp = [*hx, "compare", "--by", "sweep", "--baseline", baseline, "--sweep", latest,
               "--results", str(root)]
        # once untimed: the file index and the view cache, as after any earlier command
        answer = subprocess.run([*cmp, "--format", "json"], capture_output=True, text=True,
                                check=True, timeout=3600)
        data = json.loads(answer.stdout)
        cells = sum(len(c["cells"]) for c in data["comparisons"])
        expected = ns.hosts * len(WORKLOADS) * len(MODELS) if not ns.existing else cells
        if cells != expected:
            raise SystemExit(f"compare --by sweep answered {cells} cells, not {expected}")
        result["cells_compared"] = cells
        result["environments"] = len(data["comparisons"])
        result["compare_sweep"] = timed(cmp, ns.repeats)
        result["compare_sweep_json"] = timed([*cmp, "--format", "json"], ns.repeats)
        result["history_one_host"] = timed([*hx, "history", "--host", "node000", "-w",
                                            "cpu_bound", "--results", str(root)], ns.repeats)
        if ns.changes:
            result["changes"] = timed([*hx, "sql", "SELECT count(*) FROM changes", "--results",
                                       str(root)], ns.repeats)
    finally:
        if tmp and not ns.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=1, default=str) if ns.json else render(result))
    return 0


def render(r: dict) -> str:
    d, m = r["data"], r["machine"]

    def row(name: str, t: dict, target: str) -> str:
        walls = sorted(t["wall_s"])
        return (f"| {name} | {t['median_s']:.2f} s ({walls[0]:.2f}-{walls[-1]:.2f}), "
                f"{t['peak_rss_bytes'] / 2**20:.0f} MiB | {target} |")

    return "\n".join([
        f"machine: {m['cores']} cores, Python {m['python']}, {m['date']}, "
        f"load {m['loadavg'][0]:.2f}",
        f"data: {d['rows']:,} measurement rows, {d['sweeps']} sweeps, {d['hosts']} hosts; "
        f"baseline {d['baseline']}, sweep {d['sweep']}: {r['environments']} environments, "
        f"{r['cells_compared']} cells compared",
        "",
        "| command (fresh process) | median (range), peak RSS | target |",
        "|---|---|---|",
        row("`harness compare --by sweep` (table)", r["compare_sweep"], "< 1 s"),
        row("`harness compare --by sweep --format json`", r["compare_sweep_json"], "< 1 s"),
        row("`harness history --host node000 -w cpu_bound`", r["history_one_host"],
            "reported"),
        *([row("`harness sql 'SELECT count(*) FROM changes'`", r["changes"], "reported")]
          if "changes" in r else []),
    ]) + "\n"


if __name__ == "__main__":
    sys.exit(main())
