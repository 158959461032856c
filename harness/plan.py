"""From workloads × models × a profile to the cells one environment runs.

A *cell* is one workload at one set of params, under one model, with one worker
count, on one environment (host × interpreter). Its ``cell_key`` is derived from
its content alone (workload, params, model, workers), so the same cell on two
hosts shares a key and pools by profile; its ``cell_id`` adds the host and the
interpreter, so a resumed sweep recognises what it already ran.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from harness.catalog import MODELS, Workload
from harness.errors import OptionError


@dataclass(frozen=True)
class Profile:
    """How hard a sweep measures: warmups, repeats and the per-cell timeout."""

    name: str
    warmups: int
    repeats: int
    timeout_s: float


PROFILES: Mapping[str, Profile] = MappingProxyType({
    "quick": Profile("quick", warmups=1, repeats=3, timeout_s=120.0),
    "standard": Profile("standard", warmups=1, repeats=7, timeout_s=600.0),
    "full": Profile("full", warmups=2, repeats=15, timeout_s=1800.0),
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

    def to_plan(self) -> dict[str, Any]:
        """The cell as the agent's plan file holds it."""
        return {
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


def plan_cells(
    workloads: Iterable[Workload],
    profile: Profile,
    *,
    host: str,
    python: str,
    usable_cpus: int,
    models: Sequence[str] = (),
) -> tuple[Cell, ...]:
    """The headline cells of ``workloads`` for one environment, in run order."""
    cells: list[Cell] = []
    for workload in workloads:
        params = workload.params_for(profile.name)
        for model in workload.models:
            if models and model not in models:
                continue
            workers = 1 if model == "sequential" else workload.workers_for(
                model, params, usable_cpus)
            key = digest(workload.name, params, model, workers)
            cells.append(Cell(
                cell_id=digest(host, python, key),
                cell_key=key,
                workload=workload.name,
                implementation=workload.implementation,
                model=model,
                workers=workers,
                params=MappingProxyType(dict(params)),
                warmups=profile.warmups,
                repeats=profile.repeats,
                timeout_s=profile.timeout_s,
                headline=True,
            ))
    return tuple(cells)


def plan_document(cells: Iterable[Cell], keepalive_s: float = 5.0) -> dict[str, Any]:
    """The JSON plan the agent's ``run`` command reads."""
    return {"protocol": 1, "keepalive_s": keepalive_s, "cells": [c.to_plan() for c in cells]}


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
