"""From workloads × models × a profile to the cells one environment runs.

A *cell* is one workload at one set of params, under one model, with one worker
count, on one environment (host × interpreter). Its ``cell_key`` is derived from
its content alone (workload, params, model, workers), so the same cell on two
hosts shares a key and pools by profile; its ``cell_id`` adds the host and the
interpreter, so a resumed sweep recognises what it already ran.

*Headline* cells are each workload at its default params and worker counts (the
matrix). *Dimension* cells (``dimensions=True``) come from each workload's
``[dimensions]`` table: one thing varied at a time around the defaults, the
dimension's name in ``params.dimension`` and its value in ``params`` (or in
``workers``), ``headline=False``; a sequential baseline at the same params is
added for every point. Every cell carries the calibration of its profile
(``min_repeats``, ``max_repeats``, ``target_rel_ci``, ``budget_s``): the agent
stops repeating once the 95% interval of the median is that narrow, or the
budget is spent. A cell with ``params.gil`` carries ``env = {"PYTHON_GIL": ...}``:
the agent runs it in a child process with that variable set.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from harness.agent.protocol import PROTOCOL_VERSION
from harness.errors import OptionError
from harness.plan.catalog import MODELS, Workload, resolve_workers


@dataclass(frozen=True)
class Profile:
    """How hard a sweep measures: warmups, repeats, calibration and the per-cell timeout.

    ``repeats`` is the minimum of timed repeats of a headline cell; the agent goes on
    up to ``max_repeats`` until the median's 95% interval is at most ``target_rel_ci``
    of the median wide, or ``budget_s`` of the cell's time is spent. Dimension cells
    use ``dim_repeats`` and ``dim_budget_s``. ``dimensions`` is whether a sweep plans
    the dimension cells by default. ``runs`` is over how many agent processes a cell's
    repeats are spread (pyperf's processes): a process's state -- memory layout, what
    it ran before, the host at that moment -- shifts all its timings alike, so an
    interval from one process understates how far another run can land.
    """

    name: str
    warmups: int
    repeats: int
    timeout_s: float
    max_repeats: int = 0
    target_rel_ci: float | None = None
    budget_s: float | None = None
    dim_repeats: int = 3
    dim_max_repeats: int = 0
    dim_budget_s: float | None = None
    dimensions: bool = False
    runs: int = 1


# The fewest blocks any group runs. A speedup's interval is the order-statistic interval
# of the median block ratio; with n blocks it is [min, max] up to n = 10, whose coverage
# is 1 - 2^(1-n): below 95% for n < 6. And a second sweep of an unchanged machine lands
# inside the first's interval (each in the other's) only as often as the interval is
# wide against the median's spread: simulated (heavy-tailed ratios, 20,000 pairs per n)
# 72% at n = 5, 83% at 6, 87% at 7, 92% at 8, 95% at 9 (tests/unit/test_plan.py
# reproduces it). Fewer than 8 blocks give intervals a user cannot rely on to repeat.
MIN_BLOCKS = 8

PROFILES: Mapping[str, Profile] = MappingProxyType({
    "quick": Profile("quick", warmups=1, repeats=8, timeout_s=120.0, max_repeats=13,
                     target_rel_ci=0.05, budget_s=3.0, dim_repeats=8, dim_max_repeats=9,
                     dim_budget_s=1.0, dimensions=False),
    "standard": Profile("standard", warmups=1, repeats=8, timeout_s=600.0, max_repeats=13,
                        target_rel_ci=0.02, budget_s=5.0, dim_repeats=8, dim_max_repeats=10,
                        dim_budget_s=2.0, dimensions=True, runs=3),
    "full": Profile("full", warmups=2, repeats=15, timeout_s=1800.0, max_repeats=30,
                    target_rel_ci=0.01, budget_s=60.0, dim_repeats=9, dim_max_repeats=25,
                    dim_budget_s=20.0, dimensions=True, runs=3),
})


@dataclass(frozen=True)
class Cell:
    """One planned cell; ``params`` are the plan-level params (before the agent resolves)."""

    cell_id: str
    cell_key: str
    workload: str
    implementation: str
    model: str
    workers: int
    params: Mapping[str, Any]
    warmups: int
    repeats: int
    timeout_s: float
    headline: bool
    min_repeats: int | None = None
    max_repeats: int | None = None
    target_rel_ci: float | None = None
    budget_s: float | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    group: str = ""

    def to_plan(self, run: int = 1, prior: Sequence[tuple[int, float]] = (),
                runs: int = 1) -> dict[str, Any]:
        """The cell as the agent's plan file holds it, for agent run ``run`` of ``runs``
        (the sweep decides how many: its profile's ``runs`` on the ssh engine).

        The repeat counts are counts of blocks of the cell's group (one timed repeat of
        every cell of the group per block). A run before the last runs its share of the
        minimum blocks, no more (its counts include the earlier runs' blocks, as the agent
        counts them); the last goes on, counting the earlier runs' blocks, until the
        calibration stops it. ``prior`` are the earlier runs' timed samples of this
        cell as ``(block, wall_s)``: the agent numbers its blocks on from them and, in the
        last run, counts them.
        """
        plan: dict[str, Any] = {
            "cell_id": self.cell_id,
            "workload": self.workload,
            "implementation": self.implementation,
            "model": self.model,
            "workers": self.workers,
            "params": dict(self.params),
            "warmups": self.warmups,
            "repeats": self.repeats,
            "timeout_s": self.timeout_s,
        }
        if self.group:
            plan["group"] = self.group
        if prior:
            plan["prior"] = [[int(b), float(x)] for b, x in prior]
        for key in ("min_repeats", "max_repeats", "target_rel_ci", "budget_s"):
            if getattr(self, key) is not None:
                plan[key] = getattr(self, key)
        if self.env:
            plan["env"] = dict(self.env)
        if runs > 1 and run < runs:
            # the agent counts the earlier runs' blocks (prior): run r stops at r shares
            share = max(1, math.ceil((self.min_repeats or self.repeats) / runs)) * run
            plan.update(repeats=share, min_repeats=share, max_repeats=share)
            plan.pop("target_rel_ci", None)
            plan.pop("budget_s", None)
        elif runs > 1 and self.budget_s is not None:
            plan["budget_s"] = self.budget_s / runs
        return plan


def group_id(workload: str, params: Mapping[str, Any]) -> str:
    """The id of a group: the cells of one workload at one set of params (a sequential
    baseline and every model at every worker count) share it, and run interleaved in
    blocks. The same on every host, like ``cell_key``."""
    return digest("group", workload, params, size=12)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def digest(*parts: Any, size: int = 16) -> str:
    """A short stable hex digest of ``parts`` (JSON-encoded)."""
    return hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()[:size]


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise OptionError(
            f"--profile {name!r} is not a profile", hint=f"use one of {', '.join(PROFILES)}"
        ) from None


def select_workloads(
    catalog: Mapping[str, Workload], names: Sequence[str] | None
) -> tuple[Workload, ...]:
    """The named workloads (all when ``names`` is empty); unknown names are OptionErrors."""
    if not names:
        return tuple(catalog.values())
    unknown = [n for n in names if n not in catalog]
    if unknown:
        raise OptionError(
            f"--workload {unknown[0]!r} is not in the catalogue",
            hint=f"known workloads: {', '.join(catalog)}",
        )
    return tuple(catalog[n] for n in dict.fromkeys(names))


def check_models(names: Sequence[str] | None) -> tuple[str, ...]:
    """Validate ``--model`` values; empty means every model."""
    if not names:
        return ()
    for name in names:
        if name not in MODELS:
            raise OptionError(f"--model {name!r} is not a model",
                              hint=f"known models: {', '.join(MODELS)}")
    models = tuple(dict.fromkeys(names))
    # A speedup needs its baseline: keep sequential whenever models are filtered.
    return models if "sequential" in models else ("sequential",) + models


def check_dimensions(workloads: Sequence[Workload],
                     names: Sequence[str] | None) -> tuple[str, ...]:
    """Validate ``--dimension`` values against the selected workloads; empty means every
    dimension."""
    if not names:
        return ()
    known = list(dict.fromkeys(d for w in workloads for d in w.dimensions))
    for name in names:
        if name not in known:
            raise OptionError(f"--dimension {name!r} is not a dimension of the selected "
                              "workloads", hint=f"known dimensions: {', '.join(known)}")
    return tuple(dict.fromkeys(names))


def _calibration(profile: Profile, headline: bool) -> dict[str, Any]:
    if headline:
        low = profile.repeats
        high = max(low, profile.max_repeats)
        budget = profile.budget_s
    else:
        low = min(profile.repeats, profile.dim_repeats)
        high = max(low, profile.dim_max_repeats)
        budget = profile.dim_budget_s
    return {"min_repeats": low, "max_repeats": high, "target_rel_ci": profile.target_rel_ci,
            "budget_s": budget}


def _cell(workload: Workload, profile: Profile, host: str, python: str, model: str,
          workers: int, params: Mapping[str, Any], *, headline: bool) -> Cell:
    """One cell; its key is derived from its content, its id adds the environment.

    A ``gil`` param runs the cell in an agent with that PYTHON_GIL setting.
    """
    key = digest(workload.name, params, model, workers)
    calib = _calibration(profile, headline=headline)
    env = {"PYTHON_GIL": str(params["gil"])} if "gil" in params else {}
    return Cell(
        cell_id=digest(host, python, key),
        cell_key=key,
        workload=workload.name,
        implementation=workload.implementation,
        model=model,
        workers=workers,
        params=MappingProxyType(dict(params)),
        warmups=profile.warmups,
        repeats=calib["min_repeats"],
        timeout_s=profile.timeout_s,
        headline=headline,
        env=MappingProxyType(env),
        group=group_id(workload.name, params),
        **calib,
    )


def dimension_cells(
    workload: Workload,
    profile: Profile,
    *,
    host: str,
    python: str,
    usable_cpus: int,
    models: Sequence[str] = (),
    seen: set[str] | None = None,
    names: Sequence[str] = (),
) -> list[Cell]:
    """The dimension cells of ``workload`` for one environment (``seen``: keys to skip;
    ``names``: only these dimensions, empty: every one)."""
    seen = set() if seen is None else seen
    base = workload.params_for(profile.name)
    cells: list[Cell] = []
    for dim in workload.dimensions.values():
        if names and dim.name not in names:
            continue
        points = dim.points_for(profile.name)
        if not points:
            continue
        dim_models = [m for m in dim.models if not models or m in models]
        if "sequential" in workload.models and "sequential" not in dim_models:
            dim_models.insert(0, "sequential")  # every point gets its baseline
        for value in points:
            params = dict(base)
            params.update(dim.set)
            if dim.vary != "workers":
                params[dim.vary] = value
            params["dimension"] = dim.name
            for model in dim_models:
                if model == "sequential":
                    workers = 1
                elif dim.vary == "workers":
                    workers = resolve_workers(value, params, usable_cpus)
                elif dim.workers is not None:
                    workers = resolve_workers(dim.workers, params, usable_cpus)
                else:
                    workers = workload.workers_for(model, params, usable_cpus, profile.name)
                cell = _cell(workload, profile, host, python, model, workers, params,
                             headline=False)
                if cell.cell_key in seen:
                    continue
                seen.add(cell.cell_key)
                cells.append(cell)
    return cells


def plan_cells(
    workloads: Iterable[Workload],
    profile: Profile,
    *,
    host: str,
    python: str,
    usable_cpus: int,
    models: Sequence[str] = (),
    dimensions: bool = False,
    dimension_names: Sequence[str] = (),
) -> tuple[Cell, ...]:
    """The cells of ``workloads`` for one environment, in run order.

    The headline cells first (all workloads), then, with ``dimensions``, every
    workload's dimension cells (only those named in ``dimension_names`` when given);
    the cells of one group next to each other, in the order groups first appear.
    """
    workloads = tuple(workloads)
    cells: list[Cell] = []
    for workload in workloads:
        if not workload.headline:
            continue
        params = workload.params_for(profile.name)
        for model in workload.models:
            if models and model not in models:
                continue
            workers = 1 if model == "sequential" else workload.workers_for(
                model, params, usable_cpus, profile.name)
            cells.append(_cell(workload, profile, host, python, model, workers, params,
                               headline=True))
    if dimensions:
        seen = {c.cell_key for c in cells}
        for workload in workloads:
            cells.extend(dimension_cells(workload, profile, host=host, python=python,
                                         usable_cpus=usable_cpus, models=models, seen=seen,
                                         names=dimension_names))
    return by_group(cells)


def by_group(cells: Iterable[Cell]) -> tuple[Cell, ...]:
    """``cells`` with each group's cells together, groups in order of first appearance."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.group or cell.cell_id, []).append(cell)
    return tuple(c for group in groups.values() for c in group)


def plan_document(cells: Iterable[Cell], keepalive_s: float = 5.0,
                  hints: Mapping[str, float] | None = None, run: int = 1, runs: int = 1,
                  prior: Mapping[str, Sequence[tuple[int, float]]] | None = None,
                  seed: str | None = None) -> dict[str, Any]:
    """The JSON plan the agent's ``run`` command reads (``hints``: calibration an earlier
    sweep measured on this environment, see harness.plan.calibration; ``run``: which agent
    run of ``runs`` this is, ``prior``: the cells' earlier timed samples as
    ``(block, wall_s)``; ``seed``: of the blocks' random orders)."""
    prior = prior or {}
    plan: dict[str, Any] = {"protocol": PROTOCOL_VERSION, "keepalive_s": keepalive_s,
                            "cells": [c.to_plan(run, prior.get(c.cell_id, ()), runs)
                                      for c in cells]}
    if hints:
        plan["hints"] = dict(hints)
    if seed is not None:
        plan["seed"] = seed
    return plan


def env_id(sweep_id: str, host: str, python: str) -> str:
    """The id of one host × interpreter in one sweep (stable across resumes)."""
    return digest(sweep_id, host, python)


PROFILE_FIELDS = (
    "arch", "cpu_model", "usable_cpus", "numa_nodes", "numa_cpus",
    "python_version", "implementation", "free_threaded",
)


def profile_id(env: Mapping[str, Any]) -> str:
    """A stable hash of the hardware and build fields of a fingerprint.

    Memory is rounded to whole GiB, since identical machines differ by a few
    pages of kernel reservations.
    """
    facts = {name: env.get(name) for name in PROFILE_FIELDS}
    mem = env.get("mem_total_bytes")
    facts["mem_gib"] = round(mem / (1 << 30)) if isinstance(mem, int) else None
    return digest(facts, size=12)
