"""The agent's calibration (the median interval, and the stopping rule a cell alone gets
from BlockCalibration), on fixed samples with known answers."""

from __future__ import annotations

import math

import duckdb
import pytest

from harness.agent import stats
from harness.agent.blocks import BlockCalibration


class Calibration:
    """The stopping rule for one cell alone (a group without a baseline): the width of
    its own median interval, as BlockCalibration applies it."""

    def __init__(self, *args: float, **kwargs: float | None) -> None:
        self.rule = BlockCalibration(*args, **kwargs)

    def stop_reason(self, xs: list[float], elapsed_s: float) -> str | None:
        return self.rule.stop_reason([{"c": x} for x in xs], ["c"], None, elapsed_s)


def test_ranks_match_views_sql() -> None:
    con = duckdb.connect()
    con.execute("""
        CREATE MACRO lo(n, z) AS greatest(1, floor((n - z * sqrt(n)) / 2))::BIGINT;
        CREATE MACRO hi(n, z) AS least(n, ceil(1 + (n + z * sqrt(n)) / 2))::BIGINT;""")
    for n in range(1, 60):
        j, k = con.execute("SELECT lo(?, 1.96), hi(?, 1.96)", [n, n]).fetchone()
        assert stats.median_ci_ranks(n) == (j, k), n


def test_known_intervals() -> None:
    assert stats.median_ci_ranks(5) == (1, 5)  # [min, max]
    assert stats.median_ci_ranks(20) == (5, 16)
    xs = [float(i) for i in range(1, 21)]
    assert stats.median_ci(xs) == (5.0, 16.0)
    assert stats.median(xs) == 10.5
    assert stats.rel_ci_width(xs) == pytest.approx(11 / 10.5)
    assert stats.median_ci_level(5) == pytest.approx(1 - 2 ** -4)
    assert stats.median_ci_level(20) == pytest.approx(0.988, abs=1e-3)


def test_quiet_cell_stops_at_the_minimum() -> None:
    cal = Calibration(3, 10, target_rel_ci=0.05, budget_s=100)
    assert cal.stop_reason([1.0, 1.01], 0.1) is None  # below min_repeats
    assert cal.stop_reason([1.0, 1.01, 1.02], 0.1) == "target"  # width 2% <= 5%


def test_noisy_cell_goes_on_until_budget_or_max() -> None:
    cal = Calibration(3, 6, target_rel_ci=0.05, budget_s=10)
    noisy = [1.0, 1.5, 0.8]
    assert cal.stop_reason(noisy, 1.0) is None
    assert cal.stop_reason(noisy, 10.0) == "budget"
    assert cal.stop_reason(noisy + [1.2, 0.9, 1.4], 1.0) == "max_repeats"
    no_target = Calibration(2, 4)
    assert no_target.stop_reason([1.0, 1.0, 1.0], 0) is None
    assert no_target.stop_reason([1.0] * 4, 0) == "max_repeats"
    with pytest.raises(ValueError):
        Calibration(5, 4)


def test_more_samples_narrow_the_interval() -> None:
    # a fixed noisy sequence: the width first reaches 10% at n = 11
    xs = [1.0 + 0.1 * math.sin(i * 1.7) for i in range(40)]
    cal = Calibration(3, 40, target_rel_ci=0.10)
    stops = [n for n in range(1, 41) if cal.stop_reason(xs[:n], 0) == "target"]
    assert stops and stops[0] > 3
    assert stats.rel_ci_width(xs[:stops[0]]) <= 0.10 < stats.rel_ci_width(xs[:stops[0] - 1])
