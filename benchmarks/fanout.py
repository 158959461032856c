"""Fan-out curves: a trivial sweep over 1, 4, 16 and 64 loopback sshd hosts with both
engines, and where the time goes (controller CPU, remote CPU, waiting).

    .venv/bin/python benchmarks/fanout.py [--hosts 1,4,16,64] [--engines ssh,ansible]
        [--rounds 3] [--login-homes fleet] [--steps 8] [--json]

Run it with the machine alone (``flock -x /tmp/harness-cpu.lock``); a smoke run is
``--hosts 1,4 --rounds 1``.

One test fleet per size (tests/fleet/fleet.py: one sshd per host on 127.0.0.11+, a port
each) is started once, before the first round, and serves both engines; all of them
are stopped (their daemons, by pid) at the end, whatever happens. Every run is
``harness sweep --parallel-same-machine --profile quick -w empty -m threads --dimension
overhead`` (two cells of 200 empty tasks per interpreter: the sequential baseline and
threads) into a fresh warehouse, with one interpreter per host (``one_python_inventory``;
``--all-pythons`` keeps the fleet's extra ones on hosts 2 and 3), so N hosts are N
environments. The ansible engine runs with ``--forks`` = hosts, at most 64.

Rounds interleave engines and sizes (round 1: sizes up, engines in the given order;
round 2: sizes down, engines reversed; ...), so this VM's CPU speed changes (it flips
between two speeds about 1.7x apart for seconds at a time) hit every curve alike. Per
engine and size the table gives the median over the rounds, and N/1 is the ratio of
the medians with the range of the rounds' own ratios (round r's N hosts / round r's 1
host).

Measured per run (the harness command started by this script, until it exits):

- wall: the command's wall time (interpreter start, inventory, probe, cells,
  compaction, warehouse.duckdb); sweep: finished_at - started_at as stored. A run
  that waited for another sweep holding this machine's host lock is counted below the
  table (its wall time includes the wait).
- controller CPU: user + sys of the harness process and of every descendant it (or
  they) reaped, from ``wait4`` of the harness process: ansible-runner's
  ansible-playbook, its forks and their ssh clients are in it. Not in it: ssh control
  masters (the ansible engine's ControlPersist ssh processes detach from the tree;
  they count under "other").
- remote CPU: the fleet's sshd listeners' reaped children (cutime + cstime in
  /proc/<pid>/stat, summed over the hosts, after minus before): every session sshd and
  what ran under it (shell, agent, workers). After the command exits, the script waits
  (at most 15 s; ``settle_s`` in --json) until no listener has a child left, so every
  session is counted; the machine's busy CPU below is read after that wait too.
- other CPU: the machine's busy CPU over the run (/proc/stat: user, nice, system, irq,
  softirq, steal) minus controller, remote and this script's own CPU (its RSS
  sampler): the ssh control masters, the listeners themselves, the kernel's loopback
  networking, and anything else running on the machine.
- waiting: wall - machine busy CPU / cores, the wall time the cores could not be kept
  busy (timeouts, latency, one step waiting for another); it is the part of the wall
  time that more CPU would not shorten. Busy CPU / cores is the rest.
- peak memory: ``largest`` is the kernel's ru_maxrss from ``wait4`` (the largest single
  process: the harness process or one of its reaped descendants); ``tree`` is the peak
  of the summed RSS of the harness process and all its live descendants, sampled every
  50 ms from /proc (as psutil would, at half its cost: ansible's forks count together;
  shared pages are counted in each process, so it is an upper bound); ``PSS tree`` is
  the tree's summed proportional set size (``/proc/<pid>/smaps_rollup``, read at each
  new RSS peak), which counts a page shared by N processes 1/N in each. The sampler's CPU
  (a few % of one core) is this script's, and is left out of every share.

A second table spreads the growth over the added hosts: (X(N) - X(1)) / (N - 1) for
each figure above, from the medians. ``--steps K`` (default 8, 0 for none) adds, on the
largest fleet, per host one after another for its first K hosts through harness's own
SSH transport and AgentSession: connect (handshake, auth, private workdir), upload of
the agent zipapp, agent start (until its hello line, and until its fingerprint), the
agent's exit on an empty plan, teardown (workdir removed, connection closed).

``--login-homes fleet,root`` measures every curve on both login homes of the fleet
(see tests/fleet/fleet.py; ``root`` runs this machine's root ~/.bashrc with ``pyenv
init -`` for every remote command).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "tests" / "fleet" / "fleet.py"
sys.path.insert(0, str(FLEET.parent))

import fleet as fleet_mod  # noqa: E402

from harness.agent.protocol import PROTOCOL_VERSION  # noqa: E402
from harness.plan.inventory import load_inventory  # noqa: E402
from harness.remote.bundle import build_agent  # noqa: E402
from harness.remote.session import PROBE_TIMEOUT_S, AgentSession  # noqa: E402
from harness.transport.base import CommandInput  # noqa: E402
from harness.transport.factory import open_transport  # noqa: E402
from harness.warehouse import Warehouse  # noqa: E402

SWEEP = ["--parallel-same-machine", "--profile", "quick", "-w", "empty", "-m", "threads",
         "--dimension", "overhead", "--host-wait", "600"]
MAX_FORKS = 64
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_S = 0.05
SETTLE_S = 15.0


def machine_busy_s() -> float:
    """The machine's busy CPU seconds since boot (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


