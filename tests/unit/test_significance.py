"""The Mann-Whitney U macros of analysis/dimensions.sql on fixed samples with known answers."""

from __future__ import annotations

import math
import re
from pathlib import Path

import duckdb
import pytest

SQL = Path(__file__).resolve().parents[2] / "analysis" / "dimensions.sql"


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    text = re.sub(r"--[^\n]*", "", SQL.read_text())
    con = duckdb.connect()
    for stmt in text.split(";"):
        if stmt.strip().startswith("CREATE OR REPLACE MACRO"):
            con.execute(stmt)
    return con


def reference(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """U (pairs x > y, ties 1/2) and the two-sided p, normal approximation with tie and
    continuity corrections, written independently of the SQL."""
    n1, n2 = len(xs), len(ys)
    pooled = sorted(xs + ys)
    ranks: dict[float, float] = {}
    i = 0
    while i < len(pooled):
        j = i
        while j < len(pooled) and pooled[j] == pooled[i]:
            j += 1
        ranks[pooled[i]] = (i + 1 + j) / 2  # mean rank of the tie group
        i = j
    u = sum(ranks[x] for x in xs) - n1 * (n1 + 1) / 2
    n = n1 + n2
    ties = sum(t ** 3 - t for t in (pooled.count(v) for v in set(pooled)))
    var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return u, 1.0
    z = max(0.0, abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(var)
    return u, math.erfc(z / math.sqrt(2))


def mw(con, xs, ys):
    return con.execute("SELECT mann_whitney_u(?, ?), mann_whitney_p(?, ?)",
                       [xs, ys, xs, ys]).fetchone()


def test_separated_samples(con) -> None:
    u, p = mw(con, [1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert u == 0.0
    # z = (4.5 - 0.5) / sqrt(5.25) = 1.7457; two-sided p = 0.0809 (scipy, asymptotic)
    assert p == pytest.approx(0.0809, abs=5e-4)
    u, p = mw(con, [4.0, 5.0, 6.0], [1.0, 2.0, 3.0])
    assert u == 9.0 and p == pytest.approx(0.0809, abs=5e-4)


def test_ten_against_ten_is_significant(con) -> None:
    xs = [1.00, 1.01, 1.02, 1.00, 0.99, 1.01, 1.03, 1.00, 1.02, 0.98]
    ys = [1.10, 1.12, 1.09, 1.11, 1.13, 1.10, 1.08, 1.12, 1.11, 1.10]
    u, p = mw(con, xs, ys)
    assert u == 0.0 and p < 0.001
    assert p == pytest.approx(reference(xs, ys)[1], abs=1e-6)


def test_ties_use_the_correction(con) -> None:
    xs, ys = [1.0, 2.0, 2.0, 3.0], [2.0, 3.0, 4.0, 5.0]
    u, p = mw(con, xs, ys)
    ru, rp = reference(xs, ys)
    assert u == ru == 2.5
    assert p == pytest.approx(rp, abs=1e-6)
    assert 0.05 < p < 0.2


def test_overlapping_samples_are_not_significant(con) -> None:
    xs = [1.0, 1.2, 0.9, 1.1, 1.05]
    ys = [1.02, 1.15, 0.95, 1.08, 1.0]
    u, p = mw(con, xs, ys)
    assert p > 0.5 and p == pytest.approx(reference(xs, ys)[1], abs=1e-6)


def test_all_tied_and_empty(con) -> None:
    assert mw(con, [1.0, 1.0], [1.0, 1.0])[1] == 1.0
    assert mw(con, [], [1.0])[1] is None


def test_normal_cdf(con) -> None:
    for z in (-3.0, -1.0, 0.0, 0.5, 1.96, 4.0):
        got = con.execute("SELECT normal_cdf(?)", [z]).fetchone()[0]
        assert got == pytest.approx(0.5 * math.erfc(-z / math.sqrt(2)), abs=2e-7)
