"""The workload catalogue: valid definitions load, invalid ones are one-line WorkloadErrors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import WorkloadError
from harness.plan.catalog import MODELS, WORKLOADS_DIR, load_catalog, load_workload_file

GOOD = """
name = "toy"
title = "Toy"
implementation = "cpu"
models = ["sequential", "threads", "processes"]
[params]
task_s = 0.01
tasks = 4
[workers]
default = "cpus"
threads = "tasks"
[profiles.quick.params]
task_s = 0.002
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "toy.toml"
    path.write_text(text)
    return path


def test_catalogue_has_the_guides_rows() -> None:
    catalog = load_catalog()
    assert {"cpu_bound", "net_low_latency", "net_high_latency", "disk_io"} <= set(catalog)
    for workload in catalog.values():
        assert workload.models[0] == "sequential"
        assert set(workload.models) <= set(MODELS)
        assert (WORKLOADS_DIR / f"{workload.implementation}.py").is_file()


def test_good_definition_and_profile_override(tmp_path: Path) -> None:
    w = load_workload_file(write(tmp_path, GOOD), impl_dir=WORKLOADS_DIR)
    assert w.params_for("quick") == {"task_s": 0.002, "tasks": 4}
    assert w.params_for("standard") == {"task_s": 0.01, "tasks": 4}
    assert w.workers_for("processes", w.params_for("quick"), usable_cpus=3) == 3
    assert w.workers_for("threads", w.params_for("quick"), usable_cpus=3) == 4
    with pytest.raises(TypeError):
        w.params["tasks"] = 5  # type: ignore[index]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda s: s.replace('name = "toy"\n', ""), "missing field 'name'"),
        (lambda s: s.replace('"processes"]', '"fibers"]'), "unknown model 'fibers'"),
        (lambda s: s.replace("task_s = 0.01", "task_s = -0.01"), "negative"),
        (lambda s: s.replace("tasks = 4", "tasks = -4"), "whole number"),
        (lambda s: s.replace("tasks = 4", 'tasks = "four"'), "whole number"),
        (lambda s: s.replace("task_s = 0.01", "task_s = 99999.0"), "absurd"),
        (lambda s: s.replace('implementation = "cpu"', 'implementation = "nope"'), "no module"),
        (lambda s: s.replace('threads = "tasks"', "threads = 0"), "workers.threads"),
        (lambda s: s.replace("[profiles.quick.params]", "[profiles.fast.params]"),
         "unknown profile"),
        (lambda s: "colour = 3\n" + s, "unknown field 'colour'"),
        (lambda s: s.replace('["sequential", ', '['), "must include 'sequential'"),
        (lambda s: s.replace("[params]", "[params\n"), "not valid TOML"),
    ],
)
def test_bad_definitions_name_file_and_field(tmp_path: Path, change, needle: str) -> None:
    path = write(tmp_path, change(GOOD))
    with pytest.raises(WorkloadError) as info:
        load_workload_file(path, impl_dir=WORKLOADS_DIR)
    message = str(info.value)
    assert needle in message
    assert str(path) in message
    assert "\n" not in message.strip() or "TOML" in message


def test_a_profile_may_set_its_own_worker_counts(tmp_path: Path) -> None:
    w = load_workload_file(write(tmp_path, GOOD + "[profiles.standard.workers]\n"
                                                  "processes = 12\n"), WORKLOADS_DIR)
    params = w.params_for("standard")
    assert w.workers_for("processes", params, 2, "standard") == 12
    assert w.workers_for("processes", params, 2, "quick") == 2  # the workload's "cpus"
    assert w.workers_for("threads", params, 2, "standard") == 4  # not overridden: "tasks"
    for bad, needle in (("[profiles.standard.workers]\nfibers = 2\n", "unknown model"),
                        ("[profiles.standard.workers]\nprocesses = 0\n", "processes = 0"),
                        ("[profiles.standard.cpus]\nx = 1\n", "params and a workers")):
        with pytest.raises(WorkloadError, match=needle):
            load_workload_file(write(tmp_path, GOOD + bad), WORKLOADS_DIR)
