"""The report's prose: sentences and rows of text made from the views' answers.

Claim lines and the claims overview, the decision guide's "why", the measured
thresholds in words, the fleet's stability and the failures, the method notes. Plain
strings and lists of strings: :mod:`harness.report.sections` puts them into sections,
the renderers into Markdown or HTML.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import pandas

from harness.formatting import (
    MISSING,
    fmt_seconds,
    fmt_speedup,
    missing,
    workload_title,
)
from harness.report.data import ProfileSection, matrix_sorted
from harness.report.plots import NOT_MEASURED

METHOD_NOTES = (
    "Speedup = time of sequential / time of the model, on the same profile and workload "
    "parameters (profile_matrix). The cells that share a baseline (a workload at one set "
    "of parameters: sequential and every model) run interleaved in blocks, one timed "
    "repeat of each cell per block in a random order, so each ratio is taken under the "
    "same conditions: the speedup is the median over blocks of sequential's time / the "
    "model's time in that block, and its interval the order-statistic 95% interval of "
    "that median (ranks from the binomial distribution of the sample median; its exact "
    "coverage is stated, below 95% with fewer than 6 blocks). Data recorded before blocks "
    "fall back to the ratio of the two medians, with the two 97.5% median intervals "
    "combined (Bonferroni).",
    "Claims are equivalence tests (analysis/claims.sql). Confirmed: the whole speedup "
    "interval lies inside the guide's range widened by a tolerance of {tolerance:.0%} "
    "([low / (1 + t), high × (1 + t)]); refuted: the interval lies wholly outside the "
    "range; inconclusive: neither (the interval is too wide; the note gives the width "
    "that would settle it). Not testable here: the cell cannot reach the claim by "
    "construction (its cap, the most its workers, tasks and, for CPU-bound work, usable "
    "CPUs allow, is below the claim's low end; the note says what size would test it). "
    "Not measurable: the cell did not run here. A single '1.0x' is read as [0.95, 1.05].",
    "Decision guide: the fastest model (lowest median time) against every other model "
    "within the same blocks: per block, the other model's time / the fastest's, pooled "
    "over the hosts of the profile, its median and 95% order-statistic interval; a model "
    "whose interval reaches 1 is not significantly slower and is listed with the fastest "
    "('any of'), so no recommendation rests on an inconclusive comparison. Without common "
    "blocks (older data) two models tie when their 97.5% median intervals overlap "
    "(analysis/report.sql, decision_pairs and decisions).",
    "Thresholds: the guide's fixed numbers measured from the dimension cells (sweep "
    "--dimensions; analysis/report.sql, thresholds): a crossover or loss counts from the "
    "smallest point from which the difference is significant at every larger point, "
    "with the largest point where it was not as its lower bound. The scaling knee is "
    "drawn only when the best speedup is significantly above 1 (else inconclusive).",
)


def method_notes(tolerance: float = 0.10) -> list[str]:
    """The method section, with the claims' tolerance (claim_tolerance() in SQL)."""
    return [n.format(tolerance=tolerance) for n in METHOD_NOTES]


# --------------------------------------------------------------------------- values


def fmt_time(value: object) -> str:
    """A timestamp: ``2026-11-26 12:00:00 UTC``."""
    if missing(value):
        return MISSING
    if isinstance(value, (datetime, pandas.Timestamp)):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return str(value)


def fmt_bytes(value: object) -> str:
    """Memory in GiB: ``23.5 GiB``."""
    if missing(value):
        return MISSING
    return f"{float(value) / 2**30:.1f} GiB"  # type: ignore[arg-type]


def build_text(free_threaded: object, gil_enabled: object) -> str:
    """``standard (GIL)``, ``free-threaded`` or ``free-threaded (GIL re-enabled)``."""
    if missing(free_threaded):
        return "?"
    if free_threaded:
        return "free-threaded" + (" (GIL re-enabled)" if gil_enabled is True else "")
    return "standard (GIL)"


# --------------------------------------------------------------------------- claims and decisions


def claim_line(row: dict[str, object]) -> str:
    """'CPU-bound ProcessPool (processes) 7-8x'"""
    workload = workload_title(row["workload"])
    return f"{workload} · {row['guide_column']} ({row['model']}) {row['claim_text']}"


VERDICTS = ("confirmed", "refuted", "inconclusive", "not testable here", "not measurable")


def _claim_where(row: dict[str, object]) -> str:
    """'h1, h2 (2 usable CPUs, Python 3.13.1)': where a claim was checked, briefly."""
    facts = []
    if not missing(row.get("usable_cpus")):
        facts.append(f"{row['usable_cpus']} usable CPUs")
    if not missing(row.get("python_version")):
        facts.append(f"Python {row['python_version']}"
                     + (" free-threaded" if row.get("free_threaded") is True else ""))
    hosts = "" if missing(row.get("hosts")) else str(row["hosts"])
    return (hosts + (f" ({', '.join(facts)})" if facts else "")).strip() or str(
        row.get("profile_id", "?"))