def reaped_children_s(pids: list[int]) -> float:
    """Summed cutime + cstime of ``pids`` (their reaped descendants' CPU), seconds."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[13]) + int(fields[14])
    return total / TICK


def processes() -> dict[int, tuple[int, int]]:
    """Every process: pid -> (ppid, RSS bytes), one read of /proc/<pid>/stat each (about
    1.5 ms for the ~100 processes here; psutil's tree walk costs twice that)."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        found[int(name)] = (int(fields[1]), int(fields[21]) * PAGE)
    return found


def wait_sessions_closed(pids: list[int], seconds: float) -> bool:
    """Wait until none of ``pids`` has a child process (every session reaped)."""
    listeners = set(pids)
    deadline = time.monotonic() + seconds
    while any(ppid in listeners for ppid, _ in processes().values()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def pss(pid: int) -> int:
    """A process's proportional set size in bytes (its shared pages divided among their
    users, so a tree's sum counts a forked parent's pages once); 0 when gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class TreeRss:
    """Samples the summed RSS of a process and its live descendants every SAMPLE_S."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.peak_processes = 0
        self.peak_pss = 0  # the tree's proportional set size, read at each new RSS peak
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            table = processes()
            children: dict[int, list[int]] = {}
            for pid, (ppid, _) in table.items():
                children.setdefault(ppid, []).append(pid)
            tree, todo = [], [self.pid] if self.pid in table else []
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo.extend(children.get(pid, []))
            total = sum(table[pid][1] for pid in tree)
            if total > self.peak:
                self.peak, self.peak_processes = total, len(tree)
                self.peak_pss = max(self.peak_pss, sum(pss(pid) for pid in tree))
            self._stop.wait(SAMPLE_S)


def run_sweep(fleet: Any, inventory: Path, engine: str, results: Path) -> dict[str, Any]:
    """One harness sweep over ``fleet``: wall, CPU shares and peak RSS (module docstring)."""
    n = len(fleet.hosts)
    argv = [sys.executable, "-m", "harness", "sweep", "--inventory", str(inventory),
            "--known-hosts", str(fleet.known_hosts), "--results", str(results),
            "--engine", engine, *SWEEP]
    if engine == "ansible":
        argv += ["--forks", str(min(n, MAX_FORKS))]
    listeners = [pid for h in fleet.hosts if (pid := h.pid()) is not None]
    if len(listeners) != n:
        raise SystemExit(f"fleet of {n}: only {len(listeners)} sshd listeners running")
    remote0, busy0, self0 = reaped_children_s(listeners), machine_busy_s(), os.times()
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        with TreeRss(proc.pid) as tree:
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        out = log.read().decode(errors="replace")
    t1 = time.perf_counter()
    settled = wait_sessions_closed(listeners, SETTLE_S)
    settle = time.perf_counter() - t1
    remote = reaped_children_s(listeners) - remote0
    busy = machine_busy_s() - busy0
    self1 = os.times()
    own = (self1.user - self0.user) + (self1.system - self0.system)
    controller = usage.ru_utime + usage.ru_stime
    res: dict[str, Any] = {
        "ok": proc.returncode == 0, "rc": proc.returncode, "wall_s": wall,
        "controller_cpu_s": controller, "remote_cpu_s": remote,
        "other_cpu_s": busy - controller - remote - own, "sampler_cpu_s": own,
        "busy_cpu_s": busy, "waiting_s": wall - busy / (os.cpu_count() or 1),
        "sessions_settled": settled, "settle_s": settle,
        "largest_rss_bytes": usage.ru_maxrss * 1024,
        "tree_peak_rss_bytes": tree.peak, "tree_peak_processes": tree.peak_processes,
        "tree_peak_pss_bytes": tree.peak_pss,
        "forks": min(n, MAX_FORKS) if engine == "ansible" else None,
        # another sweep held this machine's host lock for a while: wall includes the wait
        "waited_for_host": "waiting for " in out}
    if proc.returncode != 0:
        res["error"] = out[-2000:]
        return res
    wh = Warehouse(results)
    sid = wh.latest_sweep_id()
    row = wh.query("SELECT epoch(finished_at) - epoch(started_at) AS s, "
                   "(SELECT count(*) FROM cells WHERE sweep_id = ?) AS cells, "
                   "(SELECT count(*) FROM environments WHERE sweep_id = ? AND status = 'ok') "
                   "AS envs FROM sweeps WHERE sweep_id = ?", [sid, sid, sid]).iloc[0]
    res.update(sweep_s=float(row.s), cells=int(row.cells), envs=int(row.envs))
    return res


def per_host_costs(inventory: Path, known_hosts: Path, agent: Path,
                   limit: int) -> list[dict[str, Any]]:
    """Per host, one after another, the steps of an agent's life (module docstring)."""
    hosts = load_inventory(inventory)[:limit]
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
                stdin.write(json.dumps({"protocol": PROTOCOL_VERSION, "cells": []}).encode())
                stdin.close()
        t3 = time.perf_counter()
        transport.close()
        t4 = time.perf_counter()
        out.append({"host": host.name, "connect_s": t1 - t0, "upload_s": t2 - t1,
                    "start_to_hello_s": (hello or t3) - t2, "start_to_env_s": (env or t3) - t2,
                    "agent_s": t3 - t2, "teardown_s": t4 - t3,
                    "upload_and_start_s": (hello or t3) - t1})
    return out


def round_order(sizes: list[int], engines: list[str], r: int) -> list[tuple[int, str]]:
    """Round r's runs: sizes up on even rounds, down on odd ones; engines rotated."""
    order = sizes if r % 2 == 0 else sizes[::-1]
    shift = r % len(engines)
    turn = engines[shift:] + engines[:shift]
    return [(n, engine) for n in order for engine in turn]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,4,16,64")
    parser.add_argument("--engines", default="ssh,ansible")
    parser.add_argument("--login-homes", default="fleet",
                        help="the fleet's login homes to measure (fleet, root)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8,
                        help="per-step costs on the first K hosts of the largest fleet")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--all-pythons", action="store_true",
                        help="keep the fleet's extra interpreters on hosts 2 and 3")
    ns = parser.parse_args()
    ns.sizes = sorted({int(x) for x in ns.hosts.split(",")})
    ns.engine_list = ns.engines.split(",")
    ns.homes = ns.login_homes.split(",")
    if not all(1 <= n <= 256 for n in ns.sizes) or not 1 <= ns.rounds <= 10:
        raise SystemExit("--hosts each 1..256, --rounds 1..10")
    if any(e not in ("ssh", "ansible") for e in ns.engine_list):
        raise SystemExit("--engines: ssh, ansible")
    if not ns.homes or any(h not in fleet_mod.LOGIN_HOMES for h in ns.homes):
        raise SystemExit(f"--login-homes: each one of {', '.join(fleet_mod.LOGIN_HOMES)}")
    return ns


def main() -> int:
    ns = parse_args()
    result: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")},
        "sweeps": [], "per_host": {}, "loadavg_start": os.getloadavg()[0],
        "one_python_per_host": not ns.all_pythons, "rounds": ns.rounds}
    with tempfile.TemporaryDirectory(prefix="harness-fanout-") as tmp:
        fleets: dict[tuple[int, str], tuple[Any, Path]] = {}
        try:
            for n in ns.sizes:
                for home in ns.homes:
                    fdir = Path(tmp) / f"fleet{n}-{home}"
                    fleet = fleet_mod.up(fdir, n, home)
                    inventory = (fleet.inventory if ns.all_pythons else
                                 fleet_mod.one_python_inventory(fleet, fdir / "one-python.ini"))
                    fleets[(n, home)] = (fleet, inventory)
            for r in range(ns.rounds):
                for n, engine in round_order(ns.sizes, ns.engine_list, r):
                    for home in ns.homes:
                        fleet, inventory = fleets[(n, home)]
                        res = run_sweep(fleet, inventory, engine,
                                        Path(tmp) / f"r-{n}-{engine}-{home}-{r}")
                        res.update(hosts=n, engine=engine, home=home, round=r,
                                   loadavg=os.getloadavg()[0])
                        result["sweeps"].append(res)
                        print(json.dumps({k: v for k, v in res.items() if k != "error"}),
                              file=sys.stderr)
                        if not res["ok"]:
                            print(f"{engine} on {n} hosts failed (rc {res['rc']}):\n"
                                  f"{res['error'][-800:]}", file=sys.stderr)
            if ns.steps > 0:
                agent = build_agent(Path(tmp) / "agent")
                for home in ns.homes:
                    fleet, inventory = fleets[(max(ns.sizes), home)]
                    result["per_host"][home] = per_host_costs(
                        inventory, fleet.known_hosts, agent, ns.steps)
        finally:
            for fleet, _ in fleets.values():
                fleet_mod.down(fleet.dir)
    print(json.dumps(result, indent=1) if ns.json else render(result))
    return 0


