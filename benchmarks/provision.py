"""What ``harness provision`` costs: the time per extra host once a build exists, and
(with ``--build``) the time of one build.

    .venv/bin/python benchmarks/provision.py [--python 3.13t] [--build] [--rounds 2]

On a loopback fleet it starts (tests/fleet/fleet.py, 3 hosts), with the build cached
under /var/cache/harness (``--build-root``), it provisions fresh prefixes to 1 host and
then to 3 hosts, ``--rounds`` times each, and prints the medians: per extra host =
(3 hosts - 1 host) / 2. ``--build`` also times one build of the version from
Debian's source into a temporary prefix (playbooks/files/build-python.sh, both cores).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD_ROOT = "/var/cache/harness"


def _fleet_module():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("fleet", ROOT / "tests/fleet/fleet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fleet"] = module
    spec.loader.exec_module(module)
    return module


def _inventory(fleet, path: Path, prefixes: Path, count: int) -> Path:  # noqa: ANN001
    lines = ["[lab]"]
    for host in fleet.hosts[:count]:
        lines.append(f"{host.name} ansible_host={host.address} ansible_port={host.port} "
                     f"harness_provision_prefix={prefixes / host.name}")
    lines += ["[lab:vars]", "ansible_user=root", f"ansible_ssh_private_key_file={fleet.client_key}",
              f"ansible_ssh_common_args='-o UserKnownHostsFile={fleet.known_hosts} "
              "-o StrictHostKeyChecking=yes'", ""]
    path.write_text("\n".join(lines))
    return path


def _provision(inv: Path, version: str) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness", "provision", "-i", str(inv),
                           "--build-root", BUILD_ROOT, "--python", version, "--json"],
                          capture_output=True, text=True, timeout=3600, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    out = json.loads(done.stdout)
    if done.returncode != 0 or any(h["status"] != "changed" for h in out["hosts"]):
        raise SystemExit(f"provision failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="3.13t")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--build", action="store_true")
    args = parser.parse_args()
    fleet_mod = _fleet_module()
    with tempfile.TemporaryDirectory(prefix="harness-provision-bench-") as tmp:
        work = Path(tmp)
        fleet = fleet_mod.up(work / "fleet", 3)
        try:
            times: dict[int, list[float]] = {1: [], 3: []}
            for r in range(args.rounds):
                for count in (1, 3):
                    inv = _inventory(fleet, work / f"lab{count}.ini", work / f"p{r}-{count}",
                                     count)
                    times[count].append(_provision(inv, args.python))
        finally:
            fleet_mod.down(work / "fleet")
        one, three = statistics.median(times[1]), statistics.median(times[3])
        print(f"provision {args.python}, cached build: 1 host {one:.1f} s, 3 hosts "
              f"{three:.1f} s (medians of {args.rounds}); per extra host "
              f"{(three - one) / 2:.1f} s")
        if args.build:
            t0 = time.perf_counter()
            subprocess.run(["bash", str(ROOT / "playbooks/files/build-python.sh"),
                            args.python, str(work / "build" / f"cpython-{args.python}")],
                           check=True, capture_output=True, timeout=7200)
            print(f"one build of {args.python} from Debian's source: "
                  f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