def claims_overview(sections: Sequence[ProfileSection]) -> tuple[str, list[str]]:
    """(a sentence counting the verdicts over every checked (claim, profile), one line
    per check that is inconclusive -- with the interval width it would need -- or not
    testable here -- with the cap and the size that would test it)."""
    rows = [r for s in sections for r in s.claims.to_dict("records")]
    if not rows:
        return "No claim was checked: no profile ran a headline cell.", []
    counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in VERDICTS}
    sentence = (f"{len(rows)} checks (each claim on each profile): "
                + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".")
    lines = []
    for verdict in ("inconclusive", "not testable here"):
        for r in rows:
            if r["verdict"] == verdict:
                measured = fmt_speedup(r["speedup"], r["speedup_ci_low"], r["speedup_ci_high"])
                lines.append(f"{verdict}: {claim_line(r)}, measured {measured} on "
                             f"{_claim_where(r)}: {r['note']}")
    return sentence, lines


def decision_text(row: dict[str, object]) -> tuple[str, str, str]:
    """(use, measured, why) for one decisions row."""
    use = str(row["recommendation"])
    measured = fmt_speedup(row["best_speedup"], row["best_speedup_ci_low"],
                           row["best_speedup_ci_high"]) + f" ({row['best_model']})"
    if row.get("significant_lead"):
        nxt, slow = row.get("next_model"), row.get("next_slowdown")
        why = "significant lead"
        if not missing(nxt) and not missing(slow):
            why += f": {float(slow):.2f}x faster than {nxt}"  # type: ignore[arg-type]
    else:
        why = "no significant difference between these"
    basis = []
    comparison, blocks = row.get("comparison"), row.get("min_blocks")
    if comparison == "paired" and not missing(blocks):
        basis.append(f"paired within blocks, ≥ {int(blocks)} blocks")  # type: ignore[call-overload]
    elif comparison == "mixed":
        basis.append("paired where the cells shared blocks, else unpaired")
    elif comparison == "unpaired":
        basis.append("unpaired medians")
    level = row.get("min_pair_level")
    if not missing(level):
        # rounded down: 99.6% is "≥ 99.6%", never "≥ 100%"
        pct = math.floor(float(level) * 1000) / 10  # type: ignore[arg-type]
        basis.append(f"confidence ≥ {pct:g}%")
    if basis:
        why += f" ({'; '.join(basis)})"
    return use, measured, why


# --------------------------------------------------------------------------- thresholds


def fmt_size(value: object) -> str:
    """A payload size: '1 KiB', '16 MiB'."""
    if missing(value):
        return MISSING
    v = float(value)  # type: ignore[arg-type]
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if v >= size:
            return f"{v / size:.3g} {unit}"
    return f"{v:.0f} B"


def _fmt_unit(value: object, unit: object) -> str:
    if unit == "s":
        return fmt_seconds(value)
    if unit == "bytes":
        return fmt_size(value)
    if missing(value):
        return MISSING
    return f"{float(value):g}"  # type: ignore[arg-type]


# The guide's fixed numbers, each replaced by its measured threshold (thresholds view).
THRESHOLD_RULES: tuple[tuple[str, str, str], ...] = (
    ("cpu_crossover", "CPU-bound: task duration below which to run sequentially",
     "Task duration < 100ms → run sequentially; 100ms-1s → ProcessPoolExecutor or "
     "multiprocessing.Pool"),
    ("transfer_lose_from", "Large data: payload from which processes lose to threads",
     "Large data transfer → avoid multiprocessing (pickling overhead)"),
    ("scaling_knee", "Workers: count beyond which more workers stop helping",
     "More workers than CPU cores causes context-switch overhead"),
    ("spawn_per_worker", "Process pool start-up, per worker",
     "Process spawn time ~10-50ms per process"),
    ("asyncio_over_threads", "I/O: concurrency from which asyncio beats threads",
     "High connection count (>100) → asyncio"),
)
PROCESS_MODELS = ("processes", "mp_pool", "interpreters")


def _workers(value: object) -> str:
    n = float(value)  # type: ignore[arg-type]
    return f"{n:g} worker" + ("" if n == 1 else "s")


