"""Fan-out: a trivial sweep over 1, 4, 8 and 16 loopback sshd hosts, and the per-host
cost of connecting, uploading the agent, starting it and tearing down.

    .venv/bin/python benchmarks/fanout.py [--hosts 1,4,8,16] [--engines ssh,ansible]
        [--login-homes fleet,root] [--rounds 2] [--json]

For each fleet size a fresh test fleet (tests/fleet/fleet.py: one sshd per host on
127.0.0.11+, one port each) is started, then per engine
``harness sweep --parallel-same-machine --profile quick -w empty -m threads
--dimension overhead`` (two cells of 200 empty tasks per interpreter: the sequential
baseline and threads) runs into a temporary warehouse. By default every host runs one
interpreter (the fleet's hosts 2 and 3 carry extra ones; ``--all-pythons`` keeps
them, then 16 hosts run 18 environments), so N hosts are N environments. Reported per
run: the command's wall time (interpreter start, inventory, probe, cells, compaction,
warehouse.duckdb), the sweep's own duration (finished_at - started_at), and the
controller's peak RSS (wait4 rusage of the harness process, so ansible-runner's
children are not in it).

Each curve is measured once per login home of the fleet (``--login-homes``, see
tests/fleet/fleet.py): ``fleet``, the fleet's own home with /etc/skel's ``~/.bashrc``
(returns at once for non-interactive shells, as on a typical Debian host), and
``root``, this machine's root home, whose ``~/.bashrc`` runs ``pyenv init -`` for every
remote command. Rounds interleave the homes (round 1: fleet, root; round 2: ...).

Then, on the largest fleet, per host one after another through harness's own SSH
transport and AgentSession, as a sweep does it: connect (SSH handshake, auth, private
workdir over SFTP), upload of the agent zipapp, agent start (``run -`` until its hello
line, and until its fingerprint), the agent's exit on an empty plan, teardown (close:
workdir removed, connection closed). The fleet is stopped at the end (its daemons by
pid), whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "tests" / "fleet" / "fleet.py"
sys.path.insert(0, str(FLEET.parent))

import fleet as fleet_mod  # noqa: E402

from harness.plan.inventory import load_inventory  # noqa: E402
from harness.remote.bundle import build_agent  # noqa: E402
from harness.remote.session import PROBE_TIMEOUT_S, AgentSession  # noqa: E402
from harness.transport.base import CommandInput  # noqa: E402
from harness.transport.factory import open_transport  # noqa: E402
from harness.warehouse import Warehouse  # noqa: E402

SWEEP = ["--parallel-same-machine", "--profile", "quick", "-w", "empty", "-m", "threads",
         "--dimension", "overhead"]


def one_python_inventory(fleet, path: Path) -> Path:
    """The fleet's inventory with one interpreter (the first) per host."""
    text = fleet.inventory.read_text()
    path.write_text(re.sub(r'harness_pythons="([^" ]+)[^"]*"', r'harness_pythons="\1"', text))
    return path


def run_sweep(fleet, inventory: Path, engine: str, results: Path) -> dict[str, Any]:
    argv = [sys.executable, "-m", "harness", "sweep", "--inventory", str(inventory),
            "--known-hosts", str(fleet.known_hosts), "--results", str(results),
            "--engine", engine, *SWEEP]
    if engine == "ansible":
        argv += ["--forks", "16"]
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        out = log.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed ({proc.returncode}):\n{out[-2000:]}")
    wh = Warehouse(results)
    sid = wh.latest_sweep_id()
    row = wh.query("SELECT epoch(finished_at) - epoch(started_at) AS s, "
                   "(SELECT count(*) FROM cells WHERE sweep_id = ?) AS cells, "
                   "(SELECT count(*) FROM environments WHERE sweep_id = ?) AS envs "
                   "FROM sweeps WHERE sweep_id = ?", [sid, sid, sid]).iloc[0]
    return {"wall_s": wall, "sweep_s": float(row.s), "cells": int(row.cells),
            "envs": int(row.envs), "controller_peak_rss_bytes": usage.ru_maxrss * 1024}


