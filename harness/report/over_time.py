"""The report's "Over time" part: each environment that ran in two or more of the
report's sweeps, its cells over those sweeps (the view ``history``) with their steps
(:mod:`harness.history`), and a plot of the headline cells."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from harness.formatting import missing
from harness.history import EnvHistory, history_of
from harness.report.drawing import Drawer
from harness.report.plots import Figure, history_figure


@dataclass(frozen=True)
class OverTime:
    """One environment over the report's sweeps, and its plot."""

    history: EnvHistory
    figure: Figure


def gather_over_time(con: duckdb.DuckDBPyConnection, sweeps: Sequence[str],
                     drawer: Drawer) -> tuple[OverTime, ...]:
    """The environments of ``sweeps`` found in two or more of them (none: no part); their
    figures asked of ``drawer``."""
    if len(sweeps) < 2:
        return ()
    marks = ", ".join("?" for _ in sweeps)
    out = []
    for i, h in enumerate(history_of(con, f"sweep_id IN ({marks})", list(sweeps))):
        if len(h.sweeps) < 2:
            continue
        index = {sid: k for k, sid in enumerate(h.sweeps)}
        lines = []
        for s in h.series:
            if not s.headline:
                continue
            values: list[float | None] = [None] * len(h.sweeps)
            for p in s.points:
                v = p.get("median_s")
                values[index[str(p["sweep_id"])]] = None if missing(v) else float(v)
            steps = sorted({index[c.sweep_after] for c in s.changes if c.metric == "time"})
            lines.append((" · ".join(s.name()), values, steps))
        title = f"{h.env.host} {h.env.python} over {len(h.sweeps)} sweeps"
        key = f"history{i}"
        out.append(OverTime(h, drawer.add(history_figure, key, title, key, title,
                                          len(h.sweeps), lines)))
    return tuple(out)
