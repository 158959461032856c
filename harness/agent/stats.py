"""Statistics the agent needs while it measures (stdlib only, Python 3.9+).

The interval of a median is the distribution-free order-statistic interval that
``analysis/views.sql`` uses (keep the two identical): with n sorted samples
x_(1) <= ... <= x_(n), it is [x_(j), x_(k)] with

    j = max(1, floor((n - z*sqrt(n)) / 2)),   k = min(n, ceil(1 + (n + z*sqrt(n)) / 2))

(1-based ranks, z = 1.96 for 95%). Its exact coverage is P(j <= B <= k-1),
B ~ Binomial(n, 1/2); below 6 samples the ranks clamp to [min, max].

The stopping rule built on that width is harness.agent.blocks.BlockCalibration.
"""

import math

Z95 = 1.96


def median(xs):
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return None
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def median_ci_ranks(n, z=Z95):
    """The 1-based ranks (j, k) of the median interval of ``n`` samples (as views.sql)."""
    if n < 1:
        raise ValueError("no samples")
    root = z * math.sqrt(n)
    j = max(1, int(math.floor((n - root) / 2.0)))
    k = min(n, int(math.ceil(1 + (n + root) / 2.0)))
    return j, k


def median_ci(xs, z=Z95):
    """``(low, high)`` of the median's interval, or None without samples."""
    s = sorted(xs)
    if not s:
        return None
    j, k = median_ci_ranks(len(s), z)
    return s[j - 1], s[k - 1]


def median_ci_level(n, z=Z95):
    """Exact coverage of the interval of ``n`` samples."""
    j, k = median_ci_ranks(n, z)
    return sum(math.comb(n, i) for i in range(j, k)) / 2.0 ** n if hasattr(math, "comb") \
        else sum(_comb(n, i) for i in range(j, k)) / 2.0 ** n


def _comb(n, k):
    return math.factorial(n) // (math.factorial(k) * math.factorial(n - k))


def rel_ci_width(xs, z=Z95):
    """(high - low) / median of the median's interval, or None."""
    ci = median_ci(xs, z)
    med = median(xs)
    if ci is None or not med:
        return None
    return (ci[1] - ci[0]) / med
