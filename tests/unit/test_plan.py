"""The planner: content-derived ids, worker resolution, option checks, profile ids."""

from __future__ import annotations

import pytest

from harness.catalog import load_catalog
from harness.errors import OptionError
from harness.plan import (
    PROFILES,
    check_models,
    env_id,
    plan_cells,
    plan_document,
    profile_id,
    select_workloads,
)


def cells_for(host: str, python: str, cpus: int = 2, models=()):
    catalog = load_catalog()
    return plan_cells(catalog.values(), PROFILES["quick"], host=host, python=python,
                      usable_cpus=cpus, models=models)


def test_ids_are_content_derived_and_stable() -> None:
    a = cells_for("h1", "python3")
    b = cells_for("h1", "python3")
    assert [c.cell_id for c in a] == [c.cell_id for c in b]
    assert len({c.cell_id for c in a}) == len(a)
    other_host = cells_for("h2", "python3")
    assert [c.cell_key for c in a] == [c.cell_key for c in other_host]
    assert not {c.cell_id for c in a} & {c.cell_id for c in other_host}


def test_workers_follow_usable_cpus_for_process_models() -> None:
    one = {(c.workload, c.model): c.workers for c in cells_for("h", "p", cpus=1)}
    two = {(c.workload, c.model): c.workers for c in cells_for("h", "p", cpus=2)}
    assert one[("cpu_bound", "processes")] == 1
    assert two[("cpu_bound", "processes")] == 2
    assert all(w == 1 for (_, m), w in one.items() if m == "sequential")


def test_model_filter_keeps_sequential() -> None:
    assert check_models(["threads"]) == ("sequential", "threads")
    cells = cells_for("h", "p", models=check_models(["threads"]))
    assert {c.model for c in cells} == {"sequential", "threads"}
    with pytest.raises(OptionError, match="'fibers'"):
        check_models(["fibers"])


def test_unknown_workload_is_an_option_error() -> None:
    with pytest.raises(OptionError, match="'nope'"):
        select_workloads(load_catalog(), ["nope"])


def test_plan_document_is_what_the_agent_reads() -> None:
    doc = plan_document(cells_for("h", "p")[:2])
    assert doc["protocol"] == 1
    cell = doc["cells"][0]
    assert set(cell) == {"cell_id", "workload", "implementation", "model", "workers", "params",
                         "warmups", "repeats", "timeout_s", "min_repeats", "max_repeats",
                         "target_rel_ci", "budget_s"}


def test_profile_and_env_ids() -> None:
    env = {"arch": "x86_64", "cpu_model": "X", "usable_cpus": 2, "numa_nodes": 1,
           "numa_cpus": ["0-1"], "python_version": "3.11.7", "implementation": "CPython",
           "free_threaded": False, "mem_total_bytes": 24 * 2**30, "hostname": "a"}
    same_box_other_name = dict(env, hostname="b", mem_total_bytes=24 * 2**30 - 4096)
    assert profile_id(env) == profile_id(same_box_other_name)
    assert profile_id(env) != profile_id(dict(env, usable_cpus=1))
    assert profile_id(env) != profile_id(dict(env, free_threaded=True))
    assert env_id("s1", "h", "p") == env_id("s1", "h", "p") != env_id("s2", "h", "p")
