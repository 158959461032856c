"""Workload modules and the agent's plan checking, in process."""

import os
import tempfile

import pytest

from harness.agent import models, output
from harness.agent import plan as agent_plan
from workloads import cpu, disk


def test_cpu_checks_results_and_caches_calibration(tmp_path):
    cpu._RATE.clear()
    setup = cpu.setup({"task_s": 0.002, "tasks": 3}, str(tmp_path))
    n = setup.params["n"]
    assert setup.params["task_s"] == 0.002 and n > 0 and setup.params["calibrated_task_s"] > 0
    assert setup.args == [n, n, n]
    assert cpu.check(setup, [cpu.task(a) for a in setup.args]) == {}
    with pytest.raises(AssertionError):
        cpu.check(setup, [0, 0, 0])
    with pytest.raises(AssertionError):
        cpu.check(setup, [])
    assert cpu.setup({"task_s": 0.002, "tasks": 1}, str(tmp_path)).params["n"] == n
    assert cpu.expected(10) == sum(i * i for i in range(10))


def _temp_dirs(base):
    return sorted(p for p in os.listdir(base) if p.startswith("harness-disk-"))


def test_disk_leaves_no_temp_dir(tmp_path):
    setup = disk.setup({"tasks": 3, "file_bytes": 5000}, str(tmp_path))
    directory = setup.state[0]
    assert os.stat(directory).st_mode & 0o777 == 0o700
    results = [disk.task(a) for a in setup.args]
    assert disk.check(setup, results) == {}
    with pytest.raises(AssertionError):
        disk.check(setup, [(0, 5000, 0)] * 3)
    disk.teardown(setup)
    assert _temp_dirs(str(tmp_path)) == []


def test_disk_leaves_no_temp_dir_on_failure(tmp_path):
    setup = disk.setup({"tasks": 2, "file_bytes": 100}, str(tmp_path))
    try:
        os.rmdir(setup.state[0])  # make every task fail
        with pytest.raises(OSError):
            disk.task(setup.args[0])
    finally:
        disk.teardown(setup)
    assert _temp_dirs(str(tmp_path)) == []


def test_disk_default_dir_is_cleaned():
    before = set(_temp_dirs(tempfile.gettempdir()))
    setup = disk.setup({"tasks": 1, "file_bytes": 10}, None)
    models.run("threads", disk, setup, 2, None)
    disk.teardown(setup)
    assert set(_temp_dirs(tempfile.gettempdir())) == before


@pytest.mark.parametrize("model", ["sequential", "threads", "asyncio", "asyncio_to_thread"])
def test_in_process_models_return_every_result(model, tmp_path):
    setup = cpu.setup({"task_s": 0.002, "tasks": 5}, str(tmp_path))
    results, extra = models.run(model, cpu, setup, 2, None)
    assert cpu.check(setup, results) == {}
    if model in ("threads", "asyncio_to_thread"):
        assert extra["startup_s"] >= 0


def test_not_applicable_reasons():
    import concurrent.futures  # noqa: PLC0415

    reason = models.not_applicable_reason("interpreters", cpu)
    if hasattr(concurrent.futures, "InterpreterPoolExecutor"):
        assert reason is None
    else:
        assert "3.14" in reason
    assert models.not_applicable_reason("threads", cpu) is None


GOOD = {"cell_id": "c", "workload": "cpu_bound", "implementation": "cpu", "model": "threads",
        "workers": 2, "params": {"task_s": 0.1}, "warmups": 1, "repeats": 3, "timeout_s": 60}


def test_parse_plan_accepts_the_documented_plan():
    plan = agent_plan.parse_plan({"protocol": 2, "keepalive_s": 5, "cells": [GOOD]})
    assert plan.keepalive_s == 5.0
    assert plan.cells[0].model == "threads" and plan.cells[0].params == {"task_s": 0.1}


@pytest.mark.parametrize("bad", [
    [], {"protocol": 4, "cells": []}, {"protocol": 1, "cells": []}, {"protocol": 2},
    {"protocol": 2, "cells": {}},
    {"protocol": 2, "keepalive_s": 0, "cells": []},
    {"protocol": 2, "cells": [dict(GOOD, workers=0)]},
    {"protocol": 2, "cells": [dict(GOOD, workers=True)]},
    {"protocol": 2, "cells": [dict(GOOD, implementation="../evil")]},
    {"protocol": 2, "cells": [dict(GOOD, repeats=0)]},
    {"protocol": 2, "cells": [dict(GOOD, params={"x": [1]})]},
    {"protocol": 2, "cells": [{k: v for k, v in GOOD.items() if k != "timeout_s"}]},
])
def test_parse_plan_rejects(bad):
    with pytest.raises(agent_plan.PlanError):
        agent_plan.parse_plan(bad)


def test_one_line_error_unwraps_groups():
    err = RuntimeError("outer")
    err.exceptions = [ValueError("inner\nline")]
    assert output.one_line_error(err) == "ValueError: inner line"
