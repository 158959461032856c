"""The agent's side of the dimensions: calibrated repeats, noise facts, not-applicable
NUMA and GIL cells, cells run in a child agent with their own environment variables."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from harness.agent import output, protocol, runner
from harness.agent import plan as agent_plan

NUMA_DATA = Path(__file__).resolve().parent.parent / "data" / "numa"


def cell(cell_id: str, **kw):
    base = {"cell_id": cell_id, "workload": "empty", "implementation": "empty",
            "model": "sequential", "workers": 1, "params": {"tasks": 5}, "warmups": 1,
            "repeats": 2, "timeout_s": 60}
    base.update(kw)
    return base


def run(cells, monkeypatch=None, numa_root=None):
    if numa_root is not None:
        monkeypatch.setattr(runner, "NUMA_ROOT", str(numa_root))
    plan = agent_plan.parse_plan({"protocol": 2, "keepalive_s": 5, "cells": cells})
    stream = io.StringIO()
    runner.Runner(output.LineWriter(stream), plan).run()
    msgs = [protocol.parse_line(line) for line in stream.getvalue().splitlines()]
    return [m for m in msgs if m["type"] != "keepalive"]


def samples(msgs, cell_id):
    return [m for m in msgs if m["type"] == "sample" and m["cell_id"] == cell_id]


def done(msgs, cell_id):
    return next(m for m in msgs if m["type"] == "cell_done" and m["cell_id"] == cell_id)


def test_calibration_stops_at_the_minimum_when_the_target_is_met() -> None:
    msgs = run([cell("a", min_repeats=3, max_repeats=9, target_rel_ci=100.0, budget_s=60)])
    timed = [s for s in samples(msgs, "a") if not s["warmup"]]
    assert len(timed) == 3
    assert timed[-1]["extra"]["calib_stop"] == "target"
    assert timed[-1]["extra"]["calib_reached_rel_ci"] <= 100.0
    assert timed[0]["extra"]["calib_target_rel_ci"] == 100.0
    warm = [s for s in samples(msgs, "a") if s["warmup"]]
    assert len(warm) == 1 and warm[0]["ok"]  # measured, stored, flagged


def test_without_target_it_runs_max_repeats_and_records_noise() -> None:
    msgs = run([cell("b", min_repeats=2, max_repeats=4)])
    timed = [s for s in samples(msgs, "b") if not s["warmup"]]
    assert len(timed) == 4 and timed[-1]["extra"]["calib_stop"] == "max_repeats"
    extra = timed[0]["extra"]
    for key in ("loadavg_1m", "cpu_governor", "cpu_mhz", "busy_procs", "gil_enabled"):
        assert key in extra
    assert done(msgs, "b")["status"] == "ok"


def test_a_zero_budget_stops_after_min_repeats() -> None:
    msgs = run([cell("c", min_repeats=2, max_repeats=50, target_rel_ci=1e-12,
                     budget_s=1e-9)])
    timed = [s for s in samples(msgs, "c") if not s["warmup"]]
    assert len(timed) == 2 and timed[-1]["extra"]["calib_stop"] == "budget"


def test_numa_cells_on_one_node_are_not_applicable(monkeypatch) -> None:
    cells = [cell("p", model="processes", workers=2,
                  params={"tasks": 2, "pinning": "spread"}),
             cell("m", model="processes", workers=2, params={"tasks": 2, "memory": "remote"}),
             cell("n", model="processes", workers=2, params={"tasks": 2, "pinning": "none",
                                                             "chunksize": 2})]
    msgs = run(cells, monkeypatch, NUMA_DATA / "one_node")
    for cid in ("p", "m"):
        assert done(msgs, cid)["status"] == "not_applicable"
        assert done(msgs, cid)["reason"] == "1 NUMA node"
        assert samples(msgs, cid)[0]["error"] == "1 NUMA node"
    assert done(msgs, "n")["status"] == "ok"


def test_pinning_on_two_nodes_pins_the_workers(monkeypatch) -> None:
    import os

    if len(os.sched_getaffinity(0)) < 1 or 0 not in os.sched_getaffinity(0):
        pytest.skip("CPU 0 is not usable here")
    tree = NUMA_DATA / "two_nodes"
    msgs = run([cell("q", model="processes", workers=1,
                     params={"tasks": 2, "pinning": "compact"})], monkeypatch, tree)
    assert done(msgs, "q")["status"] == "ok"
    assert samples(msgs, "q")[-1]["extra"]["pinned_cpus"] == "0"


def test_gil_cells_need_a_free_threaded_build() -> None:
    if runner.probe_free_threaded():
        pytest.skip("this interpreter is free-threaded")
    msgs = run([cell("g", params={"tasks": 2, "gil": 0}, env={"PYTHON_GIL": "0"})])
    assert done(msgs, "g")["status"] == "not_applicable"
    assert "free-threaded" in done(msgs, "g")["reason"]


def test_cells_with_env_run_in_a_child_agent() -> None:
    cells = [cell("e1", env={"HARNESS_TEST_CHILD": "1"}),
             cell("e2", env={"HARNESS_TEST_CHILD": "1"}),
             cell("e3")]
    msgs = run(cells)
    for cid in ("e1", "e2"):
        assert done(msgs, cid)["status"] == "ok"
        assert samples(msgs, cid)[-1]["extra"]["child_env"] == "HARNESS_TEST_CHILD=1"
    assert "child_env" not in samples(msgs, "e3")[-1]["extra"]
    assert [m["type"] for m in msgs].count("hello") == 0  # the child's hello is not relayed
    assert json.dumps(msgs)  # every relayed line is valid protocol


def test_plan_rejects_bad_dimension_values() -> None:
    with pytest.raises(agent_plan.PlanError, match="pinning"):
        agent_plan.parse_plan({"protocol": 2, "cells": [cell("x", params={"pinning": "tight"})]})
    with pytest.raises(agent_plan.PlanError, match="env"):
        agent_plan.parse_plan({"protocol": 2, "cells": [cell("x", env={"bad name": "1"})]})
    with pytest.raises(agent_plan.PlanError, match="max_repeats"):
        agent_plan.parse_plan({"protocol": 2, "cells": [cell("x", min_repeats=5, max_repeats=2)]})


def test_prior_samples_count_towards_the_calibration() -> None:
    """The last agent run of a cell gets the earlier runs' blocks: they count for the
    minimum and maximum blocks and for the interval the target is checked on, and its
    own blocks are numbered on from them."""
    # 6 prior blocks, a total of 7 to 9: one own block reaches the minimum
    msgs = run([cell("p", min_repeats=7, max_repeats=9, target_rel_ci=1e9,
                     prior=[[b, 0.001] for b in range(6)])])
    timed = [s for s in samples(msgs, "p") if not s["warmup"]]
    assert len(timed) == 1 and timed[0]["extra"]["calib_repeats"] == 7
    assert timed[0]["extra"]["calib_stop"] == "target"
    assert timed[0]["block"] == 6 and timed[0]["block_pos"] == 0
    # without a target: up to the total maximum, the prior ones included
    msgs = run([cell("q", min_repeats=2, max_repeats=5, prior=[[0, 0.001], [1, 0.002]])])
    timed = [s for s in samples(msgs, "q") if not s["warmup"]]
    assert len(timed) == 3 and timed[-1]["extra"]["calib_repeats"] == 5
    assert [s["block"] for s in timed] == [2, 3, 4]
    # more prior blocks than the maximum: still one own block
    msgs = run([cell("r", min_repeats=2, max_repeats=3, prior=[[b, 1.0] for b in range(4)])])
    assert len([s for s in samples(msgs, "r") if not s["warmup"]]) == 1
    with pytest.raises(agent_plan.PlanError, match="prior"):
        agent_plan.parse_plan({"protocol": 2, "cells": [cell("s", prior=[[0, -1.0]])]})
    with pytest.raises(agent_plan.PlanError, match="prior"):
        agent_plan.parse_plan({"protocol": 2, "cells": [cell("s", prior=[0.5])]})
    with pytest.raises(agent_plan.PlanError, match="prior"):
        agent_plan.parse_plan({"protocol": 2, "cells": [cell("s", prior="1,2")]})
