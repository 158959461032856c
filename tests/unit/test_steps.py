"""Step detection on fixed series: a step, none, noise, two steps, one odd sweep."""

from __future__ import annotations

import pytest

from harness.warehouse.steps import Point, detect_steps, is_step, segment


def series(values: list[float], rel: float = 0.02) -> list[Point]:
    """Points with an interval of +-rel around each value."""
    return [Point(v, v * (1 - rel), v * (1 + rel)) for v in values]


def test_one_step() -> None:
    steps = detect_steps(series([1.0, 1.01, 0.99, 2.0, 2.02, 1.98]))
    assert [s.index for s in steps] == [3]
    (s,) = steps
    assert s.before.level == pytest.approx(1.0) and s.after.level == pytest.approx(2.0)
    assert s.ratio == pytest.approx(2.0)


def test_no_step_in_a_flat_series() -> None:
    assert detect_steps(series([1.0] * 8)) == []
    assert detect_steps(series([1.0])) == []
    assert detect_steps([]) == []


def test_noise_within_the_intervals_is_not_a_step() -> None:
    # +-4% wanderings, each sweep's interval +-5%: the intervals overlap everywhere
    noisy = [1.0, 1.04, 0.97, 1.02, 0.96, 1.03, 0.99, 1.01]
    assert detect_steps(series(noisy, rel=0.05)) == []


def test_a_small_change_with_tight_intervals_is_below_the_minimum() -> None:
    # 3% slower, intervals +-0.5%: significant but under the 5% minimum change
    assert detect_steps(series([1.0, 1.0, 1.0, 1.03, 1.03, 1.03], rel=0.005)) == []
    steps = detect_steps(series([1.0, 1.0, 1.0, 1.03, 1.03, 1.03], rel=0.005),
                         min_change=0.02)
    assert [s.index for s in steps] == [3]


def test_two_steps() -> None:
    steps = detect_steps(series([1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0]))
    assert [(s.index, round(s.ratio, 3)) for s in steps] == [(3, 2.0), (6, 0.5)]


def test_one_odd_sweep_in_the_middle_is_no_step_but_the_latest_one_is() -> None:
    assert detect_steps(series([1.0, 1.0, 1.0, 1.5, 1.0, 1.0, 1.0])) == []
    steps = detect_steps(series([1.0, 1.0, 1.0, 1.5]))
    assert [s.index for s in steps] == [3]


def test_two_sweeps_a_step_when_intervals_are_disjoint() -> None:
    assert [s.index for s in detect_steps(series([1.0, 0.5]))] == [1]
    # wide intervals: the same halving is not distinguishable from noise
    assert detect_steps(series([1.0, 0.5], rel=0.5)) == []


def test_segment_interval_is_the_median_of_its_sweeps_ends() -> None:
    pts = [Point(1.0, 0.9, 1.1), Point(2.0, 1.5, 2.5), Point(3.0, 2.9, 3.1)]
    s = segment(pts, 0, 3)
    assert (s.level, s.low, s.high) == (2.0, 1.5, 2.5)
    assert is_step(segment(pts, 0, 1), segment(pts, 2, 3))
    assert not is_step(segment(pts, 0, 1), segment(pts, 1, 2), min_change=2.0)


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        Point(2.0, 0.5, 1.0)
    with pytest.raises(ValueError):
        detect_steps(series([1.0]), min_change=-1)
    assert len(detect_steps(series([1.0, 2.0, 4.0, 8.0, 16.0]), max_steps=2)) <= 2


def test_running_l1_matches_the_definition() -> None:
    import random
    import statistics

    from harness.warehouse.steps import _running_l1

    rng = random.Random(7)
    xs = [rng.choice([1.0, 2.0, 3.5]) + rng.random() for _ in range(40)]
    for k, (cost, median) in enumerate(_running_l1(xs), start=1):
        m = statistics.median(xs[:k])
        assert median == pytest.approx(m)
        assert cost == pytest.approx(sum(abs(x - m) for x in xs[:k]))


def test_a_long_series_is_split_where_it_steps() -> None:
    values = [1.0 + 0.001 * (i % 5) for i in range(300)] + [1.3] * 200
    assert [s.index for s in detect_steps(series(values, rel=0.01))] == [300]
