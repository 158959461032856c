"""The report's figures: drawn once per content (RESULTS/.report-cache/), several at a
time in forked processes, and the report the same whichever way they were made.

Real matplotlib, a real warehouse (test_report's two sweeps), the installed CLI.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pandas
import pytest

from harness.report import drawing, lineplot, plots
from harness.report.drawing import CACHE_DIR, Drawer, Job, digest
from harness.report.plots import VIEW_PLOTS, Figure, speedup_figure, view_figure
from harness.warehouse import Warehouse
from tests.integration.test_report import T0, _env, _fill, build_warehouse

HARNESS = str(Path(sys.executable).with_name("harness"))
GENERATED = re.compile(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


def report(results: Path, out: Path) -> str:
    """``harness report`` as a user runs it; the HTML without its generation time."""
    p = subprocess.run([HARNESS, "report", "--results", str(results), "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return GENERATED.sub("Generated T", out.read_text())


def figures(html: str) -> dict[str, str]:
    """Each figure's inline SVG by its key."""
    return dict(re.findall(r'<figure id="fig-([^"]+)" data-figure="[^"]+">(<svg.*?</svg>)',
                           html, flags=re.S))


def matrix_rows(speedup: float) -> pandas.DataFrame:
    return pandas.DataFrame({
        "workload": ["cpu_bound", "cpu_bound"], "model": ["sequential", "threads"],
        "speedup": [1.0, speedup], "speedup_ci_low": [1.0, speedup * 0.9],
        "speedup_ci_high": [1.0, speedup * 1.1]})


def jobs(speedups: list[float]) -> list[Job]:
    guide = pandas.DataFrame(columns=["workload", "model", "claim_low", "claim_high"])
    scaling = next(s for s in VIEW_PLOTS if s.view == "scaling")
    out = [Job(f"speedup{i}", speedup_figure, (f"speedup{i}", f"profile {i}",
                                               matrix_rows(s), guide))
           for i, s in enumerate(speedups)]
    rows = pandas.DataFrame({"model": ["threads"] * 3, "workers": [1, 2, 4],
                             "speedup": [1.0, 1.8, 2.5], "ideal_speedup": [1, 2, 2]})
    out.append(Job("scaling0", view_figure, (scaling, "scaling0", "scaling", rows)))
    return out


def test_digest_follows_every_input() -> None:
    a, b, c = jobs([1.5]), jobs([1.5]), jobs([1.6])
    assert digest(a[0]) == digest(b[0])  # equal rows, equal name
    assert digest(a[0]) != digest(c[0])  # one cell changed
    assert digest(a[0]) != digest(Job("speedup0", speedup_figure,
                                      ("speedup0", "another title", *a[0].args[2:])))
    assert len({digest(j) for j in a}) == len(a)
    # DuckDB answers rows in an order that varies from run to run: the same figure
    shuffled = (*a[0].args[:2], a[0].args[2].iloc[::-1], a[0].args[3])
    assert digest(Job("speedup0", speedup_figure, shuffled)) == digest(a[0])
    # nor in the last bits of a float (DuckDB's parallel sums)
    nudged = a[0].args[2].assign(speedup=a[0].args[2]["speedup"] * (1 + 1e-15))
    assert not nudged["speedup"].equals(a[0].args[2]["speedup"])
    assert digest(Job("speedup0", speedup_figure,
                      (*a[0].args[:2], nudged, a[0].args[3]))) == digest(a[0])


