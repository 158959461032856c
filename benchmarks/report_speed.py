"""How long ``harness report`` takes, end to end, as a user runs it (issue 17).

    .venv/bin/python benchmarks/report_speed.py --results DIR [--runs 5] [--json]
    .venv/bin/python benchmarks/report_speed.py --make-sweep DIR      # the 3-host sweep first
    .venv/bin/python benchmarks/report_speed.py --scale [--rows 10000000] [--profiles 20]
    .venv/bin/python benchmarks/report_speed.py --results DIR --compare OTHER_CHECKOUT

Each run is a fresh ``harness report --out FILE.html`` process (interpreter start,
imports, views, queries, figures, writing), timed from fork to exit, with the child's
peak RSS from ``wait4``. Runs: median and range. Two kinds of run:

* ``cold``: the report's figure cache (RESULTS/.report-cache/) removed before the run:
  the first report after a sweep;
* ``warm``: the cache left as the previous run wrote it: a report asked again.

``--make-sweep DIR`` first starts the 3-host loopback sshd fleet
(tests/fleet/fleet.py), runs the sweep the issue measured (``--profile quick`` with the
dimensions workers, task_duration and payload; 5 host x interpreter environments) into
DIR, and stops the fleet.

Everything runs holding ``--lock`` (default /tmp/harness-cpu.lock, exclusive flock, as
``flock -x``; ``--lock ''``: none), so no other measurement overlaps.

``--scale`` builds a warehouse with warehouse_scale.py's synthesis (``--rows`` rows over
``--sweeps`` sweeps of ``--hosts`` hosts spread over ``--profiles`` hardware profiles)
and times the report of its middle sweep (``--profiles`` profile sections). ``--root DIR
--keep`` keeps it; ``--existing --root DIR`` reuses one.

``--compare CHECKOUT``: the same runs with another checkout's harness (its
``.venv/bin/python -m harness``), interleaved A B A B so that the VM's changes of speed
fall on both alike; both medians printed.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ".report-cache"
DIMENSIONS = ("workers", "task_duration", "payload")
LOCK = "/tmp/harness-cpu.lock"


def run_once(python: str, results: Path, out: Path, extra: list[str], cwd: Path) -> dict:
    """One ``harness report`` process: wall seconds and peak RSS."""
    argv = [python, "-m", "harness", "report", "--results", str(results), "--out", str(out),
            *extra]
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            log.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed ({code}): "
                             f"{log.read().decode(errors='replace')[-1500:]}")
    return {"wall_s": wall, "peak_rss_bytes": usage.ru_maxrss * 1024}


def summary(runs: list[dict]) -> dict:
    walls = [r["wall_s"] for r in runs]
    return {"runs": len(walls), "median_s": median(walls), "min_s": min(walls),
            "max_s": max(walls), "wall_s": walls,
            "peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs)}


def time_report(results: Path, runs: int, extra: list[str],
                checkouts: dict[str, Path]) -> dict:
    """A cold then a warm run of each checkout in turn, ``runs`` times (A A' B B' ...)."""
    out_dir = Path(tempfile.mkdtemp(prefix="report-speed-"))
    got: dict[str, dict[str, list[dict]]] = {name: {"cold": [], "warm": []}
                                             for name in checkouts}
    try:
        for _ in range(runs):
            for name, checkout in checkouts.items():
                for kind in ("cold", "warm"):  # warm: right after its own cold run
                    if kind == "cold":
                        shutil.rmtree(results / CACHE_DIR, ignore_errors=True)
                    python = str(checkout / ".venv" / "bin" / "python")
                    got[name][kind].append(run_once(python, results,
                                                    out_dir / f"{name}.html", extra,
                                                    checkout))
        sizes = {name: (out_dir / f"{name}.html").stat().st_size for name in checkouts}
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return {name: {"cold": summary(k["cold"]), "warm": summary(k["warm"]),
                   "html_bytes": sizes[name]} for name, k in got.items()}


def make_sweep(results: Path) -> float:
    """The issue's sweep: the 3-host loopback fleet, quick profile, three dimensions."""
    if results.exists() and any(results.iterdir()):
        raise SystemExit(f"--make-sweep: {results} is not empty")
    fleet_dir = Path(tempfile.mkdtemp(prefix="report-speed-fleet-"))
    fleet = [sys.executable, str(ROOT / "tests" / "fleet" / "fleet.py")]
    # the fleet's and the sweep's own lines go to stderr: stdout is the result (--json)
    subprocess.run([*fleet, "up", "--hosts", "3", "--dir", str(fleet_dir)], check=True,
                   stdout=sys.stderr)
    try:
        argv = [sys.executable, "-m", "harness", "sweep",
                "--inventory", str(fleet_dir / "inventory.ini"),
                "--known-hosts", str(fleet_dir / "known_hosts"), "--profile", "quick",
                "--results", str(results)]
        for d in DIMENSIONS:
            argv += ["--dimension", d]
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, cwd=ROOT, stdout=sys.stderr)
        return time.perf_counter() - t0
    finally:
        subprocess.run([*fleet, "down", "--dir", str(fleet_dir)], check=False,
                       stdout=sys.stderr)
        shutil.rmtree(fleet_dir, ignore_errors=True)


