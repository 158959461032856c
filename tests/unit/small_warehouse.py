"""A warehouse of one-cell sweeps for the file-index and view-cache tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.warehouse import Warehouse

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def rows(model: str, xs: list[float]) -> list[dict[str, object]]:
    return [{"workload": "cpu_bound", "params": {"n": 1}, "model": model, "workers": 1,
             "repeat": i, "warmup": False, "headline": True, "wall_s": x, "ok": True,
             "status": "ok", "extra": {}} for i, x in enumerate(xs)]


def sweep(w: Warehouse, sid: str, hours: int, wall: float) -> None:
    """Sweep ``sid``, started ``hours`` after T0: one environment, one cell of 3 repeats."""
    w.begin_sweep(sid, started_at=T0 + timedelta(hours=hours), harness_version="0",
                  inventory="i", profile="quick", plan={})
    w.add_environment(sid, {"host": "h", "python": "python3", "env_id": "e1",
                            "profile_id": "p1"})
    w.add_cell(sid, "e1", "c1", rows("sequential", [wall, wall, wall]))


def two_sweeps(root: Path) -> Warehouse:
    w = Warehouse(root)
    sweep(w, "s1", 0, 1.0)
    sweep(w, "s2", 1, 2.0)
    return w