def test_digest_follows_the_plotting_code(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A change of plots.py or of the line-plot writer gives every figure a new name."""
    job = jobs([1.5])[-1]
    before = digest(job)
    for module in (plots, lineplot):
        changed = tmp_path / f"{module.__name__}.py"
        changed.write_bytes(Path(module.__file__ or "").read_bytes() + b"\n# changed\n")
        with monkeypatch.context() as m:
            m.setattr(module, "__file__", str(changed))
            drawing._code_version.cache_clear()
            assert digest(job) != before, module.__name__
    drawing._code_version.cache_clear()
    assert digest(job) == before


def matplotlib_loaded(key: str) -> Figure:
    """A figure whose caption is this process's pid and whether it has imported
    matplotlib (after 50 ms: the probes spread over the workers)."""
    time.sleep(0.05)
    return Figure(key, "probe", None, f"{os.getpid()} {'matplotlib' in sys.modules}")


def test_one_worker_imports_matplotlib_the_others_when_needed() -> None:
    """One worker imports matplotlib at once (while the queries run); the others only with
    a figure that needs it: the line plots are written without it."""
    script = """
from harness.report.drawing import Drawer
from tests.integration.test_report_cache import jobs, matplotlib_loaded
line = jobs([1.5])[-1]
speedup = jobs([1.5])[0]
with Drawer(None, workers=3) as d:
    d.add(line.draw, line.key, "title", *line.args)
    for i in range(24):
        d.add(matplotlib_loaded, f"probe{i}", "probe", f"probe{i}")
    figs = d.draw()
print("line", figs[line.key].svg.startswith("<svg"))
for k, f in figs.items():
    if k.startswith("probe"):
        print(f.caption)
with Drawer(None, workers=0) as d:  # the probe can see an import: here, after a speedup
    d.add(speedup.draw, speedup.key, "title", *speedup.args)
    d.add(matplotlib_loaded, "after", "probe", "after")
    print("after a speedup plot", d.draw()["after"].caption.split()[1])
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    assert out[0] == "line True" and out[-1] == "after a speedup plot True"
    seen = [line.split() for line in out[1:-1]]
    assert len(seen) == 24
    imported = {pid for pid, loaded in seen if loaded == "True"}
    without = {pid for pid, loaded in seen if loaded == "False"}
    assert len(imported) <= 1 and len(without) >= 1, seen  # not every worker at once


def draw(todo: list[Job], root: Path | None, workers: int) -> tuple[dict[str, Figure], int]:
    """The figures of ``todo`` through a Drawer; and how many came from the cache."""
    with Drawer(root, workers=workers) as d:
        for j in todo:
            d.add(j.draw, j.key, "title", *j.args)
        return d.draw(), d.hits


def test_cached_and_parallel_figures_equal_drawn_ones(tmp_path: Path) -> None:
    """Drawn in this process, in forked workers, or read from the cache: the same SVG."""
    todo = jobs([1.5, 2.5, 0.8])
    serial, _ = draw(todo, None, 0)
    assert all(f.svg and f.svg.startswith("<svg") for f in serial.values())
    assert draw(todo, None, 2)[0] == serial
    drawn, hits = draw(todo, tmp_path, 2)
    assert (drawn, hits) == (serial, 0)
    assert len(list((tmp_path / CACHE_DIR).glob("*.json"))) == len(todo)
    assert draw(todo, tmp_path, 2) == (serial, len(todo))


def test_cache_is_pruned_oldest_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drawing, "MAX_ENTRIES", 2)
    cache = tmp_path / CACHE_DIR
    cache.mkdir()
    for i in range(3):
        (cache / f"old{i}.json").write_text("{}")
        os.utime(cache / f"old{i}.json", (1000 + i, 1000 + i))
    draw(jobs([1.5])[:1], tmp_path, 0)
    assert sorted(p.name for p in cache.glob("*.json"))[-1] == "old2.json"
    assert len(list(cache.glob("*.json"))) == 2  # the new figure and the newest old one


@pytest.mark.slow
def test_report_after_a_new_sweep_shows_it(tmp_path: Path) -> None:
    """A warm cache never shows an earlier sweep's figures: the report after a new sweep
    is the one drawn from nothing."""
    results = tmp_path / "results"
    w = build_warehouse(results)
    first = report(results, tmp_path / "a.html")
    assert "local-1" in first and len(list((results / CACHE_DIR).glob("*.json"))) == 5
    assert report(results, tmp_path / "b.html") == first  # from the cache: the same

    w.begin_sweep("local-2", started_at=T0 + timedelta(hours=2), harness_version="0.1.0",
                  inventory="local.ini", profile="quick", plan={})
    _fill(w, "local-2", _env("l3", "localhost", "python3", "p2cpu", 2, False, "3.13.1"),
          random.Random(9), {"threads": 0.5, "asyncio": 2.0})
    w.set_sweep_status("local-2", "complete", finished_at=T0 + timedelta(hours=2, seconds=9))
    warm = report(results, tmp_path / "c.html")
    assert "local-2" in warm and "<code>local-1</code>" not in warm
    shutil.rmtree(results / CACHE_DIR)
    cold = report(results, tmp_path / "d.html")
    assert warm == cold
    changed = [k for k, svg in figures(warm).items() if figures(first).get(k) != svg]
    assert changed  # local-2's speedups are not local-1's


def test_report_without_a_writable_cache(tmp_path: Path) -> None:
    """A results directory where the cache cannot be written: the report, no cache."""
    results = tmp_path / "results"
    build_warehouse(results)
    (results / CACHE_DIR).write_text("not a directory")
    html = report(results, tmp_path / "a.html")
    assert len(figures(html)) == 5 and (results / CACHE_DIR).is_file()
    assert Warehouse(results).sweep_ids()  # the warehouse itself untouched
