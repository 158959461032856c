"""The scheduled check of the newest dependencies: what breaks before users meet it.

Makes a temporary venv, installs harness from this checkout *without* constraints.txt
(so pip resolves the newest versions pyproject.toml allows, as a fresh ``pipx install``
would), lists the versions that differ from constraints.txt (what CI tests), then runs
the CLI smoke checks with the venv's installed ``harness``: help, the catalogue, three
usage errors (one line + the usage hint, exit 2, no traceback), a tiny real sweep, a
query and ``harness check``. With ``--tests`` it also runs the fast unit tests of the
checkout under those versions. Exit 0 when every check passed, 1 otherwise.

Run it on a schedule (weekly, and before a release):

    .venv/bin/python benchmarks/newest_deps.py [--tests] [--keep]

A failure here is a range to fix in pyproject.toml (an upper bound, or code that copes
with the new release) before users install it; when everything passes, refreshing
constraints.txt from the new versions (see its header) moves CI to them.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEP_TIMEOUT_S = 900  # every subprocess is bounded


def run(args: list[str], cwd: Path, timeout: float = STEP_TIMEOUT_S
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def pins(text: str) -> dict[str, str]:
    """name (normalised) -> version of ``pip freeze`` / constraints.txt lines."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if m:
            found[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return found


def smoke_checks(harness: Path, work: Path) -> list[tuple[str, list[str], int, str]]:
    """(name, args, the exit status wanted, text the output must hold) of each check."""
    results = str(work / "results")
    return [
        ("help", ["--help"], 0, "sweep"),
        ("catalogue", ["workloads", "list"], 0, "cpu_bound"),
        ("unknown option", ["sweep", "--bogus"], 2, "No such option"),
        ("unknown command", ["nosuchcmd"], 2, "No such command"),
        ("bad value", ["sweep", "--forks", "x"], 2, "--forks"),
        ("bad input", ["sweep", "--profile", "huge"], 2, "harness: error:"),
        ("sweep", ["sweep", "--profile", "quick", "-w", "cpu_bound", "-m", "threads",
                   "--parallel-same-machine", "--results", results], 0, "cells stored"),
        ("query", ["sql", "SELECT count(DISTINCT cell_id) AS n FROM measurements",
                   "--format", "csv", "--results", results], 0, "n"),
        ("check", ["check", "--results", results], 0, "sound"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the venv")
    parser.add_argument("--tests", action="store_true", help="also run tests/unit (fast ones)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary venv")
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="harness-newest-"))
    venv = work / "venv"
    failed = 0
    try:
        t0 = time.monotonic()
        made = run([opts.python, "-m", "venv", str(venv)], cwd=work)
        py = venv / "bin" / "python"
        steps = [made,
                 run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"], cwd=work),
                 run([str(py), "-m", "pip", "install", "-q", f"{ROOT}[dev]"], cwd=work)]
        for step in steps:
            if step.returncode != 0:
                print(f"install FAILED: {' '.join(step.args)}\n{step.stderr[-3000:]}")
                return 1
        print(f"installed the newest versions in {time.monotonic() - t0:.0f} s ({venv})")
        tested = pins((ROOT / "constraints.txt").read_text(encoding="utf-8"))
        newest = pins(run([str(py), "-m", "pip", "freeze"], cwd=work).stdout)
        changed = sorted(n for n in newest if n in tested and newest[n] != tested[n])
        new = sorted(n for n in newest if n not in tested and n != "harness")
        print(f"{len(changed)} versions differ from constraints.txt:")
        for name in changed:
            print(f"  {name:24} {tested[name]:>12} -> {newest[name]}")
        for name in new:
            print(f"  {name:24} {'(not pinned)':>12} -> {newest[name]}")
        harness = venv / "bin" / "harness"
        for name, args, want, needle in smoke_checks(harness, work):
            proc = run([str(harness), *args], cwd=work)
            out = proc.stdout + proc.stderr
            ok = proc.returncode == want and needle in out and "Traceback" not in out
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name:16} exit {proc.returncode} (want {want})")
            if not ok:
                print("     " + "\n     ".join(out.strip().splitlines()[-15:]))
        if opts.tests:
            proc = run([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m",
                        "not slow", "tests/unit"], cwd=ROOT)
            ok = proc.returncode == 0
            failed += not ok
            tail = proc.stdout.strip().splitlines()[-1:] or [""]
            print(f"{'ok  ' if ok else 'FAIL'} {'unit tests':16} {tail[0]}")
            if not ok:
                print(proc.stdout[-3000:])
    finally:
        if opts.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("every check passed" if not failed else f"{failed} checks FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
