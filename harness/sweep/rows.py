"""The warehouse rows a sweep writes: a finished cell's measurements (one per sample)
and an environment's row (ok, incomplete or failed, with its fingerprint)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from harness.plan.cells import Cell, canonical_json, profile_id
from harness.plan.inventory import Host


def measurement_rows(
    cell: Cell, eid: str, samples: Sequence[Mapping[str, Any]], done: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The warehouse rows of one finished cell (one per sample, at least one)."""
    status = done["status"]
    reason = done.get("reason")
    base = {
        "env_id": eid, "cell_id": cell.cell_id, "cell_key": cell.cell_key,
        "workload": cell.workload, "model": cell.model, "workers": cell.workers,
        "headline": cell.headline, "status": status,
    }
    rows = []
    for s in samples:
        rows.append({
            **base,
            "params": canonical_json(s.get("params") or done.get("params") or dict(cell.params)),
            "repeat": s["repeat"], "warmup": s["warmup"], "wall_s": s["wall_s"],
            "cpu_user_s": s["cpu_user_s"], "cpu_sys_s": s["cpu_sys_s"],
            "peak_rss_bytes": s["peak_rss_bytes"], "ok": s["ok"],
            "error": s["error"] if s["error"] is not None else (None if s["ok"] else reason),
            "extra": canonical_json(s.get("extra") or {}),
            "block": s.get("block"), "block_pos": s.get("block_pos"),
            "block_group": s.get("block_group"), "probe_s": s.get("probe_s"),
        })
    if not rows:
        rows.append({
            **base, "params": canonical_json(done.get("params") or dict(cell.params)),
            "repeat": 0, "warmup": False, "wall_s": None, "cpu_user_s": None,
            "cpu_sys_s": None, "peak_rss_bytes": None, "ok": False,
            "error": reason or f"cell ended {status} without samples", "extra": "{}",
        })
    return rows


def environment_row(
    host: Host, python: str, eid: str, env: Mapping[str, Any] | None, error: str | None
) -> dict[str, Any]:
    """The environments row: ok, incomplete (probed, then failed: error) or failed."""
    status = "ok" if error is None else ("incomplete" if env is not None else "failed")
    row: dict[str, Any] = {"host": host.name, "python": python, "env_id": eid,
                           "status": status, "error": error}
    if env is not None:
        row.update({k: v for k, v in env.items() if k != "numa_cpus"})
        row["numa_cpus"] = json.dumps(env.get("numa_cpus"))
        row["profile_id"] = profile_id(env)
        row["probe"] = canonical_json(env)
    return row