def _threshold_detail(r: dict[str, object]) -> str:
    """One measured threshold in words, with its interval or why there is none."""
    kind, unit, status = r["threshold"], r["unit"], r["status"]
    u = lambda v: _fmt_unit(v, unit)  # noqa: E731
    tested = f"{u(r['tested_min'])} to {u(r['tested_max'])}, {r['points']} points"
    model = str(r["model"]) + ("" if missing(r.get("variant")) or kind in (
        "asyncio_over_threads",) else f" ({r['variant']})")
    if status == "not_run":
        return f"{model}: did not run here"
    if kind == "scaling_knee":
        best = fmt_speedup(r["speedup"], r.get("speedup_ci_low"), r.get("speedup_ci_high"))
        if status == "inconclusive":
            return (f"{model}: no knee drawn: the best speedup {best} is not significantly "
                    f"above 1 (inconclusive; tested {tested})")
        if status == "never":
            return (f"{model}: no knee: slower than sequential at every worker count "
                    f"(best speedup {best}; tested {tested})")
        return (f"{model}: knee at {_workers(r['value'])} (best speedup {best}; "
                f"tested {tested})")
    if kind == "spawn_per_worker":
        return (f"{model}: {u(r['value'])} per worker [{u(r['low'])}-{u(r['high'])}] "
                f"over {r['points']} worker counts ({float(r['tested_min']):g}-"
                f"{float(r['tested_max']):g} workers)")
    verb = {"cpu_crossover": "beats sequential from",
            "transfer_lose_from": "loses to threads from",
            "asyncio_over_threads": "beats threads from concurrency"}[str(kind)]
    never = {"cpu_crossover": "never beat sequential significantly",
             "transfer_lose_from": "never lost to threads significantly",
             "asyncio_over_threads": "never beat threads significantly"}[str(kind)]
    if status == "never":
        return f"{model}: {never} (tested {tested})"
    if status == "below_range":
        return f"{model}: {verb} {u(r['value'])}, the smallest tested (tested {tested})"
    text = f"{model}: {verb} {u(r['value'])} (between {u(r['low'])} and {u(r['value'])}"
    if kind == "cpu_crossover" and not missing(r.get("speedup")):
        text += f"; {fmt_speedup(r['speedup'], r['speedup_ci_low'], r['speedup_ci_high'])} there"
    return text + f"; tested {tested})"


def _threshold_summary(kind: str, t: pandas.DataFrame) -> str:
    """The rule with the measured number in place of the guide's."""
    found = t[t["status"].isin(["found", "below_range"])]
    if kind == "cpu_crossover":
        procs = found[found["model"].isin(PROCESS_MODELS)]
        if not procs.empty:
            r = procs.loc[procs["value"].astype(float).idxmin()]
            low = ("the shortest tested" if r["status"] == "below_range"
                   else f"[{fmt_seconds(r['low'])}, {fmt_seconds(r['value'])}]")
            return (f"Run CPU tasks shorter than {fmt_seconds(r['value'])} sequentially: "
                    f"measured crossover for {r['model']} is {fmt_seconds(r['value'])} {low}.")
        top = fmt_seconds(t["tested_max"].max())
        return (f"Run CPU tasks of up to {top} sequentially: no process model beat "
                f"sequential significantly at any measured task duration.")
    if kind == "transfer_lose_from":
        pickle = found[found["variant"].eq("pickle")]
        if not pickle.empty:
            r = pickle.loc[pickle["value"].astype(float).idxmin()]
            low = ("" if r["status"] == "below_range"
                   else f" [{fmt_size(r['low'])}, {fmt_size(r['value'])}]")
            return (f"Pass payloads of {fmt_size(r['value'])} or more to threads, not "
                    f"processes: measured {r['model']} loses to threads from "
                    f"{fmt_size(r['value'])}{low} (pickle).")
        return (f"Processes never lost to threads significantly up to "
                f"{fmt_size(t['tested_max'].max())} payloads (pickle).")
    if kind == "scaling_knee":
        procs = found[found["model"].isin(PROCESS_MODELS)]
        if not procs.empty:  # found: the best speedup is significantly above 1
            r = procs.loc[procs["speedup"].astype(float).idxmax()]
            best = fmt_speedup(r["speedup"], r.get("speedup_ci_low"), r.get("speedup_ci_high"))
            return (f"Use up to {_workers(r['value'])} for CPU-bound work: measured knee of "
                    f"{r['model']} at {_workers(r['value'])} (best speedup {best}).")
        # no knee is drawn from an inconclusive best speedup (thresholds view)
        ran = t[t["model"].isin(PROCESS_MODELS) & t["status"].isin(["inconclusive", "never"])]
        if not ran.empty:
            r = ran.loc[ran["speedup"].astype(float).idxmax()]
            best = fmt_speedup(r["speedup"], r.get("speedup_ci_low"), r.get("speedup_ci_high"))
            return (f"More process workers did not help significantly here: best speedup "
                    f"of {r['model']} {best}; no knee drawn.")
        return "No process model's scaling was measured."
    if kind == "spawn_per_worker":
        parts = [f"{m}: {fmt_seconds(g['value'].astype(float).median())}"
                 for m, g in found.groupby("variant", sort=True)]
        return ("Budget for pool start-up per worker, by start method: " + ", ".join(parts)
                + ".") if parts else "Pool start-up did not run here."
    if kind == "asyncio_over_threads":
        if not found.empty:
            r = found.loc[found["value"].astype(float).idxmin()]
            return (f"Use asyncio from {r['value']:g} concurrent operations: measured "
                    f"crossover over threads at {r['value']:g}"
                    + ("" if r["status"] == "below_range"
                       else f" [{r['low']:g}, {r['value']:g}]") + f" ({r['workload']}).")
        return (f"asyncio never beat threads significantly up to "
                f"{t['tested_max'].max():g} concurrent operations.")
    return ""


