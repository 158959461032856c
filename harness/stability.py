"""Host stability: the verdict on a series of speed-probe times (issue 12).

The rules and thresholds are those of ``analysis/noise.sql`` (view ``host_noise``,
macros ``noise_thresholds``, ``noise_verdict``, ``noise_reasons``), which states and
argues them; this module applies them in Python for ``harness probe --noise``, where the
probes come straight from the hosts and nothing is stored. tests/unit/test_stability.py
checks that THRESHOLDS equals the SQL macro and that both give the same verdict and
reasons on the same series.

    unknown   fewer than min_probes probes
    unstable  two speeds (bimodal probe times), or pyperf's checks on the probes within
              Tukey's fences (stdev >= 10% of the mean; min or max >= 50% from the
              mean), or mean steal >= 10%
    noisy     probe p90/p10 >= 1.10, or >= 5% of the probes outliers, or steal >= 2%
    stable    otherwise
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas

    from harness.warehouse import Warehouse

# Mirrors noise_thresholds() in analysis/noise.sql (a test checks they are equal).
THRESHOLDS: Mapping[str, float] = {
    "min_probes": 10,
    "bimodal_min_share_pct": 10,
    "bimodal_ratio": 1.25,
    "unstable_cv": 0.10,
    "unstable_extreme": 0.50,
    "unstable_steal_pct": 10.0,
    "noisy_p90_p10": 1.10,
    "noisy_outlier_pct": 5.0,
    "noisy_steal_pct": 2.0,
    "control_low": 0.85,
    "control_high": 1.15,
}

VERDICTS = ("stable", "noisy", "unstable", "unknown")

METHOD_NOTE = (
    "Host stability (analysis/noise.sql, host_noise): a fixed ~1 ms loop is timed before "
    "every timed repeat. A host is unstable when those probe times show two speeds (a split "
    "leaving >= {bimodal_min_share_pct:.0f}% on each side whose medians differ by "
    ">= {bimodal_ratio:.2f}x), when pyperf's checks fail on the probes within Tukey's "
    "fences (stdev >= {unstable_cv:.0%} of the mean, min or max >= {unstable_extreme:.0%} "
    "from it) or when mean steal >= {unstable_steal_pct:.0f}%; noisy when p90/p10 >= "
    "{noisy_p90_p10:.2f}, outliers >= {noisy_outlier_pct:.0f}% of the probes or steal >= "
    "{noisy_steal_pct:.0f}%; else stable. Control: on a GIL build CPU-bound threads and "
    "asyncio are ~1.0x by construction; an interval of theirs outside "
    "[{control_low:.2f}, {control_high:.2f}] marks the host's CPU-bound ratios as not to "
    "be trusted (control_checks)."
).format(**THRESHOLDS)


def quantile(xs: Sequence[float], q: float) -> float | None:
    """The q-quantile of sorted ``xs``, linear between the nearest ranks (as DuckDB's
    quantile_cont and noise.sql's sorted_quantile); None when empty."""
    if not xs:
        return None
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (pos - lo) * (xs[hi] - xs[lo])


def _median2(xs: Sequence[float], a: int, b: int) -> float:
    """Twice the median of xs[a..b] (1-based, inclusive) of a sorted list."""
    return xs[a + (b - a) // 2 - 1] + xs[b - (b - a) // 2 - 1]


def split_ratio(xs: Sequence[float], share_pct: int) -> float | None:
    """The two-speeds factor of sorted ``xs``: the largest ratio of the upper side's
    median to the lower side's over the splits leaving each side at least
    ceil(n * share_pct / 100) values; None when no split qualifies."""
    n = len(xs)
    m = (n * share_pct + 99) // 100
    ratios = [_median2(xs, k + 1, n) / _median2(xs, 1, k) for k in range(max(m, 1), n - m + 1)]
    return max(ratios) if ratios else None


def _stdev(xs: Sequence[float]) -> float | None:
    return statistics.stdev(xs) if len(xs) >= 2 else None


@dataclass(frozen=True)
class ProbeStats:
    """The statistics of one series of probe times, as host_noise computes them."""

    n_probes: int
    probe_median_s: float | None
    probe_mean_s: float | None
    probe_cv: float | None
    probe_min_s: float | None
    probe_max_s: float | None
    p90_p10: float | None
    split_ratio: float | None
    n_outliers: int
    outlier_pct: float | None
    inlier_cv: float | None
    inlier_min_dev: float | None
    inlier_max_dev: float | None
    steal_mean_pct: float | None
    steal_max_pct: float | None
    loadavg_max: float | None

    @property
    def bimodal(self) -> bool | None:
        if self.split_ratio is None:
            return None
        return self.split_ratio >= THRESHOLDS["bimodal_ratio"]


def _mean(xs: Sequence[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def probe_stats(probes: Iterable[float], steal_pct: Iterable[float | None] = (),
                loadavg: Iterable[float | None] = ()) -> ProbeStats:
    """host_noise's statistics of a series of probe times (seconds; values <= 0 are
    ignored, as in the view), steal shares (%) and load averages."""
    xs = sorted(float(x) for x in probes if x is not None and x > 0)
    n = len(xs)
    steals = [float(s) for s in steal_pct if s is not None]
    loads = [float(v) for v in loadavg if v is not None]
    mean = _mean(xs)
    sd = _stdev(xs)
    q1, q3 = quantile(xs, 0.25), quantile(xs, 0.75)
    p10, p90 = quantile(xs, 0.1), quantile(xs, 0.9)
    inliers = ([x for x in xs if q1 - 1.5 * (q3 - q1) <= x <= q3 + 1.5 * (q3 - q1)]
               if q1 is not None and q3 is not None else [])
    in_mean = _mean(inliers)
    in_sd = _stdev(inliers)

    def rel(num: float | None, den: float | None) -> float | None:
        return None if num is None or not den else num / den

    return ProbeStats(
        n_probes=n,
        probe_median_s=quantile(xs, 0.5),
        probe_mean_s=mean,
        probe_cv=rel(sd, mean),
        probe_min_s=xs[0] if xs else None,
        probe_max_s=xs[-1] if xs else None,
        p90_p10=rel(p90, p10),
        split_ratio=split_ratio(xs, int(THRESHOLDS["bimodal_min_share_pct"])),
        n_outliers=n - len(inliers),
        outlier_pct=100.0 * (n - len(inliers)) / n if n else None,
        inlier_cv=rel(in_sd, in_mean),
        inlier_min_dev=rel(in_mean - inliers[0], in_mean) if inliers else None,
        inlier_max_dev=rel(inliers[-1] - in_mean, in_mean) if inliers else None,
        steal_mean_pct=_mean(steals),
        steal_max_pct=max(steals) if steals else None,
        loadavg_max=max(loads) if loads else None,
    )


def _ge(value: float | None, threshold: float) -> bool:
    """``value >= threshold``, false for a missing value (as SQL's NULL >= t)."""
    return value is not None and value >= threshold


@dataclass(frozen=True)
class Verdict:
    """stable, noisy, unstable or unknown, with every rule that triggered."""

    verdict: str
    reasons: tuple[str, ...]
    stats: ProbeStats

    @property
    def reasons_text(self) -> str | None:
        """The reasons as host_noise.reasons writes them ('; '-separated, None: none)."""
        return "; ".join(self.reasons) or None


def judge(stats: ProbeStats) -> Verdict:
    """The verdict of noise.sql's noise_verdict and noise_reasons on ``stats``."""
    t = THRESHOLDS
    n = stats.n_probes
    if n < t["min_probes"]:
        why = "no speed probes" if n == 0 else "%d speed probes (< %d)" % (n, t["min_probes"])
        return Verdict("unknown", (why,), stats)
    # (level, reason) in noise_reasons' order
    rules: list[tuple[str, str]] = []
    if _ge(stats.split_ratio, t["bimodal_ratio"]):
        rules.append(("unstable", "two speeds: upper/lower median %.2fx (>= %.2f)"
                      % (stats.split_ratio, t["bimodal_ratio"])))
    if _ge(stats.inlier_cv, t["unstable_cv"]):
        rules.append(("unstable", "probe stdev %.0f%% of the mean (>= %.0f%%)"
                      % (100 * stats.inlier_cv, 100 * t["unstable_cv"])))
    if _ge(stats.inlier_min_dev, t["unstable_extreme"]):
        rules.append(("unstable", "probe min %.0f%% below the mean (>= %.0f%%)"
                      % (100 * stats.inlier_min_dev, 100 * t["unstable_extreme"])))
    if _ge(stats.inlier_max_dev, t["unstable_extreme"]):
        rules.append(("unstable", "probe max %.0f%% above the mean (>= %.0f%%)"
                      % (100 * stats.inlier_max_dev, 100 * t["unstable_extreme"])))
    steal = stats.steal_mean_pct
    if _ge(steal, t["unstable_steal_pct"]):
        rules.append(("unstable", "steal %.1f%% (>= %.0f%%)" % (steal, t["unstable_steal_pct"])))
    elif _ge(steal, t["noisy_steal_pct"]):
        rules.append(("noisy", "steal %.1f%% (>= %.0f%%)" % (steal, t["noisy_steal_pct"])))
    if _ge(stats.p90_p10, t["noisy_p90_p10"]):
        rules.append(("noisy", "probe p90/p10 %.2f (>= %.2f)"
                      % (stats.p90_p10, t["noisy_p90_p10"])))
    if _ge(stats.outlier_pct, t["noisy_outlier_pct"]):
        rules.append(("noisy", "%.0f%% of probes outliers (>= %.0f%%)"
                      % (stats.outlier_pct, t["noisy_outlier_pct"])))
    levels = {level for level, _ in rules}
    verdict = "unstable" if "unstable" in levels else ("noisy" if levels else "stable")
    reasons = [reason for _, reason in rules]
    return Verdict(verdict, tuple(reasons), stats)


def assess(probes: Iterable[float], steal_pct: Iterable[float | None] = (),
           loadavg: Iterable[float | None] = ()) -> Verdict:
    """The verdict on one series of probe times (see :func:`probe_stats`)."""
    return judge(probe_stats(probes, steal_pct, loadavg))


def verdict_line(host: str, python: str | None, verdict: str | None,
                 reasons: str | None) -> str:
    """``host python: verdict (reasons)``, the line printed under a matrix."""
    label = f"{host} {python}" if python else str(host)
    text = f"{label}: {verdict or 'unknown'}"
    return text + (f" ({reasons})" if reasons else "")


def control_failed(ci_low: float | None, ci_high: float | None) -> bool:
    """Whether a GIL build's CPU-bound threads/asyncio speedup interval is not contained
    in [control_low, control_high] (control_checks.control_failed)."""
    if ci_low is None or ci_high is None:
        return False
    return ci_low < THRESHOLDS["control_low"] or ci_high > THRESHOLDS["control_high"]


# The verdict and the control of every environment of some sweeps (render.stability_lines,
# the report's fleet section).
STABILITY_SQL = """
SELECT n.sweep_id, n.env_id, n.profile_id, n.host, n.python, n.verdict, n.reasons,
       n.n_probes, n.probe_median_s, n.p90_p10, n.split_ratio, n.inlier_cv, n.outlier_pct,
       n.steal_mean_pct, n.loadavg_max,
       c.control_failed, c.detail AS control_detail, c.message AS control_message
FROM host_noise n
LEFT JOIN control_checks c USING (sweep_id, env_id)
WHERE n.sweep_id IN (SELECT unnest(?::VARCHAR[]))
ORDER BY n.sweep_id, n.host, n.python
"""


def host_stability(warehouse: Warehouse, sweep_ids: Sequence[str]) -> pandas.DataFrame:
    """host_noise's verdict and control_checks' outcome per environment of ``sweep_ids``."""
    return warehouse.query(STABILITY_SQL, [list(sweep_ids)])
