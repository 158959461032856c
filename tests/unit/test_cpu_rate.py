"""The CPU loop rate: measured once per agent run, or reused from an earlier sweep."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import workloads
from harness.agent import children
from harness.agent import plan as agent_plan
from harness.plan.calibration import CalibrationStore, measured_hints
from harness.plan.cells import plan_document
from workloads import cpu, transfer

ENV = {"arch": "x86_64", "cpu_model": "Test CPU", "usable_cpus": 2, "numa_nodes": 1,
       "python_version": "3.11.7", "implementation": "CPython", "free_threaded": False,
       "mem_total_bytes": 24 << 30}


@pytest.fixture(autouse=True)
def fresh_agent_run() -> Iterator[None]:
    """Each test is a new agent run: no rate measured, no hints."""
    cpu._RATE.clear()
    workloads.set_hints({})
    yield
    cpu._RATE.clear()
    workloads.set_hints({})


def test_a_hint_fixes_the_loop_size(tmp_path: Path) -> None:
    workloads.set_hints({"cpu_rate": 1_000_000.4})
    setup = cpu.setup({"task_s": 0.25, "tasks": 2}, str(tmp_path))
    assert setup.params["n"] == 250_000 and setup.args == [250_000, 250_000]
    assert setup.params["calibration"] == "reused"
    assert setup.params["cpu_rate"] == 1_000_000.0
    assert setup.params["calibrated_task_s"] == 0.25
    # transfer sizes its compute from the same rate
    t = transfer.setup({"task_s": 0.001, "tasks": 1, "payload_bytes": 16}, str(tmp_path))
    assert t.params["n"] == 1000 and t.params["calibration"] == "reused"


def test_without_hint_the_rate_is_measured_once_and_sizes_every_task(tmp_path: Path) -> None:
    small = cpu.setup({"task_s": 0.001, "tasks": 1}, str(tmp_path)).params
    large = cpu.setup({"task_s": 0.1, "tasks": 1}, str(tmp_path)).params
    assert small["calibration"] == large["calibration"] == "measured"
    assert small["cpu_rate"] == large["cpu_rate"] == float(int(small["cpu_rate"])) > 0
    # one rate for all task sizes: n is proportional to task_s
    assert large["n"] == round(0.1 * large["cpu_rate"])
    assert small["n"] == round(0.001 * small["cpu_rate"])
    # the rate is what the task really does here, within a factor (not a fixed number)
    n = large["n"]
    elapsed = min(cpu._time_once(n) for _ in range(3))
    assert 0.02 < elapsed < 2.0


def test_a_parent_measured_rate_is_recorded_as_measured(tmp_path: Path) -> None:
    workloads.set_hints({"cpu_rate_measured": 2_000_000})
    params = cpu.setup({"task_s": 0.001, "tasks": 1}, str(tmp_path)).params
    assert params["n"] == 2000 and params["calibration"] == "measured"


def test_plan_hints_are_checked_and_reach_child_agents() -> None:
    cells = [{"cell_id": "c", "workload": "cpu_bound", "implementation": "cpu",
              "model": "sequential", "workers": 1, "params": {}, "warmups": 0,
              "repeats": 1, "timeout_s": 10}]
    plan = agent_plan.parse_plan({"protocol": 2, "cells": cells, "hints": {"cpu_rate": 5e6}})
    assert plan.hints == {"cpu_rate": 5e6}
    assert agent_plan.parse_plan({"protocol": 2, "cells": cells}).hints == {}
    with pytest.raises(agent_plan.PlanError, match="hints"):
        agent_plan.parse_plan({"protocol": 2, "cells": cells, "hints": {"cpu_rate": "fast"}})
    with pytest.raises(agent_plan.PlanError, match="hints"):
        agent_plan.parse_plan({"protocol": 2, "cells": cells, "hints": [1]})
    # a child gets the plan's hints unchanged ...
    assert children.child_hints({"cpu_rate": 5e6}, plan.cells) == {"cpu_rate": 5e6}
    # ... or, without one, the parent's own measurement (so GIL=0 and GIL=1 share n)
    child = children.child_hints({}, plan.cells)
    assert child["cpu_rate_measured"] == cpu._RATE[0][0] > 0
    empty = plan.cells[0]._replace(implementation="empty")
    assert children.child_hints({}, [empty]) == {}


def test_plan_document_carries_hints_only_when_there_are_some() -> None:
    assert "hints" not in plan_document([])
    assert plan_document([], hints={"cpu_rate": 3.0})["hints"] == {"cpu_rate": 3.0}


def test_store_round_trip_per_environment(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path)
    assert store.load("h1", "python3", ENV) == {}
    store.save("h1", "python3", ENV, {"cpu_rate": 1234567.0}, "sweep-1")
    assert store.load("h1", "python3", ENV) == {"cpu_rate": 1234567.0}
    # another host, interpreter or hardware/build profile does not get it
    assert store.load("h2", "python3", ENV) == {}
    assert store.load("h1", "python3.12", ENV) == {}
    assert store.load("h1", "python3", dict(ENV, usable_cpus=1)) == {}
    assert store.load("h1", "python3", dict(ENV, python_version="3.11.8")) == {}
    # replaced, whole, and no temp files left behind
    store.save("h1", "python3", ENV, {"cpu_rate": 7.0}, "sweep-2")
    assert store.load("h1", "python3", ENV) == {"cpu_rate": 7.0}
    files = list((tmp_path / "calibration").iterdir())
    assert len(files) == 1 and not files[0].name.startswith(".")
    assert json.loads(files[0].read_text())["sweep_id"] == "sweep-2"


def test_store_ignores_what_it_cannot_use(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path)
    store.save("h", "p", ENV, {"cpu_rate": 9.0}, "s")
    (path,) = (tmp_path / "calibration").iterdir()
    for body in ("not json", "[]", '{"hints": 3}', '{"hints": {"cpu_rate": -1}}',
                 '{"hints": {"cpu_rate": "x", "other": 5}}'):
        path.write_text(body)
        assert store.load("h", "p", ENV) == {}, body


def test_measured_hints_only_from_a_measuring_agent() -> None:
    assert measured_hints({"calibration": "measured", "cpu_rate": 5.0, "n": 3}) == {
        "cpu_rate": 5.0}
    assert measured_hints({"calibration": "reused", "cpu_rate": 5.0}) == {}
    assert measured_hints({"n": 3}) == {}
    assert measured_hints({"calibration": "measured", "cpu_rate": float("nan")}) == {}
