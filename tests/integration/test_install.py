"""harness as a user installs it: the sdist built from the checkout, the wheel built from
the sdist, the wheel installed (not editable) into a fresh venv, and run from an
unrelated directory, so nothing it reads at run time may come from the checkout.

The venv gets its dependencies from the package index (pip's cache makes later runs
quicker); it is built once for this module's tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What a source tree never ships: tools' and runs' leftovers (a copy keeps the checkout
# itself free of build/ and egg-info directories while others work in it).
LEFTOVERS = shutil.ignore_patterns(".venv", ".git", "results", "build", "dist", "*.egg-info",
                                   "__pycache__", ".pytest_cache", ".ruff_cache", ".fleet",
                                   "*.pyz")
MY_WORKLOAD = """
name = "my_empty"
title = "My empty tasks"
implementation = "my_tasks"
models = ["sequential", "threads"]
[params]
tasks = 20
"""


@dataclass(frozen=True)
class Installed:
    sdist: Path
    wheel: Path
    venv: Path
    elsewhere: Path  # an unrelated working directory

    def harness(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env["COLUMNS"] = "250"
        return subprocess.run([str(self.venv / "bin" / "harness"), *args], cwd=self.elsewhere,
                              capture_output=True, text=True, timeout=timeout, env=env)


def _run(*cmd: str | Path, cwd: Path | None = None, timeout: float = 600) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    return proc.stdout


def _build_sdist(src: Path, out: Path) -> Path:
    # build's front end, when installed (a stray build/ directory is not it)
    if importlib.util.find_spec("build") is not None and importlib.util.find_spec(
            "build.__main__") is not None:
        _run(sys.executable, "-m", "build", "--sdist", "--outdir", out, src)
    else:  # what `python -m build --sdist` calls, run in the project's directory
        _run(sys.executable, "-c", "import sys; from setuptools import build_meta; "
             "build_meta.build_sdist(sys.argv[1])", out, cwd=src)
    (sdist,) = out.glob("harness-*.tar.gz")
    return sdist


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=LEFTOVERS)
    sdist = _build_sdist(src, base / "dist")
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", base / "wheels", sdist)
    (wheel,) = (base / "wheels").glob("harness-*.whl")
    venv = base / "venv"
    _run(sys.executable, "-m", "venv", venv)
    _run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, timeout=1200)
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    return Installed(sdist=sdist, wheel=wheel, venv=venv, elsewhere=elsewhere)


@pytest.mark.slow
def test_the_sdist_and_the_wheel_carry_what_harness_reads(installed: Installed) -> None:
    with tarfile.open(installed.sdist) as archive:
        sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    wheel = set(zipfile.ZipFile(installed.wheel).namelist())
    for name in ("workloads/cpu_bound.toml", "workloads/cpu.py", "workloads/__init__.py",
                 "analysis/views.sql", "analysis/claims.sql", "inventories/local.ini",
                 "playbooks/provision-python.yml", "playbooks/files/build-python.sh"):
        assert name in sdist, name
        assert f"harness/_data/{name}" in wheel, name
    assert {"harness/agent/runner.py", "harness/cli/app.py"} <= wheel
    assert not any(n.startswith(("workloads/", "analysis/", "tests/")) for n in wheel)


@pytest.mark.slow
def test_the_installed_package_is_not_the_checkout(installed: Installed) -> None:
    out = _run(installed.venv / "bin" / "python", "-c",
               "import json, harness, harness.paths as p; print(json.dumps([harness.__file__,"
               " str(p.WORKLOADS_DIR), str(p.ANALYSIS_DIR), str(p.DEFAULT_INVENTORY)]))",
               cwd=installed.elsewhere)
    package, *data = json.loads(out)
    site = installed.venv.resolve()
    for path in (package, *data):
        assert Path(path).resolve().is_relative_to(site), path
        assert Path(path).exists(), path
    assert str(ROOT) not in out


@pytest.mark.slow
def test_sweep_report_and_sql_from_an_unrelated_directory(installed: Installed) -> None:
    results = installed.elsewhere / "R"
    proc = installed.harness("sweep", "--profile", "quick", "-w", "cpu_bound", "-m", "threads",
                             "--results", "R", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CPU-bound (compute)" in proc.stdout and "Traceback" not in proc.stderr

    proc = installed.harness("report", "--out", "R/r.md", "--results", "R")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cpu_bound" in (results / "r.md").read_text() or "CPU-bound" in (
        results / "r.md").read_text()

    proc = installed.harness("sql", "SELECT count(*) AS n FROM cells WHERE workload = "
                             "'cpu_bound' AND status = 'ok'", "--results", "R",
                             "--format", "json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)[0]["n"] == 2  # sequential and threads


@pytest.mark.slow
def test_a_user_workload_directory_from_an_installed_harness(installed: Installed) -> None:
    mine = installed.elsewhere / "my_workloads"
    mine.mkdir()
    (mine / "my_empty.toml").write_text(MY_WORKLOAD)
    # the built-in empty module, under a name of the user's
    shutil.copy(ROOT / "workloads" / "empty.py", mine / "my_tasks.py")

    listing = installed.harness("workloads", "list", "--workloads", "my_workloads")
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if "my_empty" in line)
    assert row.split()[-2] == "my_workloads"  # the source: the directory as given
    assert "built-in" in next(line for line in listing.stdout.splitlines()
                              if "cpu_bound" in line)

    proc = installed.harness("sweep", "--profile", "quick", "-w", "my_empty", "-m", "threads",
                             "--workloads", "my_workloads", "--results", "R2", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = installed.harness("sql", "SELECT model, status FROM cells WHERE workload = "
                             "'my_empty' ORDER BY model", "--results", "R2", "--format", "json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout) == [{"model": "sequential", "status": "ok"},
                                       {"model": "threads", "status": "ok"}]

    (mine / "clash.toml").write_text(MY_WORKLOAD.replace('"my_empty"', '"cpu_bound"'))
    proc = installed.harness("sweep", "-w", "cpu_bound", "--workloads", "my_workloads",
                             "--results", "R3")
    assert proc.returncode == 2
    assert "is the name of a built-in workload" in proc.stderr
    assert "hint: rename it" in proc.stderr and "Traceback" not in proc.stderr
    assert not (installed.elsewhere / "R3").exists()


@pytest.mark.slow
def test_before_and_after_and_pyperf_files_from_an_installed_harness(
        installed: Installed) -> None:
    """Issue 15's other two parts from the wheel: a sweep exported as pyperf files (which
    pyperf reads), imported back as a sweep of its own, compared with the original by
    sweep (the same values: nothing changed) and listed in history."""
    proc = installed.harness("sweep", "--profile", "quick", "-w", "cpu_bound", "-m", "threads",
                             "--results", "R4", "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    original = json.loads(proc.stdout)["sweep_id"]

    proc = installed.harness("export", "--format", "pyperf", "--sweep", original,
                             "--out", "pyperf", "--results", "R4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (exported,) = (installed.elsewhere / "pyperf").glob("*.json")
    stats = subprocess.run([sys.executable, "-m", "pyperf", "stats", str(exported)],
                           capture_output=True, text=True, timeout=120)
    assert stats.returncode == 0 and "cpu_bound/threads" in stats.stdout, stats.stderr

    proc = installed.harness("import", "pyperf", str(exported), "--results", "R4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = installed.harness("sql", "SELECT sweep_id, profile FROM sweeps ORDER BY started_at",
                             "--results", "R4", "--format", "json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweeps = json.loads(proc.stdout)
    assert len(sweeps) == 2 and sweeps[0]["sweep_id"] == original
    imported = next(s["sweep_id"] for s in sweeps if s["sweep_id"] != original)

    proc = installed.harness("compare", "--by", "sweep", "--baseline", original,
                             "--sweep", imported, "--results", "R4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "unchanged" in proc.stdout and "slower" in proc.stdout  # the summary line
    assert "Traceback" not in proc.stderr

    proc = installed.harness("history", "-w", "cpu_bound", "--results", "R4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "threads" in proc.stdout
