"""Dimension specs in workload TOMLs: validation (WorkloadError naming file and field) and
the cells the planner makes of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import WorkloadError
from harness.plan.catalog import load_catalog, load_workload_file
from harness.plan.cells import PROFILES, plan_cells

IMPL_DIR = Path(__file__).resolve().parents[2] / "workloads"

BASE = """
name = "w"
title = "W"
implementation = "cpu"
models = ["sequential", "threads", "processes"]
[params]
task_s = 0.1
tasks = 8
"""


def load(tmp_path: Path, extra: str):
    path = tmp_path / "w.toml"
    path.write_text(BASE + extra)
    return load_workload_file(path, IMPL_DIR)


@pytest.mark.parametrize(("extra", "message"), [
    ("[dimensions.d]\nvary = 'nope'\nvalues = [1]\n", "dimensions.d.vary"),
    ("[dimensions.d]\nvary = 'workers'\nvalues = [0]\n", "dimensions.d.values"),
    ("[dimensions.d]\nvary = 'workers'\nquick = ['3cpus']\n", "dimensions.d.quick"),
    ("[dimensions.d]\nvary = 'task_s'\nvalues = [-1.0]\n", "negative"),
    ("[dimensions.d]\nvary = 'chunksize'\nvalues = [0]\n", "chunksize must be"),
    ("[dimensions.d]\nvary = 'start_method'\nvalues = ['vfork']\n", "start_method must be"),
    ("[dimensions.d]\nvary = 'gil'\nvalues = [2]\n", "gil must be"),
    ("[dimensions.d]\nvary = 'pinning'\nvalues = ['tight']\n", "pinning must be"),
    ("[dimensions.d]\nvary = 'task_s'\nmodels = ['asyncio']\nvalues = [1.0]\n",
     "dimensions.d.models"),
    ("[dimensions.d]\nvary = 'task_s'\nset = { bogus = 1 }\nvalues = [1.0]\n",
     "dimensions.d.set.bogus"),
    ("[dimensions.d]\nvary = 'task_s'\n", "values = [...]"),
    ("[dimensions.d]\nvary = 'task_s'\nvalues = [1.0]\nstep = 2\n", "dimensions.d.step"),
    ("[dimensions.d]\nvary = 'workers'\nworkers = 2\nvalues = [1]\n", "dimensions.d.workers"),
])
def test_bad_dimensions_name_file_and_field(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(WorkloadError) as err:
        load(tmp_path, extra)
    assert "w.toml" in str(err.value) and message in str(err.value)


def test_headline_false_needs_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text("headline = false\n" + BASE)
    with pytest.raises(WorkloadError, match="w.toml: headline = false needs"):
        load_workload_file(path, IMPL_DIR)
    path.write_text("headline = 'no'\n" + BASE)
    with pytest.raises(WorkloadError, match="'headline'"):
        load_workload_file(path, IMPL_DIR)


def test_points_per_profile_and_values_default(tmp_path: Path) -> None:
    w = load(tmp_path, "[dimensions.d]\nvary = 'task_s'\nvalues = [0.1, 1.0]\nquick = [0.01]\n")
    dim = w.dimensions["d"]
    assert dim.points_for("quick") == (0.01,)
    assert dim.points_for("standard") == (0.1, 1.0)


def test_dimension_cells_are_extra_and_the_headline_is_unchanged() -> None:
    catalog = load_catalog()
    headline_only = plan_cells(catalog.values(), PROFILES["quick"], host="h", python="p",
                               usable_cpus=2)
    both = plan_cells(catalog.values(), PROFILES["quick"], host="h", python="p",
                      usable_cpus=2, dimensions=True)
    heads = [c for c in both if c.headline]
    assert [c.cell_id for c in heads] == [c.cell_id for c in headline_only]
    assert all("dimension" not in c.params for c in heads)
    extra = [c for c in both if not c.headline]
    assert extra and all(c.params.get("dimension") for c in extra)
    assert len({c.cell_id for c in both}) == len(both)
    # new workloads with headline = false never reach the matrix
    assert {c.workload for c in heads} == {"cpu_bound", "net_low_latency", "net_high_latency",
                                           "disk_io"}
    # the quick profile has fewer points than standard
    std = plan_cells(catalog.values(), PROFILES["standard"], host="h", python="p",
                     usable_cpus=2, dimensions=True)
    assert len(std) > len(both)


def test_workers_dimension_oversubscribes_and_every_point_has_a_baseline() -> None:
    catalog = load_catalog()
    cells = plan_cells([catalog["cpu_bound"]], PROFILES["quick"], host="h", python="p",
                       usable_cpus=2, dimensions=True)
    workers = sorted({c.workers for c in cells if c.params.get("dimension") == "workers"
                      and c.model == "processes"})
    assert workers == [1, 2, 4]  # "2cpus" = 4 on two CPUs
    for dim in ("task_duration", "chunksize", "gil"):
        points = {}
        for c in cells:
            if c.params.get("dimension") == dim:
                key = tuple(sorted((k, v) for k, v in c.params.items()))
                points.setdefault(key, set()).add(c.model)
        assert points and all("sequential" in models for models in points.values()), dim
    gil = [c for c in cells if c.params.get("dimension") == "gil"]
    assert {dict(c.env)["PYTHON_GIL"] for c in gil} == {"0", "1"}
    assert all(c.to_plan()["env"] == {"PYTHON_GIL": str(c.params["gil"])} for c in gil)


def test_calibration_fields_follow_the_profile() -> None:
    catalog = load_catalog()
    cells = plan_cells([catalog["cpu_bound"]], PROFILES["standard"], host="h", python="p",
                       usable_cpus=2, dimensions=True)
    head = next(c for c in cells if c.headline)
    assert (head.min_repeats, head.target_rel_ci) == (PROFILES["standard"].repeats, 0.02)
    assert head.max_repeats >= head.min_repeats and head.budget_s
    dim = next(c for c in cells if not c.headline)
    assert dim.budget_s == PROFILES["standard"].dim_budget_s
