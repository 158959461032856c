"""The planner: content-derived ids, worker resolution, option checks, profile ids."""

from __future__ import annotations

import pytest

from harness.agent.protocol import PROTOCOL_VERSION
from harness.errors import OptionError
from harness.plan.catalog import load_catalog
from harness.plan.cells import (
    PROFILES,
    canonical_json,
    check_models,
    env_id,
    get_profile,
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
    assert doc["protocol"] == PROTOCOL_VERSION == 3
    cell = doc["cells"][0]
    assert set(cell) == {"cell_id", "workload", "implementation", "model", "workers", "params",
                         "warmups", "repeats", "timeout_s", "min_repeats", "max_repeats",
                         "target_rel_ci", "budget_s", "group"}


def test_cells_of_one_baseline_share_a_group_and_run_together() -> None:
    cells = plan_cells(load_catalog().values(), get_profile("standard"), host="h", python="p",
                       usable_cpus=2, dimensions=True)
    groups: dict[str, list] = {}
    order: list[str] = []
    for cell in cells:
        if not order or order[-1] != cell.group:
            assert cell.group not in groups, "a group's cells are next to each other"
            order.append(cell.group)
        groups.setdefault(cell.group, []).append(cell)
    for members in groups.values():
        # one workload at one set of params, at most one sequential baseline
        assert len({(c.workload, canonical_json(dict(c.params))) for c in members}) == 1
        assert sum(c.model == "sequential" for c in members) <= 1
    headline = [c for c in cells if c.headline and c.workload == "cpu_bound"]
    assert len({c.group for c in headline}) == 1
    workers_dim = [c for c in cells if c.params.get("dimension") == "workers"
                   and c.workload == "cpu_bound"]
    assert len({c.group for c in workers_dim}) == 1
    assert len({c.workers for c in workers_dim}) > 2
    # the same group on another host: groups pool by profile like cell keys
    other = plan_cells(load_catalog().values(), get_profile("standard"), host="h2",
                       python="p", usable_cpus=2, dimensions=True)
    assert [c.group for c in other] == [c.group for c in cells]


def test_later_runs_carry_earlier_blocks_as_prior() -> None:
    cell = cells_for("h", "p")[0]
    first = cell.to_plan(run=1, runs=3)
    assert "prior" not in first and first["max_repeats"] == first["min_repeats"]
    last = cell.to_plan(run=3, prior=[(0, 0.5), (1, 0.25)], runs=3)
    assert last["prior"] == [[0, 0.5], [1, 0.25]]
    assert last["max_repeats"] == cell.max_repeats


def test_profile_and_env_ids() -> None:
    env = {"arch": "x86_64", "cpu_model": "X", "usable_cpus": 2, "numa_nodes": 1,
           "numa_cpus": ["0-1"], "python_version": "3.11.7", "implementation": "CPython",
           "free_threaded": False, "mem_total_bytes": 24 * 2**30, "hostname": "a"}
    same_box_other_name = dict(env, hostname="b", mem_total_bytes=24 * 2**30 - 4096)
    assert profile_id(env) == profile_id(same_box_other_name)
    assert profile_id(env) != profile_id(dict(env, usable_cpus=1))
    assert profile_id(env) != profile_id(dict(env, free_threaded=True))
    assert env_id("s1", "h", "p") == env_id("s1", "h", "p") != env_id("s2", "h", "p")


def test_repeats_are_spread_over_the_profiles_runs() -> None:
    """standard spreads each group's blocks over 3 agent runs: the first two run their
    share of the minimum, the last goes on, counting their blocks, until the calibration
    stops."""
    from harness.plan.cells import PROFILES, plan_cells, plan_document

    assert PROFILES["quick"].runs == 1 and PROFILES["standard"].runs == 3
    cells = plan_cells([load_catalog()["cpu_bound"]], PROFILES["standard"], host="h",
                       python="p", usable_cpus=2)
    c = next(x for x in cells if x.model == "threads")
    assert (c.min_repeats, c.max_repeats, c.budget_s) == (8, 13, 5.0)
    first = plan_document([c], run=1, runs=3)["cells"][0]
    assert (first["repeats"], first["min_repeats"], first["max_repeats"]) == (3, 3, 3)
    assert "target_rel_ci" not in first and "budget_s" not in first and "prior" not in first
    # run 2 gets run 1's blocks as prior and counts them: it stops at two shares
    second = plan_document([c], run=2, runs=3, prior={c.cell_id: [(0, 0.5), (1, 0.5),
                                                                    (2, 0.5)]})["cells"][0]
    assert (second["min_repeats"], second["max_repeats"]) == (6, 6)
    assert second["prior"] == [[0, 0.5], [1, 0.5], [2, 0.5]]
    prior = [(b, 0.5) for b in range(6)]
    last = plan_document([c], run=3, runs=3, prior={c.cell_id: prior})["cells"][0]
    assert (last["min_repeats"], last["max_repeats"], last["target_rel_ci"]) == (8, 13, 0.02)
    assert last["prior"] == [[b, 0.5] for b in range(6)] and last["budget_s"] == 5.0 / 3
    # one run (quick, or the ansible engine): the cell as planned, no prior
    whole = plan_document([c])["cells"][0]
    assert (whole["min_repeats"], whole["max_repeats"], whole["budget_s"]) == (8, 13, 5.0)
    assert "prior" not in whole


def _both_inside_rate(n: int, pairs: int, seed: int) -> float:
    """How often two sweeps of one unchanged machine, ``n`` blocks each, have each
    median inside the other's interval (block ratios drawn from one heavy-tailed law)."""
    import random

    from harness.agent.stats import median, median_ci

    rng = random.Random(seed)

    def draw() -> list[float]:  # Student t with 4 degrees of freedom, around 1.0
        return [1.0 + 0.05 * rng.gauss(0, 1) / (sum(rng.gauss(0, 1) ** 2 for _ in range(4))
                                                / 4) ** 0.5 for _ in range(n)]

    hits = 0
    for _ in range(pairs):
        a, b = draw(), draw()
        (alo, ahi), (blo, bhi) = median_ci(a), median_ci(b)
        hits += alo <= median(b) <= ahi and blo <= median(a) <= bhi
    return hits / pairs


def test_every_group_runs_enough_blocks_for_intervals_that_repeat() -> None:
    """MIN_BLOCKS: below it a second sweep of the same machine misses the first's
    intervals too often (the rates in plan/cells.py); every profile plans at least that
    many blocks for every cell, headline and dimension."""
    from harness.agent.stats import median_ci_level
    from harness.plan.cells import MIN_BLOCKS

    assert _both_inside_rate(MIN_BLOCKS - 3, 3000, 1) < 0.80
    assert _both_inside_rate(MIN_BLOCKS, 3000, 1) >= 0.90
    assert median_ci_level(MIN_BLOCKS) >= 0.95
    catalog = load_catalog()
    for profile in PROFILES.values():
        cells = plan_cells(catalog.values(), profile, host="h", python="p", usable_cpus=2,
                           dimensions=True)
        assert cells and min(c.min_repeats for c in cells) >= MIN_BLOCKS, profile.name
