"""The claims and method sections of `harness report` (Markdown and HTML) on fixed
samples: verdict counts, one line per inconclusive or not testable claim, the method."""

from __future__ import annotations

from pathlib import Path

from harness.report.data import gather
from harness.report.html import html
from harness.report.markdown import markdown
from harness.report.sections import build_document
from harness.report.text import claims_overview, decision_text
from tests.unit.test_claims import BASE, cell, make


def test_claims_section_counts_and_explains(tmp_path: Path) -> None:
    cells = dict(BASE, proc=cell("processes", 4.2),        # 1.9x on 2 CPUs: not testable
                 aio=cell("asyncio", 8.0, spread=0.2))     # ~1.0x, wide: inconclusive
    data = gather(make(tmp_path / "r", cells, cpus=2))
    assert data.claim_tolerance == 0.10
    sentence, lines = claims_overview(data.sections)
    # 16 claims on one profile: threads refuted, mp_pool failed, the rest not in the sweep
    assert sentence == ("16 checks (each claim on each profile): 0 confirmed, 1 refuted, "
                        "1 inconclusive, 1 not testable here, 13 not measurable.")
    assert len(lines) == 2
    assert lines[0].startswith("inconclusive: CPU-bound (compute) · asyncio (asyncio) 1.0x, "
                               "measured 1.00x [")
    assert "on h1 (2 usable CPUs, Python 3.13.1): interval width" in lines[0]
    assert "refuting needs at most" in lines[0] or "confirming needs at most" in lines[0]
    assert lines[1].startswith("not testable here: CPU-bound (compute) · ProcessPool "
                               "(processes) 7-8x, measured 1.90x [")
    assert lines[1].endswith("cap 2x = min(8 workers, 2 usable CPUs) < 7-8x; "
                             "needs >= 7 usable CPUs (this profile has 2)")
    doc = build_document(data)  # one list of sections, two renderers
    md = markdown(doc, None)
    claims_md = md.split("## The guide's claims, checked")[1].split("## Decision guide")[0]
    assert sentence in claims_md and f"- {lines[0]}" in claims_md
    assert "| claim | confirmed | refuted | inconclusive | not testable | not measurable |" \
        in claims_md
    method = md.split("## Method")[1]
    assert "tolerance of 10%" in method and "blocks" in method
    assert "order-statistic 95% interval" in method and "Not testable here" in method
    page = html(doc)
    assert sentence in page and "v-inconclusive" in page and "v-not-testable-here" in page
    assert "tolerance of 10%" in page and "<th>inconclusive</th>" in page


def test_no_sections_no_checks() -> None:
    sentence, lines = claims_overview(())
    assert sentence.startswith("No claim was checked") and lines == []


def test_decision_text_says_how_models_were_compared() -> None:
    row = {"recommendation": "processes", "best_model": "processes", "best_speedup": 7.5,
           "best_speedup_ci_low": 7.4, "best_speedup_ci_high": 7.6, "significant_lead": True,
           "next_model": "threads", "next_slowdown": 1.1, "min_pair_level": 1 - 2 / 2**9,
           "comparison": "paired", "min_blocks": 9}
    assert decision_text(row)[2] == ("significant lead: 1.10x faster than threads (paired "
                                     "within blocks, ≥ 9 blocks; confidence ≥ 99.6%)")
    old = dict(row, significant_lead=False, comparison="unpaired", min_blocks=None,
               min_pair_level=0.95)
    assert decision_text(old)[2] == ("no significant difference between these (unpaired "
                                     "medians; confidence ≥ 95%)")
