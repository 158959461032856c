"""Calibration kept between sweeps: the loop rate each environment measured.

The CPU-bound and transfer workloads size their loop as ``n = task_s x cpu_rate``,
with ``cpu_rate`` the host's iterations per second of the task. Measured afresh in
every sweep, that rate wanders by a few percent, so two sweeps would time different
``n`` and their medians would not be the same quantity (pyperf keeps its calibrated
``loops`` in its result file for the same reason). So the first sweep of an
environment stores the rate it measured, and later sweeps of the same host,
interpreter and hardware profile send it to the agent as a plan *hint*; the cells'
params then say ``"calibration": "reused"``. ``harness sweep --recalibrate``
measures again and replaces the stored rate.

Layout: ``<results>/calibration/<digest>.json``, one small JSON file per host x
interpreter x profile_id, written atomically (temp file, fsync, rename). Deleting
the directory only makes the next sweep measure again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.files import write_atomic
from harness.plan.cells import digest, profile_id

HINT_KEYS = ("cpu_rate",)  # the params the agent records and accepts back as hints
DIRECTORY = "calibration"


class CalibrationStore:
    """The stored hints of each environment under a results directory."""

    def __init__(self, results: Path) -> None:
        self.directory = Path(results) / DIRECTORY

    def _path(self, host: str, python: str, env: Mapping[str, Any]) -> Path:
        return self.directory / f"{digest(host, python, profile_id(env))}.json"

    def load(self, host: str, python: str, env: Mapping[str, Any]) -> dict[str, float]:
        """The hints stored for this environment; empty when none (or unreadable)."""
        try:
            data = json.loads(self._path(host, python, env).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        hints = data.get("hints") if isinstance(data, dict) else None
        if not isinstance(hints, dict):
            return {}
        return {k: float(v) for k, v in hints.items()
                if k in HINT_KEYS and _finite_positive(v)}

    def save(self, host: str, python: str, env: Mapping[str, Any], hints: Mapping[str, float],
             sweep_id: str) -> None:
        """Store ``hints`` for this environment (replacing what was there)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self._path(host, python, env)
        body = json.dumps({"host": host, "python": python, "profile_id": profile_id(env),
                           "sweep_id": sweep_id, "hints": dict(hints)}, sort_keys=True)
        write_atomic(final, body)


def measured_hints(params: Mapping[str, Any]) -> dict[str, float]:
    """The hints a cell's resolved params carry when its agent measured them itself."""
    if params.get("calibration") != "measured":
        return {}
    return {k: float(params[k]) for k in HINT_KEYS if _finite_positive(params.get(k))}


def _finite_positive(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)
