"""SIGKILL the controller at random moments of a fleet sweep, resume each time.

    python benchmarks/kill_resume.py --kills 20 --seed 1

Starts the loopback sshd fleet (tests/fleet/fleet.py; needs root and sshd), runs
one uninterrupted reference sweep, then the same sweep again, killed with SIGKILL
``--kills`` times at random moments (each run after the first is ``--resume``)
and finally resumed to the end. After every kill it checks that every Parquet
file is readable, that no row is stored twice and that no finished cell was lost
(the set of stored cells only grows); at the end, that the set of cells equals
the reference sweep's. Prints one line per kill and a JSON summary; exit 1 when
any check fails. Too slow for the test suite (a few minutes on two cores).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
SELECTION = ["--profile", "quick", "-w", "cpu_bound", "-w", "net_high_latency", "-w", "disk_io",
             "-m", "threads", "-m", "processes", "-m", "asyncio", "--parallel-same-machine"]


def load_fleet_module() -> Any:
    spec = importlib.util.spec_from_file_location("harness_fleet", ROOT / "tests/fleet/fleet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["harness_fleet"] = module
    spec.loader.exec_module(module)
    return module


def sweep_argv(fleet: Any, results: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "harness", "sweep", "--inventory", str(fleet.inventory),
            "--known-hosts", str(fleet.known_hosts), "--results", str(results),
            *SELECTION, *extra]


def stored_cells(results: Path) -> dict[str, str]:
    """cell_id -> status of every stored cell file, reading each file (all must be whole)."""
    cells: dict[str, str] = {}
    for path in results.glob("measurements/*/*.parquet"):
        table = pq.read_table(path, columns=["cell_id", "status"])
        ids = set(table.column("cell_id").to_pylist())
        assert len(ids) == 1, f"{path}: {len(ids)} cells in one file"
        (cid,) = ids
        assert cid not in cells, f"cell {cid} stored twice"
        cells[cid] = str(table.column("status")[0])
    return cells


def check_warehouse(results: Path) -> dict[str, Any]:
    """Every parquet file readable; no duplicate row; counts."""
    files = list(results.rglob("*.parquet"))
    rows = 0
    keys: set[tuple[Any, ...]] = set()
    for path in files:
        table = pq.read_table(path)
        if path.parts[-3] == "measurements":
            for r in table.select(["env_id", "cell_id", "repeat", "warmup"]).to_pylist():
                key = (r["env_id"], r["cell_id"], r["repeat"], r["warmup"])
                assert key not in keys, f"duplicate row {key}"
                keys.add(key)
            rows += table.num_rows
    temps = [p for p in results.rglob(".*")
             if p.name.startswith(".tmp-") or p.name.endswith(".part")]
    return {"files": len(files), "rows": rows, "temp_files": len(temps)}


def run(fleet: Any, work: Path, kills: int, rng: random.Random, max_delay: float) -> dict[str, Any]:
    ref = work / "reference"
    t0 = time.monotonic()
    proc = subprocess.run(sweep_argv(fleet, ref), capture_output=True, text=True, timeout=1800)
    ref_s = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"reference sweep failed ({proc.returncode}): {proc.stderr[-2000:]}")
    reference = stored_cells(ref)
    print(f"reference: {len(reference)} cells in {ref_s:.0f} s", flush=True)

    results = work / "killed"
    sweep_id: str | None = None
    seen: dict[str, str] = {}
    log: list[dict[str, Any]] = []
    problems: list[str] = []
    for k in range(1, kills + 1):
        extra = ["--resume", sweep_id] if sweep_id else []
        delay = rng.uniform(0.3, max_delay)
        p = subprocess.Popen(sweep_argv(fleet, results, *extra), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(delay)
        finished = p.poll() is not None
        if not finished:
            os.kill(p.pid, signal.SIGKILL)
        p.wait()
        if sweep_id is None:
            ids = [d.name.split("=", 1)[1] for d in results.glob("sweeps/sweep_id=*")]
            sweep_id = ids[0] if ids else None
        try:
            state = check_warehouse(results) if results.exists() else {"files": 0, "rows": 0,
                                                                         "temp_files": 0}
            now = stored_cells(results) if results.exists() else {}
        except (AssertionError, OSError, Exception) as exc:  # report, never stop early
            problems.append(f"kill {k}: {exc}")
            continue
        lost = set(seen) - set(now)
        if lost:
            problems.append(f"kill {k}: {len(lost)} finished cells lost")
        changed = {c for c in seen if c in now and now[c] != seen[c]}
        if changed:
            problems.append(f"kill {k}: {len(changed)} cells changed status")
        entry = {"kill": k, "at_s": round(delay, 2), "killed": not finished,
                 "cells": len(now), "new_cells": len(set(now) - set(seen)), **state}
        log.append(entry)
        print(json.dumps(entry), flush=True)
        seen = now
    final = subprocess.run(sweep_argv(fleet, results, "--resume", sweep_id or "latest"),
                           capture_output=True, text=True, timeout=1800)
    state = check_warehouse(results)
    now = stored_cells(results)
    if final.returncode != 0:
        problems.append(f"final resume exited {final.returncode}: {final.stderr[-500:]}")
    if set(now) != set(reference):
        problems.append(f"final cells differ from the reference: {len(set(now) ^ set(reference))}")
    if {c: s for c, s in now.items()} != reference:
        problems.append("final statuses differ from the reference")
    if set(seen) - set(now):
        problems.append("the final resume lost cells")
    from harness.warehouse import Warehouse

    wh = Warehouse(results)
    status = wh.query("SELECT status FROM sweeps").status.tolist()
    unfinished = len(wh.unfinished_cells(sweep_id)) if sweep_id else -1
    return {"reference_cells": len(reference), "reference_s": round(ref_s, 1),
            "kills": sum(e["killed"] for e in log), "runs": len(log) + 1,
            "final_cells": len(now), "final": state, "sweep_status": status,
            "unfinished_attempts": unfinished,
            "attempt_files": len(list(results.glob("attempts/*/attempt-*.parquet"))),
            "equal_to_reference": set(now) == set(reference) and now == reference,
            "problems": problems, "log": log}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-delay", type=float, default=8.0,
                        help="kill each run after uniform(0.3, this) seconds")
    parser.add_argument("--out", type=Path, help="write the JSON summary here too")
    args = parser.parse_args()
    fleet_module = load_fleet_module()
    reason = fleet_module.sshd_available()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kill-resume-") as tmp:
        work = Path(tmp)
        fleet = fleet_module.up(work / "fleet", 3)
        try:
            summary = run(fleet, work, args.kills, random.Random(args.seed), args.max_delay)
        finally:
            fleet_module.down(work / "fleet")
    text = json.dumps({k: v for k, v in summary.items() if k != "log"}, indent=2)
    print(text)
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if summary["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