def build_scale(root: Path, rows: int, sweeps: int, hosts: int, profiles: int) -> str:
    """warehouse_scale.py's synthetic warehouse; the middle sweep's id."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import warehouse_scale as ws  # noqa: PLC0415  (a sibling script, not a package)

    synth = ws.Synth(hosts, rows // sweeps, profiles=profiles)
    ids = ws.sweep_ids(sweeps)
    ws.ingest(root, synth, ids)
    return ids[len(ids) // 2]


def render(r: dict) -> str:
    lines = [f"# harness report, end to end ({r['machine']['date']}, "
             f"{r['machine']['cores']} cores, Python {r['machine']['python']}, "
             f"load {r['machine']['loadavg'][0]:.2f})", "",
             f"results: {r['results']} {r.get('what', '')}", "",
             "| checkout | run | runs | median s | range s | peak RSS MiB | HTML bytes |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, k in r["report"].items():
        for kind in ("cold", "warm"):
            s = k[kind]
            lines.append(f"| {name} | {kind} | {s['runs']} | {s['median_s']:.2f} | "
                         f"{s['min_s']:.2f}-{s['max_s']:.2f} | "
                         f"{s['peak_rss_bytes'] / 2**20:.0f} | {k['html_bytes']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="the warehouse to report on")
    parser.add_argument("--make-sweep", type=Path, metavar="DIR",
                        help="run the 3-host fleet sweep into DIR first, then time it")
    parser.add_argument("--scale", action="store_true",
                        help="a warehouse_scale.py warehouse (--rows, --profiles)")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--sweeps", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--profiles", type=int, default=20)
    parser.add_argument("--root", type=Path, help="with --scale: where to build it")
    parser.add_argument("--keep", action="store_true", help="with --scale: keep the warehouse")
    parser.add_argument("--existing", action="store_true",
                        help="with --scale --root: reuse a warehouse built with --keep")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compare", type=Path, metavar="CHECKOUT",
                        help="another checkout to time interleaved with this one")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--lock", default=LOCK, help="hold this flock while measuring")
    ns = parser.parse_args()
    if sum(x is not None and x is not False for x in (ns.results, ns.make_sweep, ns.scale)) != 1:
        raise SystemExit("one of --results DIR, --make-sweep DIR, --scale")
    checkouts = {"this": ROOT}
    if ns.compare:
        checkouts["other"] = ns.compare.resolve()
    result: dict = {"machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                                "loadavg": os.getloadavg()}}
    extra: list[str] = []
    tmp = None
    with contextlib.ExitStack() as stack:
        if ns.lock:
            lock = stack.enter_context(open(ns.lock, "a"))  # noqa: SIM115
            fcntl.flock(lock, fcntl.LOCK_EX)
        return _measure(ns, checkouts, result, extra, tmp)


def _measure(ns: argparse.Namespace, checkouts: dict[str, Path], result: dict,
             extra: list[str], tmp: Path | None) -> int:
    try:
        if ns.make_sweep:
            results = ns.make_sweep.resolve()
            result["sweep_s"] = make_sweep(results)
            result["what"] = "(3-host fleet, quick, " + ", ".join(DIMENSIONS) + ")"
        elif ns.scale:
            if ns.root is None:
                tmp = Path(tempfile.mkdtemp(prefix="report-speed-scale-"))
                results = tmp / "results"
            else:
                results = ns.root.resolve()
            if ns.existing:
                ids = sorted(p.name.split("=", 1)[1] for p in (results / "sweeps").iterdir())
                middle = ids[len(ids) // 2]
            else:
                t0 = time.perf_counter()
                middle = build_scale(results, ns.rows, ns.sweeps, ns.hosts, ns.profiles)
                result["build_s"] = time.perf_counter() - t0
            extra = ["--sweep", middle]
            result["what"] = (f"({ns.rows:,} rows, {ns.sweeps} sweeps x {ns.hosts} hosts, "
                              f"{ns.profiles} profiles; report of sweep {middle})")
        else:
            results = ns.results.resolve()
        result["results"] = str(results)
        result["report"] = time_report(results, ns.runs, extra, checkouts)
    finally:
        if tmp and not ns.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=1) if ns.json else render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
