"""Fault injection (issue 14): five faults of real labs, each run ``--runs`` times.

    python benchmarks/faults.py --runs 5 --seed 1
    python benchmarks/faults.py --runs 1 --only killed_controller --json

The faults, each caused for real (the techniques of the integration tests that cover
them), against the installed CLI (``python -m harness`` in subprocesses):

- ``no_sftp``: a quick sweep on a loopback fleet (tests/fleet/fleet.py) of one normal
  host and one whose sshd has no SFTP subsystem; both must be measured (transfer
  ``sftp`` and ``shell``). Time to recover: the sweep's wall time (nothing to recover).
- ``two_controllers``: two sweeps of this machine started together (own results dirs);
  both complete and their timed windows (``extra.window_start_unix`` + ``wall_s``) do not
  overlap. Time to recover: how long the later one waited for the host.
- ``killed_controller``: SIGKILL of the controller at a seeded random moment after its
  agent began; ``harness sweeps`` must show ``abandoned`` (``HARNESS_LEASE_INTERVAL_S``
  0.3), ``--resume`` completes and removes the dead sweep's ``/tmp/harness.*``
  workdirs. Time to recover: kill to the resume's end.
- ``full_disk``: results/ on a 4 MiB tmpfs filled once the first cell is stored; the
  sweep must exit 1 with one ``harness: error:`` line; the filler removed, ``--resume``
  completes. Needs root (mount); skipped with the reason otherwise. Time: fill to the
  resume's end.
- ``damaged_warehouse``: a finished quick sweep's warehouse copied and damaged (rotating:
  truncated Parquet, foreign Parquet, a mismatched .file-index.json, a deleted
  partition); ``harness sql`` answers (no traceback), ``check`` exits 1, ``check
  --repair`` 0, ``--resume`` measures what was quarantined. Time: check to resume's end.

Per run: survived (end state complete and correct), cells lost (expected cells minus the
stored ok cells), duplicate rows ((env_id, cell_id, repeat, warmup) twice over all
measurement files), leftover workdirs (``/tmp/harness.*`` directories new since the
run began whose owner marker names one of the run's sweeps, still there at the end;
unmarked new ones, e.g. of other sweeps on this machine, are counted apart as
``foreign_new``), time to recover. Prints one line per run, then a Markdown table;
exit 1 when any run did not survive. Every wait is bounded; everything started is
stopped by pid; temporary directories are removed; the tmpfs is unmounted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from kill_resume import load_fleet_module  # noqa: E402  (benchmarks/: the fleet, loaded once)

from tests.mounts import fill  # noqa: E402  (the file that fills a file system)

HARNESS = [sys.executable, "-m", "harness"]
QUICK = ["--profile", "quick", "-w", "cpu_bound", "-m", "threads"]
DISK_SWEEP = ["--profile", "quick", "-w", "cpu_bound", "-w", "net_low_latency", "-m", "threads",
              "--parallel-same-machine"]
PY311 = "/root/.pyenv/versions/3.11.7/bin/python3.11"
FAULTS = ("no_sftp", "two_controllers", "killed_controller", "full_disk", "damaged_warehouse")
DAMAGES = ("truncated", "foreign", "index", "deleted_partition")
MARKER = ".harness-owner.json"
FAST_LEASE = {"HARNESS_LEASE_INTERVAL_S": "0.3"}


class Skip(Exception):
    """A fault that cannot be caused here (the reason)."""


def env_with(extra: dict[str, str] | None = None) -> dict[str, str]:
    return dict(os.environ, COLUMNS="250", **(extra or {}))


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=timeout,
                          env=env_with(env), cwd=cwd)


def start(*args: str, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([*HARNESS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env_with(env), cwd=cwd)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
        proc.communicate(timeout=60)


def wait_for(predicate: Callable[[], Any], seconds: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def sweep_ids(results: Path) -> list[str]:
    return sorted(d.name.split("=", 1)[1] for d in results.glob("sweeps/sweep_id=*"))


def workdirs() -> set[Path]:
    return {p for p in Path("/tmp").glob("harness.*") if p.is_dir() and not p.is_symlink()}


def owner_sweep(path: Path) -> str | None:
    try:
        return json.loads((path / MARKER).read_text()).get("sweep")
    except (OSError, ValueError, AttributeError):
        return None


def tail(text: str, n: int = 300) -> str:
    return " ".join(text.strip().splitlines()[-3:])[-n:]


# ------------------------------------------------------------------ the end state


def examine(results: Path, expected: int) -> dict[str, Any]:
    """Every Parquet file outside quarantine/ readable; duplicate rows; ok cells; lost."""
    problems: list[str] = []
    keys: set[tuple[Any, ...]] = set()
    dups = 0
    ok_cells: set[tuple[str, str]] = set()
    windows: list[tuple[float, float]] = []
    for path in sorted(results.rglob("*.parquet")):
        rel = path.relative_to(results)
        if rel.parts[0] == "quarantine":
            continue
        try:
            table = pq.read_table(path)
        except Exception as exc:  # noqa: BLE001 - a damaged file is a finding, not a crash
            problems.append(f"{rel}: unreadable ({type(exc).__name__})")
            continue
        if rel.parts[0] != "measurements":
            continue
        for r in table.select(["env_id", "cell_id", "repeat", "warmup", "status", "extra",
                               "wall_s"]).to_pylist():
            key = (r["env_id"], r["cell_id"], r["repeat"], r["warmup"])
            if key in keys:
                dups += 1
            keys.add(key)
            if r["status"] == "ok":
                ok_cells.add((r["env_id"], r["cell_id"]))
            try:
                startu = json.loads(r["extra"] or "{}").get("window_start_unix")
            except ValueError:
                startu = None
            if startu is not None and r["wall_s"] is not None:
                windows.append((float(startu), float(startu) + float(r["wall_s"])))
    temps = [p for p in results.rglob(".*") if p.is_file()
             and p.name != ".file-index.json" and not p.name.startswith(".views-")]
    if temps:
        problems.append(f"{len(temps)} half-written temp files")
    if dups:
        problems.append(f"{dups} duplicate rows")
    lost = max(0, expected - len(ok_cells))
    if lost:
        problems.append(f"{lost} of {expected} cells not stored ok")
    return {"lost": lost, "dups": dups, "ok_cells": len(ok_cells), "problems": problems,
            "windows": windows}


def sweep_status(results: Path) -> str:
    proc = cli("sql", "SELECT status FROM sweeps", "--results", str(results), "--format", "csv",
               timeout=120)
    return ",".join(proc.stdout.split()[1:]) if proc.returncode == 0 else f"?{proc.returncode}"


# ------------------------------------------------------------------ the faults


def fault_no_sftp(ctx: dict[str, Any], work: Path, rng: random.Random, run: int
                  ) -> dict[str, Any]:
    fleet = ctx["fleet"]
    hosts = {}
    for name in ("fleet1", "fleet2"):
        h = fleet.host(name)
        hosts[name] = {"ansible_host": h.address, "ansible_port": h.port, "ansible_user": "root",
                       "ansible_ssh_private_key_file": str(fleet.client_key),
                       "harness_pythons": PY311}
    inv = work / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    results = work / "results"
    t0 = time.monotonic()
    proc = cli("sweep", "-i", str(inv), "--known-hosts", str(fleet.known_hosts),
               "--results", str(results), *QUICK, env={"HOME": str(work)})
    took = time.monotonic() - t0
    state = examine(results, 4)  # 2 hosts x (sequential, threads)
    problems = list(state["problems"])
    if proc.returncode != 0 or "Traceback" in proc.stderr:
        problems.append(f"sweep exited {proc.returncode}: {tail(proc.stderr)}")
    check = cli("sql", "SELECT host, status, probe->>'transfer' AS t FROM environments "
                "ORDER BY host", "--results", str(results), "--format", "csv", timeout=120)
    rows = check.stdout.split()[1:]
    if rows != ["fleet1,ok,sftp", "fleet2,ok,shell"]:
        problems.append(f"environments {rows}")
    return {"state": state, "problems": problems, "recover_s": took,
            "sweeps": sweep_ids(results)}


def fault_two_controllers(ctx: dict[str, Any], work: Path, rng: random.Random, run: int
                          ) -> dict[str, Any]:
    r1, r2 = work / "r1", work / "r2"
    t_unix = time.time()
    procs = [start("sweep", *QUICK, "--results", str(r), "--host-wait", "600") for r in (r1, r2)]
    try:
        outs = [p.communicate(timeout=900) for p in procs]
    finally:
        for p in procs:
            stop(p)
    problems: list[str] = []
    for i, (p, (_, err)) in enumerate(zip(procs, outs, strict=True), 1):
        if p.returncode != 0 or "Traceback" in err:
            problems.append(f"sweep {i} exited {p.returncode}: {tail(err)}")
    s1, s2 = examine(r1, 2), examine(r2, 2)
    problems += [f"r1: {x}" for x in s1["problems"]] + [f"r2: {x}" for x in s2["problems"]]
    waited = None
    if s1["windows"] and s2["windows"]:
        a = (min(w[0] for w in s1["windows"]), max(w[1] for w in s1["windows"]))
        b = (min(w[0] for w in s2["windows"]), max(w[1] for w in s2["windows"]))
        first, second = sorted([a, b])
        if second[0] < first[1]:
            problems.append(f"timed windows overlap by {first[1] - second[0]:.2f} s")
        waited = second[0] - t_unix
    else:
        problems.append("no timed windows to compare")
    if not any("waiting for localhost: busy with sweep" in err for _, err in outs):
        problems.append("neither sweep said it waited for the host")
    state = {"lost": s1["lost"] + s2["lost"], "dups": s1["dups"] + s2["dups"]}
    return {"state": state, "problems": problems, "recover_s": waited,
            "sweeps": sweep_ids(r1) + sweep_ids(r2)}


def fault_killed_controller(ctx: dict[str, Any], work: Path, rng: random.Random, run: int
                            ) -> dict[str, Any]:
    results = work / "r"
    proc = start("sweep", *QUICK, "--results", str(results), "--host-wait", "600",
                 env=FAST_LEASE)
    problems: list[str] = []
    sid: str | None = None
    try:
        if not wait_for(lambda: sweep_ids(results) or proc.poll() is not None, 120):
            raise RuntimeError("the sweep never began")
        ids = sweep_ids(results)
        sid = ids[0] if ids else None
        # the agent runs (its marked workdir exists), then a random moment more
        wait_for(lambda: any(owner_sweep(p) == sid for p in workdirs())
                 or proc.poll() is not None, 600, 0.05)
        time.sleep(rng.uniform(0.0, 4.0))
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        t_fault = time.monotonic()
    finally:
        stop(proc)
    if not killed:
        problems.append("the sweep ended before the kill (no fault injected)")
    dead = [p for p in workdirs() if owner_sweep(p) == sid]
    listed = ""

    def shows_abandoned() -> bool:
        nonlocal listed
        out = cli("sweeps", "--results", str(results), "--format", "csv", timeout=60)
        listed = out.stdout
        return f"{sid},abandoned" in out.stdout

    if killed and not wait_for(shows_abandoned, 30, 0.5):
        problems.append(f"harness sweeps never showed abandoned: {tail(listed)}")
    # the orphaned agent notices its controller is gone and ends (bounded)
    agents = []
    for p in dead:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            agents.append(int(json.loads((p / MARKER).read_text())["agent_pid"]))
    wait_for(lambda: not any(Path(f"/proc/{a}").exists() for a in agents), 180, 0.5)
    resumed = cli("sweep", *QUICK, "--resume", sid or "latest", "--results", str(results),
                  "--host-wait", "600", env=FAST_LEASE)
    took = time.monotonic() - t_fault
    if resumed.returncode != 0 or "Traceback" in resumed.stderr:
        problems.append(f"resume exited {resumed.returncode}: {tail(resumed.stderr)}")
    still = [p for p in dead if p.exists()]
    if still:
        problems.append(f"dead workdirs not removed: {[str(p) for p in still]}")
    status = sweep_status(results)
    if status != "complete":
        problems.append(f"sweep status {status}")
    state = examine(results, 2)
    return {"state": state, "problems": problems + state["problems"], "recover_s": took,
            "sweeps": sweep_ids(results)}


def fault_full_disk(ctx: dict[str, Any], work: Path, rng: random.Random, run: int
                    ) -> dict[str, Any]:
    if os.geteuid() != 0:
        raise Skip("mounting a small tmpfs needs root")
    mount = work / "fs"
    mount.mkdir()
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mount)],
                       capture_output=True, text=True, timeout=30)
    if m.returncode != 0:
        raise Skip(f"cannot mount a tmpfs: {m.stderr.strip()}")
    try:
        return _full_disk(mount)
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True,
                          timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def _full_disk(mount: Path) -> dict[str, Any]:
    results = mount / "results"
    problems: list[str] = []
    proc = start("sweep", *DISK_SWEEP, "--results", str(results), "--host-wait", "600",
                 cwd=mount)
    filler = None
    try:
        wait_for(lambda: any((results / "measurements").glob("sweep_id=*/*.parquet"))
                 or proc.poll() is not None, 900, 0.05)
        injected = proc.poll() is None
        t_fault = time.monotonic()
        if injected:
            filler = fill(mount)
        _, err = proc.communicate(timeout=600)
    finally:
        stop(proc)
    if not injected:
        problems.append("the sweep ended before the disk was filled (no fault injected)")
    else:
        errors = [ln for ln in err.splitlines() if ln.startswith("harness: error:")]
        if proc.returncode != 1 or "Traceback" in err or len(errors) != 1 \
                or "no space left on device" not in errors[0]:
            problems.append(f"full disk: exit {proc.returncode}, {tail(err)}")
    if filler is not None:
        filler.unlink()
    resumed = cli("sweep", *DISK_SWEEP, "--resume", "latest", "--results", str(results),
                  "--host-wait", "600", cwd=mount)
    took = time.monotonic() - t_fault
    if resumed.returncode != 0 or "Traceback" in resumed.stderr:
        problems.append(f"resume exited {resumed.returncode}: {tail(resumed.stderr)}")
    state = examine(results, 4)
    return {"state": state, "problems": problems + state["problems"], "recover_s": took,
            "sweeps": sweep_ids(results)}


def _damage(results: Path, kind: str) -> bool:
    """Damage the warehouse; whether readers must warn (a data file is bad)."""
    if kind == "truncated":
        (part,) = results.glob("measurements/sweep_id=*/*.parquet")
        data = part.read_bytes()
        part.write_bytes(data[:len(data) // 2])
        return True
    if kind == "foreign":
        (env_dir,) = results.glob("environments/sweep_id=*")
        pq.write_table(pa.table({"x": [1, 2]}), env_dir / "env-foreign.parquet")
        return True
    if kind == "deleted_partition":
        (env_dir,) = results.glob("environments/sweep_id=*")
        shutil.rmtree(env_dir)
        return False
    cli("sql", "SELECT 1", "--results", str(results), timeout=120)  # writes the index
    index = results / ".file-index.json"
    data = json.loads(index.read_text())
    (sweep_file,) = [k for k in data["files"] if k.startswith("sweeps/")]
    data["files"][sweep_file][3] = 7
    data["files"]["measurements/sweep_id=s9/cell-x-y.parquet"] = [1, 2, 3, 4, "a", 2, 2, None]
    index.write_text(json.dumps(data))
    return False


def fault_damaged_warehouse(ctx: dict[str, Any], work: Path, rng: random.Random, run: int
                            ) -> dict[str, Any]:
    base: Path = ctx["base"]
    kind = DAMAGES[(ctx["damage_offset"] + run) % len(DAMAGES)]
    results = work / "results"
    shutil.copytree(base, results)
    warns = _damage(results, kind)
    problems: list[str] = []
    t_fault = time.monotonic()
    sql = cli("sql", "SELECT count(*) AS n FROM measurements", "--results", str(results),
              "--format", "csv", timeout=120)
    if sql.returncode != 0 or "Traceback" in sql.stderr:
        problems.append(f"sql exited {sql.returncode}: {tail(sql.stderr)}")
    if warns and "harness: warning:" not in sql.stderr:
        problems.append("sql gave no warning about the bad file")
    found = cli("check", "--results", str(results), timeout=120)
    if found.returncode != 1:
        problems.append(f"check exited {found.returncode}, not 1")
    repaired = cli("check", "--repair", "--results", str(results), timeout=120)
    if repaired.returncode != 0:
        problems.append(f"check --repair exited {repaired.returncode}: {tail(repaired.stdout)}")
    resumed = cli("sweep", *QUICK, "--parallel-same-machine", "--resume", "latest",
                  "--results", str(results), "--host-wait", "600")
    if resumed.returncode != 0 or "Traceback" in resumed.stderr:
        problems.append(f"resume exited {resumed.returncode}: {tail(resumed.stderr)}")
    took = time.monotonic() - t_fault
    again = cli("check", "--results", str(results), timeout=120)
    if again.returncode != 0:
        problems.append(f"check after the resume exited {again.returncode}: "
                        f"{tail(again.stdout)}")
    state = examine(results, 2)
    return {"state": state, "problems": problems + state["problems"], "recover_s": took,
            "sweeps": sweep_ids(results), "damage": kind}


RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "no_sftp": fault_no_sftp, "two_controllers": fault_two_controllers,
    "killed_controller": fault_killed_controller, "full_disk": fault_full_disk,
    "damaged_warehouse": fault_damaged_warehouse}


# ------------------------------------------------------------------ driving


def one_run(fault: str, ctx: dict[str, Any], top: Path, rng: random.Random, run: int
            ) -> dict[str, Any]:
    before = workdirs()
    work = Path(tempfile.mkdtemp(prefix=f"{fault}-{run}-", dir=top))
    t0 = time.monotonic()
    try:
        out = RUNNERS[fault](ctx, work, rng, run)
    except Skip:
        raise
    except Exception as exc:  # noqa: BLE001 - one run's failure is reported, not fatal
        out = {"state": {"lost": None, "dups": None}, "recover_s": None, "sweeps": [],
               "problems": [f"{type(exc).__name__}: {exc}"]}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    new = workdirs() - before
    ours = set(out.get("sweeps") or [])
    leftover = sorted(str(p) for p in new if owner_sweep(p) in ours)
    problems = list(out["problems"])
    if leftover:
        problems.append(f"leftover workdirs {leftover}")
    rec = {"fault": fault, "run": run, "survived": not problems,
           "cells_lost": out["state"]["lost"], "duplicate_rows": out["state"]["dups"],
           "leftover_workdirs": len(leftover), "foreign_new": len(new) - len(leftover),
           "recover_s": None if out["recover_s"] is None else round(out["recover_s"], 2),
           "wall_s": round(time.monotonic() - t0, 1), "problems": problems}
    if "damage" in out:
        rec["damage"] = out["damage"]
    return rec


def table(records: list[dict[str, Any]], skipped: dict[str, str]) -> str:
    lines = ["| fault | runs | survived | cells lost | duplicate rows | leftover workdirs "
             "| time to recover s (median, max) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for fault in FAULTS:
        recs = [r for r in records if r["fault"] == fault]
        if fault in skipped:
            lines.append(f"| {fault} | 0 | skipped: {skipped[fault]} | | | | |")
        if not recs:
            continue
        times = [r["recover_s"] for r in recs if r["recover_s"] is not None]
        when = f"{statistics.median(times):.1f}, {max(times):.1f}" if times else "-"

        def total(key: str, recs: list[dict[str, Any]] = recs) -> str:
            vals = [r[key] for r in recs]
            return "?" if any(v is None for v in vals) else str(sum(vals))

        lines.append(f"| {fault} | {len(recs)} | {sum(r['survived'] for r in recs)}/{len(recs)} "
                     f"| {total('cells_lost')} | {total('duplicate_rows')} "
                     f"| {total('leftover_workdirs')} | {when} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", action="append", choices=FAULTS, help="repeatable")
    parser.add_argument("--json", action="store_true", help="print the records as JSON too")
    args = parser.parse_args()
    if not 1 <= args.runs <= 100:
        parser.error("--runs must be 1..100")
    faults = [f for f in FAULTS if not args.only or f in args.only]
    rng = random.Random(args.seed)
    records: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    fleet_module = load_fleet_module()
    top = Path(tempfile.mkdtemp(prefix="harness-faults-"))
    ctx: dict[str, Any] = {"damage_offset": rng.randrange(len(DAMAGES))}
    fleet_dir = top / "fleet"
    fleet_up = False
    try:
        for fault in faults:
            if fault == "no_sftp":
                reason = fleet_module.sshd_available()
                if reason:
                    skipped[fault] = f"no sshd fleet: {reason}"
                    continue
                ctx["fleet"] = fleet_module.up(fleet_dir, 2, no_sftp=("fleet2",))
                fleet_up = True
            if fault == "damaged_warehouse":
                base = top / "base" / "results"
                made = cli("sweep", *QUICK, "--parallel-same-machine", "--results", str(base),
                           "--host-wait", "600")
                if made.returncode != 0:
                    skipped[fault] = f"the base sweep failed: {tail(made.stderr)}"
                    continue
                ctx["base"] = base
            for run in range(args.runs):
                try:
                    rec = one_run(fault, ctx, top, rng, run)
                except Skip as why:
                    skipped[fault] = str(why)
                    print(f"{fault}: skipped: {why}", flush=True)
                    break
                records.append(rec)
                print(json.dumps(rec), flush=True)
            if fault == "no_sftp" and fleet_up:
                fleet_module.down(fleet_dir)
                fleet_up = False
    finally:
        if fleet_up:
            fleet_module.down(fleet_dir)
        shutil.rmtree(top, ignore_errors=True)
    print(f"\nfaults.py --runs {args.runs} --seed {args.seed} on {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(table(records, skipped))
    if args.json:
        print(json.dumps({"records": records, "skipped": skipped}, indent=2))
    return 0 if records and all(r["survived"] for r in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