FIGURES = ("controller_cpu_s", "remote_cpu_s", "other_cpu_s", "waiting_s")


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(x[key] for x in runs)


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"machine: {m['cores']} cores, Python {m['python']}, {m['date']}, load "
             f"{r['loadavg_start']:.2f} at start; one interpreter per host: "
             f"{r['one_python_per_host']}; {r['rounds']} round(s), medians", "",
             "| engine | home | hosts | forks | envs | cells | wall (s) | range | N/1 | "
             "rounds' N/1 | sweep (s) | controller CPU (s) | remote CPU (s) | other CPU (s) | "
             "waiting (s) | peak RSS largest | peak RSS tree (procs) | PSS tree | failed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    by: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    failed: dict[tuple[str, str, int], int] = {}
    for s in r["sweeps"]:
        key = (s["engine"], s["home"], s["hosts"])
        if s["ok"]:
            by.setdefault(key, []).append(s)
        else:
            failed[key] = failed.get(key, 0) + 1
    for key in sorted(failed.keys() - by.keys()):
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} |" + " |" * 15 + f" {failed[key]} |")
    per_host = ["", "per added host, (X(N) - X(1)) / (N - 1) from the medians (ms)", "",
                "| engine | home | hosts | wall | controller CPU | remote CPU | other CPU | "
                "waiting |", "|---|---|---|---|---|---|---|---|"]
    for (engine, home, n), runs in sorted(by.items()):
        wall = _median(runs, "wall_s")
        one = by.get((engine, home, 1))
        ratio = rounds = ""
        if one:
            ratio = f"{wall / _median(one, 'wall_s'):.2f}x"
            base = {x["round"]: x["wall_s"] for x in one}
            own = [x["wall_s"] / base[x["round"]] for x in runs if x["round"] in base]
            rounds = f"{min(own):.2f}-{max(own):.2f}" if own else ""
        walls = f"{min(x['wall_s'] for x in runs):.2f}-{max(x['wall_s'] for x in runs):.2f}"
        largest = max(x["largest_rss_bytes"] for x in runs) / 2**20
        tree = max(runs, key=lambda x: x["tree_peak_rss_bytes"])
        shares = " | ".join(f"{_median(runs, k):.2f}" for k in FIGURES)
        lines.append(
            f"| {engine} | {home} | {n} | {runs[0]['forks'] or ''} | {runs[0]['envs']} | "
            f"{runs[0]['cells']} | {wall:.2f} | {walls} | {ratio} | {rounds} | "
            f"{_median(runs, 'sweep_s'):.2f} | {shares} | {largest:.0f} MiB | "
            f"{tree['tree_peak_rss_bytes'] / 2**20:.0f} MiB ({tree['tree_peak_processes']}) | "
            f"{max(x.get('tree_peak_pss_bytes', 0) for x in runs) / 2**20:.0f} MiB | "
            f"{failed.get((engine, home, n), 0)} |")
        if one and n > 1:
            grow = " | ".join(f"{(_median(runs, k) - _median(one, k)) / (n - 1) * 1000:.0f}"
                              for k in ("wall_s", *FIGURES))
            per_host.append(f"| {engine} | {home} | {n} | {grow} |")
    if len(per_host) > 5:
        lines += per_host
    waited = sum(1 for s in r["sweeps"] if s["waited_for_host"])
    if waited:
        lines += ["", f"{waited} run(s) waited for another sweep holding this machine "
                  "(their wall time includes the wait): run with the machine alone"]
    unsettled = sum(1 for s in r["sweeps"] if not s["sessions_settled"])
    if unsettled:
        lines += ["", f"{unsettled} run(s): sessions still open {SETTLE_S:.0f} s after the "
                  "command (their remote CPU is not all counted)"]
    for home, costs in r["per_host"].items():
        lines += ["", f"per host, one after another, first {len(costs)} hosts of the largest "
                  f"fleet (ms), login home {home}: median / max", "",
                  "| step | median | max |", "|---|---|---|"]
        for key in ("connect_s", "upload_s", "start_to_hello_s", "upload_and_start_s",
                    "start_to_env_s", "agent_s", "teardown_s"):
            xs = [h[key] for h in costs]
            lines.append(f"| {key[:-2]} | {statistics.median(xs) * 1000:.0f} | "
                         f"{max(xs) * 1000:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
