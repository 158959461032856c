"""The report's single-thread cost of the free-threaded build: ft_overhead's rows as a
table per host, and the pairs of builds named."""

from __future__ import annotations

import pandas

from harness.formatting import MISSING
from harness.report.sections import Paragraph, Table, ft_overhead_blocks


def row(host: str, ratio: float | None, significant: bool | None) -> dict[str, object]:
    return {"sweep_id": "s1", "host": host, "minor": "3.13",
            "std_python": f"/h/{host}/3.13/bin/python3.13", "std_version": "3.13.5",
            "ft_python": f"/h/{host}/3.13t/bin/python3.13t", "ft_version": "3.13.5",
            "workload": "cpu_bound", "basis": "per_iteration" if ratio else None,
            "ft_over_std": ratio, "ratio_ci_low": ratio and ratio * 0.9,
            "ratio_ci_high": ratio and ratio * 1.1, "ratio_ci_level": 0.95 if ratio else None,
            "overhead_pct": ratio and (ratio - 1) * 100, "significant": significant,
            "reason": None if ratio else "a build has no good sequential repeats"}


def test_rows_per_host_and_the_pairs_named() -> None:
    ft = pandas.DataFrame([row("a", 1.4, True), row("b", 1.02, False), row("c", None, None)])
    text, table = ft_overhead_blocks(ft)
    assert isinstance(text, Paragraph) and isinstance(table, Table)
    words = "".join(s if isinstance(s, str) else s.text for s in text.spans)
    assert "ft_overhead" in words
    assert "a: /h/a/3.13/bin/python3.13 (3.13.5) against /h/a/3.13t/bin/python3.13t" in words
    cells = [[c.text for c in r] for r in table.rows]
    assert cells[0] == ["a", "3.13", "CPU-bound (compute)", "per_iteration",
                        "1.40x [1.26-1.54] at 95.0%", "+40%"]
    assert cells[1][-1] == "+2% (not significant)"
    assert cells[2][4:] == [MISSING, "a build has no good sequential repeats"]


def test_no_pair_says_how_to_get_one() -> None:
    (only,) = ft_overhead_blocks(pandas.DataFrame())
    assert isinstance(only, Paragraph) and only.mark == "none"
    assert "harness provision --python 3.13 --python 3.13t" in "".join(
        s if isinstance(s, str) else s.text for s in only.spans)
