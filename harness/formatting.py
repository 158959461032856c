"""Text for people: the matrix's order, missing values, numbers, durations, one-line
errors and Markdown cells, written once for every command and report.

Plain functions over plain values; pandas is never imported here (a pandas NA is
recognised once pandas is loaded by someone else), so ``harness sql`` stays light.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from harness.agent.protocol import MODELS

MISSING = "—"

# Matrix rows in the guide's order, with their titles; columns are the catalogue's models.
WORKLOAD_ROWS: Mapping[str, str] = {
    "cpu_bound": "CPU-bound (compute)",
    "net_low_latency": "I/O-bound (network, low latency)",
    "net_high_latency": "I/O-bound (network, high latency)",
    "disk_io": "I/O-bound (disk)",
}
MODEL_COLUMNS: tuple[str, ...] = MODELS


def missing(value: Any) -> bool:
    """None, NaN, or pandas' NA/NaT: a value that is not there."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    pd = sys.modules.get("pandas")  # a pandas value only exists once pandas is imported
    return pd is not None and (value is pd.NA or value is pd.NaT)


def get(row: Any, key: str) -> Any:
    """``row[key]`` (a dict or a pandas row), None when missing."""
    value = row.get(key)
    return None if missing(value) else value


def ordered(names: Iterable[Any], known: Iterable[str]) -> list[Any]:
    """The names present, known ones in their canonical order, then the others by name."""
    present = {n for n in names if not missing(n)}
    known = list(known)
    return [n for n in known if n in present] + sorted(present - set(known), key=str)


def matrix_key(workload: Any, model: Any = None) -> tuple[int, str, int, str]:
    """A sort key putting (workload, model) in the matrix's order: the guide's workloads,
    then the catalogue's models; unknown names after the known ones, by name."""
    w = list(WORKLOAD_ROWS)
    m = list(MODEL_COLUMNS)
    return (w.index(workload) if workload in w else 99, str(workload),
            m.index(model) if model in m else 99, "" if model is None else str(model))


def workload_title(workload: Any) -> str:
    return WORKLOAD_ROWS.get(str(workload), str(workload))


def fmt_speedup(value: Any, lo: Any = None, hi: Any = None) -> str:
    """``1.93x [1.88-1.97]`` (``—`` when missing)."""
    if missing(value):
        return MISSING
    text = f"{float(value):.2f}x"
    if not missing(lo) and not missing(hi):
        text += f" [{float(lo):.2f}-{float(hi):.2f}]"
    return text


def fmt_seconds(value: Any) -> str:
    """A short time: ``812 µs``, ``23.4 ms``, ``1.2 s``."""
    if missing(value):
        return MISSING
    v = float(value)
    if abs(v) < 1e-3:
        return f"{v * 1e6:.3g} µs"
    if abs(v) < 1:
        return f"{v * 1e3:.3g} ms"
    return f"{v:.3g} s"


def fmt_duration(seconds: Any) -> str:
    """A long time: ``47 s``, ``3.5 min``, ``2.1 h``."""
    if missing(seconds):
        return MISSING
    s = float(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def md_cell(text: Any) -> str:
    """A Markdown table cell: pipes escaped, one line."""
    return ("" if missing(text) else str(text)).replace("|", "\\|").replace("\n", " ")


def one_line(text: Any, limit: int = 300, *, pick: str = "first") -> str:
    """One line of ``text`` for a message: the first (``pick="first"``), the last
    (``"last"``) or the first that names an error (``"error"``, else the first) of its
    non-blank lines, white space folded, cut at ``limit`` with an ellipsis."""
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    if pick == "last":
        chosen = lines[-1] if lines else ""
    elif pick == "error":
        errors = [ln for ln in lines if "error" in ln.lower()]
        chosen = errors[0] if errors else (lines[0] if lines else "")
    else:
        chosen = lines[0] if lines else ""
    chosen = re.sub(r"\s+", " ", chosen)
    return chosen[:limit] + ("…" if len(chosen) > limit else "")


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