def threshold_rows(thresholds: pandas.DataFrame,
                   error: str | None = None) -> list[tuple[str, str, list[str], str]]:
    """(rule, measured summary, per-model details, the guide's number) for every rule of
    THRESHOLD_RULES; a rule without rows says it was not measured in these sweeps
    (``error``: the thresholds view failed, said instead)."""
    out = []
    for kind, rule, guide in THRESHOLD_RULES:
        if error:
            out.append((rule, f"Could not be computed: {error}", [], guide))
            continue
        t = thresholds[thresholds["threshold"] == kind] if not thresholds.empty else thresholds
        if t.empty:
            out.append((rule, NOT_MEASURED.capitalize() + ".", [], guide))
            continue
        t = matrix_sorted(t)
        details = [_threshold_detail(r) for r in t.to_dict("records")]
        out.append((rule, _threshold_summary(kind, t), details, guide))
    return out


# ------------------------------------------------------------------- fleet, stability, failures


def stability_by_profile(stability: pandas.DataFrame) -> dict[tuple[str, str], str]:
    """(sweep, profile) -> its environments' stability verdicts, e.g. 'h1 stable,
    h2 unstable (control failed)' (analysis/noise.sql: host_noise, control_checks)."""
    out: dict[tuple[str, str], list[str]] = {}
    for r in stability.to_dict("records"):
        text = f"{r['host']} {r['verdict']}"
        if r.get("control_failed") is True:
            text += " (control failed)"
        out.setdefault((r["sweep_id"], r["profile_id"]), []).append(text)
    return {k: ", ".join(v) for k, v in out.items()}


STABILITY_HEADERS = ["sweep", "host", "python", "stability", "why", "probes", "median probe",
                     "p90/p10", "steal", "control"]


def stability_rows(stability: pandas.DataFrame) -> list[list[str]]:
    """One row per environment: its stability verdict, the rules it triggered, the probe
    statistics behind them, and the built-in control (passed, failed, or not run: a
    free-threaded build or no CPU-bound threads/asyncio cell)."""
    rows = []
    for r in stability.to_dict("records"):
        def num(key: str, fmt: str, r: dict[str, object] = r) -> str:
            value = r.get(key)
            return MISSING if missing(value) else fmt.format(value)

        failed = r.get("control_failed")
        control = (MISSING if missing(failed) else
                   f"failed: {r['control_detail']}" if failed else "passed")
        rows.append([str(r["sweep_id"]), str(r["host"]), str(r["python"]), str(r["verdict"]),
                     "" if missing(r.get("reasons")) else str(r["reasons"]),
                     num("n_probes", "{}"),
                     fmt_seconds(r.get("probe_median_s")),
                     num("p90_p10", "{:.2f}"), num("steal_mean_pct", "{:.1f}%"), control])
    return rows


def problem_tables(problems: pandas.DataFrame) -> tuple[list[list[str]], list[list[str]]]:
    """(failures: environment and cell failures with reasons; not-applicable reasons
    with the cells they cover)."""
    failures: list[list[str]] = []
    na: dict[str, list[str]] = {}
    for r in problems.to_dict("records"):
        cell = "" if missing(r["workload"]) else f"{r['workload']}/{r['model']}"
        if r["kind"] == "not_applicable":
            na.setdefault(str(r["reason"]), []).append(f"{r['host']} {cell}")
            continue
        failures.append([str(r["sweep_id"]), str(r["kind"]), str(r["host"]),
                         "" if missing(r["python"]) else str(r["python"]), cell,
                         "" if missing(r["reason"]) else str(r["reason"])])
    return failures, [[reason, f"{len(cells)}: " + ", ".join(cells[:6])
                       + (" …" if len(cells) > 6 else "")] for reason, cells in na.items()]