def per_host_costs(inventory: Path, known_hosts: Path, agent: Path) -> list[dict[str, Any]]:
    hosts = load_inventory(inventory)
    out = []
    for host in hosts:
        t0 = time.perf_counter()
        transport = open_transport(host, known_hosts=known_hosts)
        t1 = time.perf_counter()
        session = AgentSession(transport, agent, host.name)
        t2 = time.perf_counter()
        python = host.pythons[0] if getattr(host, "pythons", None) else "python3"
        stdin = CommandInput()
        hello = env = None
        for msg in session.messages(python, ["run", "-"], timeout=PROBE_TIMEOUT_S,
                                    stdin=stdin):
            if hello is None:
                hello = time.perf_counter()
            if msg["type"] == "env" and env is None:
                env = time.perf_counter()
                stdin.write(b'{"protocol": 1, "cells": []}')
                stdin.close()
        t3 = time.perf_counter()
        transport.close()
        t4 = time.perf_counter()
        out.append({"host": host.name, "connect_s": t1 - t0, "upload_s": t2 - t1,
                    "start_to_hello_s": (hello or t3) - t2, "start_to_env_s": (env or t3) - t2,
                    "agent_s": t3 - t2, "teardown_s": t4 - t3,
                    "upload_and_start_s": (hello or t3) - t1})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,4,8,16")
    parser.add_argument("--engines", default="ssh,ansible")
    parser.add_argument("--login-homes", default="fleet,root",
                        help="the fleet's login homes to measure (fleet, root)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--all-pythons", action="store_true",
                        help="keep the fleet's extra interpreters on hosts 2 and 3")
    ns = parser.parse_args()
    sizes = [int(x) for x in ns.hosts.split(",")]
    engines = ns.engines.split(",")
    homes = ns.login_homes.split(",")
    if not all(1 <= n <= 32 for n in sizes) or not 1 <= ns.rounds <= 10:
        raise SystemExit("--hosts each 1..32, --rounds 1..10")
    if not homes or any(h not in fleet_mod.LOGIN_HOMES for h in homes):
        raise SystemExit(f"--login-homes: each one of {', '.join(fleet_mod.LOGIN_HOMES)}")
    result: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")},
        "sweeps": [], "per_host": {}, "loadavg_start": os.getloadavg()[0],
        "one_python_per_host": not ns.all_pythons}
    with tempfile.TemporaryDirectory(prefix="harness-fanout-") as tmp:
        agent = build_agent(Path(tmp) / "agent")
        for n in sizes:
            fleets = {}
            try:
                for home in homes:
                    fdir = Path(tmp) / f"fleet{n}-{home}"
                    fleets[home] = (fdir, fleet_mod.up(fdir, n, home))
                for engine in engines:
                    for r in range(ns.rounds):
                        for home, (fdir, fleet) in fleets.items():
                            inventory = (fleet.inventory if ns.all_pythons else
                                         one_python_inventory(fleet, fdir / "inventory-1py.ini"))
                            res = run_sweep(fleet, inventory, engine,
                                            Path(tmp) / f"r-{n}-{engine}-{home}-{r}")
                            res.update(hosts=n, engine=engine, home=home, round=r,
                                       loadavg=os.getloadavg()[0])
                            result["sweeps"].append(res)
                            print(json.dumps(res), file=sys.stderr)
                if n == max(sizes):
                    for home, (fdir, fleet) in fleets.items():
                        inventory = (fleet.inventory if ns.all_pythons else
                                     one_python_inventory(fleet, fdir / "inventory-1py.ini"))
                        result["per_host"][home] = per_host_costs(
                            inventory, fleet.known_hosts, agent)
            finally:
                for fdir, _ in fleets.values():
                    fleet_mod.down(fdir)
    print(json.dumps(result, indent=1) if ns.json else render(result))
    return 0


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"machine: {m['cores']} cores, Python {m['python']}, {m['date']}, load "
             f"{r['loadavg_start']:.2f} at start; one interpreter per host: "
             f"{r['one_python_per_host']}", "",
             "| engine | login home | hosts | envs | cells | wall (s) | sweep (s) | vs 1 host | "
             "controller peak RSS | load after |", "|---|---|---|---|---|---|---|---|---|---|"]
    by: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for s in r["sweeps"]:
        by.setdefault((s["engine"], s["home"], s["hosts"]), []).append(s)
    for (engine, home, n), runs in sorted(by.items()):
        wall = statistics.median(x["wall_s"] for x in runs)
        sweep = statistics.median(x["sweep_s"] for x in runs)
        one = by.get((engine, home, 1))
        ratio = (f"{wall / statistics.median(x['wall_s'] for x in one):.2f}x" if one else "")
        rss = max(x["controller_peak_rss_bytes"] for x in runs) / 2**20
        walls = ", ".join(f"{x['wall_s']:.2f}" for x in runs)
        load = max(x["loadavg"] for x in runs)
        lines.append(f"| {engine} | {home} | {n} | {runs[0]['envs']} | {runs[0]['cells']} | "
                     f"{wall:.2f} ({walls}) | {sweep:.2f} | {ratio} | {rss:.0f} MiB | "
                     f"{load:.1f} |")
    for home, costs in r["per_host"].items():
        lines += ["", f"per host, one after another (ms), login home {home}: median / max", ""]
        lines += ["| step | median | max |", "|---|---|---|"]
        for key in ("connect_s", "upload_s", "start_to_hello_s", "upload_and_start_s",
                    "start_to_env_s", "agent_s", "teardown_s"):
            xs = [h[key] for h in costs]
            lines.append(f"| {key[:-2]} | {statistics.median(xs) * 1000:.0f} | "
                         f"{max(xs) * 1000:.0f} |")
    return "\n".join(lines)

if __name__ == "__main__":
    sys.exit(main())
