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


def test_parallel_gain_puts_the_two_builds_side_by_side() -> None:
    from harness.report.sections import ft_parallel_gain_blocks

    assert ft_parallel_gain_blocks(pandas.DataFrame()) == ()
    gain = pandas.DataFrame([
        {"host": "a", "minor": "3.13", "workers": 2, "std_speedup": 0.98, "std_ci_low": 0.9,
         "std_ci_high": 1.05, "ft_speedup": 1.85, "ft_ci_low": 1.7, "ft_ci_high": 1.9,
         "gil_off_speedup": 1.8, "gil_off_ci_low": 1.7, "gil_off_ci_high": 1.9,
         "gil_on_speedup": 0.97, "gil_on_ci_low": 0.9, "gil_on_ci_high": 1.02},
        {"host": "a", "minor": "3.13", "workers": 8, "std_speedup": None, "std_ci_low": None,
         "std_ci_high": None, "ft_speedup": 1.9, "ft_ci_low": 1.8, "ft_ci_high": 2.0,
         "gil_off_speedup": None, "gil_off_ci_low": None, "gil_off_ci_high": None,
         "gil_on_speedup": None, "gil_on_ci_low": None, "gil_on_ci_high": None}])
    text, table = ft_parallel_gain_blocks(gain)
    assert isinstance(text, Paragraph) and isinstance(table, Table)
    cells = [[c.text for c in r] for r in table.rows]
    assert cells[0] == ["a", "3.13", "2", "0.98x [0.90-1.05]", "1.85x [1.70-1.90]",
                        "1.80x [1.70-1.90]", "0.97x [0.90-1.02]"]
    assert cells[1][3] == MISSING and cells[1][4] == "1.90x [1.80-2.00]"
