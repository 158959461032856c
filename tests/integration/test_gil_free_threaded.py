"""The gil dimension on real interpreters: the planner's gil cells (PYTHON_GIL=0 and =1)
run by the built agent zipapp. On the free-threaded build the samples report the GIL off
and on respectively (the agent's noise facts read sys._is_gil_enabled() in the child agent
that has PYTHON_GIL set); on a standard build every gil cell is not_applicable, with why."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.agent.protocol import parse_line
from harness.plan.catalog import load_catalog
from harness.plan.cells import PROFILES, plan_cells, plan_document
from harness.remote.bundle import build_agent

FREE_THREADED = "/var/cache/harness/cpython-3.13t/bin/python3.13t"
STANDARD = "/root/.pyenv/versions/3.11.7/bin/python3.11"

pytestmark = pytest.mark.slow


def gil_plan() -> dict[str, Any]:
    """The quick profile's gil cells of cpu_bound, with tiny tasks and 2 repeats."""
    cells = plan_cells([load_catalog()["cpu_bound"]], PROFILES["quick"], host="h",
                       python="p", usable_cpus=2, dimensions=True, dimension_names=("gil",))
    plan = plan_document([c for c in cells if not c.headline])
    for c in plan["cells"]:
        c["params"].update(task_s=0.002, tasks=2)
        c.update(warmups=0, repeats=2, min_repeats=2, max_repeats=2, timeout_s=60)
    return plan


def run(python: str, tmp_path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not os.path.exists(python):
        pytest.skip(f"interpreter {python} is not installed here")
    agent = build_agent(tmp_path / "bundle")
    plan = gil_plan()
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    p = subprocess.run([python, "-I", str(agent), "run", str(tmp_path / "plan.json")],
                       cwd=tmp_path, capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    msgs = [parse_line(line) for line in p.stdout.decode().splitlines()]
    assert msgs[-1]["type"] == "eof"
    return plan, msgs


def test_plan_has_both_gil_settings() -> None:
    plan = gil_plan()
    assert {(c["params"]["gil"], c["env"]["PYTHON_GIL"]) for c in plan["cells"]} == {
        (0, "0"), (1, "1")}
    assert {c["model"] for c in plan["cells"]} == {"sequential", "threads", "processes"}


def test_free_threaded_build_reports_the_gil_state(tmp_path: Path) -> None:
    plan, msgs = run(FREE_THREADED, tmp_path)
    env = next(m for m in msgs if m["type"] == "env")
    assert env["env"]["free_threaded"] is True
    cells = {c["cell_id"]: c for c in plan["cells"]}
    done = {m["cell_id"]: m for m in msgs if m["type"] == "cell_done"}
    assert set(done) == set(cells)
    for cell_id, cell in cells.items():
        assert done[cell_id]["status"] == "ok", done[cell_id]
        samples = [m for m in msgs if m["type"] == "sample" and m["cell_id"] == cell_id]
        assert len(samples) == 2 and all(s["ok"] for s in samples)
        want = cell["params"]["gil"] == 1
        for s in samples:
            assert s["extra"]["gil_enabled"] is want, (cell["model"], cell["params"], s)
            assert s["extra"]["child_env"] == f"PYTHON_GIL={cell['params']['gil']}"
    # both GIL settings run the same loop size: the parent's rate, measured once
    params = [d["params"] for d in done.values()]
    assert len({p["n"] for p in params}) == 1 and params[0]["n"] > 0
    assert {p["calibration"] for p in params} == {"measured"}


def test_standard_build_marks_gil_cells_not_applicable(tmp_path: Path) -> None:
    plan, msgs = run(STANDARD, tmp_path)
    done = {m["cell_id"]: m for m in msgs if m["type"] == "cell_done"}
    assert set(done) == {c["cell_id"] for c in plan["cells"]}
    for cell in plan["cells"]:
        d = done[cell["cell_id"]]
        assert d["status"] == "not_applicable"
        assert d["reason"] == (f"PYTHON_GIL={cell['params']['gil']} needs a free-threaded "
                               "build (this is a standard build)")
