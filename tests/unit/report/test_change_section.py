"""The report's "Change since the last run" and "Drift" sections, from the scores manifest."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from pipeline.config import ReportParams
from pipeline.report.build import ReportInputs, _environment, build_site
from pipeline.report.change import DRIFT_ROWS, change_context

CHANGE = {
    "previous": "data/scores/scores.parquet",
    "as_of_then": "2024-12-01T00:00:00+00:00",
    "as_of_now": "2025-01-01T00:00:00+00:00",
    "customers_then": 14601,
    "customers_now": 14910,
    "at_risk_then": 4503,
    "at_risk_now": 4025,
    "newly_at_risk": 616,
    "no_longer_at_risk": 1094,
    "still_at_risk": 3409,
    "value_at_risk_then": 550048.6,
    "value_at_risk_now": 581121.8,
    "value_at_risk_newly_at_risk": 35907.0,
    "notes": [],
}


def drift(features: dict[str, float], score_psi: float = 0.03) -> dict[str, Any]:
    def model(column: str, reference: str, scale: float) -> dict[str, Any]:
        return {
            "reference": reference,
            "reference_population": f"test cutoff {reference}",
            "score_column": column,
            "score_psi": score_psi,
            "features": {name: value * scale for name, value in features.items()},
        }

    blocks = {
        "churn": model("churn_probability", "2024-10-01", 1.0),
        # the same inputs drifted more for the value model: the table shows the larger
        "expected_value": model("expected_value", "2024-07-01", 2.0),
    }
    above = [
        {"model": t, "name": n, "psi": v}
        for t, b in blocks.items()
        for n, v in b["features"].items()
        if v >= 0.25
    ]
    return {
        "snapshot": "2025-01-01T00:00:00+00:00",
        "warn_psi": 0.25,
        "models": blocks,
        "above_warn_psi": above,
    }


def index(inputs: ReportInputs, manifest: dict[str, Any] | None) -> str:
    """The two sections as the index page includes them (the whole page: one test below)."""
    context = change_context(manifest, inputs.dictionary)
    return _environment().get_template("change.html").render(**context)


def section(html: str, name: str) -> str:
    start = html.index(f'<section id="{name}">')
    return html[start : html.index("</section>", start)]


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_sections_sit_before_model_quality_without_numbers(report_inputs: ReportInputs) -> None:
    manifest = {"change": CHANGE, "drift": drift({"spend_sum_365d": 0.05})}
    site = build_site(dataclasses.replace(report_inputs, scores_manifest=manifest), ReportParams())
    html = site["index.html"]
    assert html.index('id="change"') < html.index('id="drift"') < html.index('id="quality"')
    assert "<h2>Change since the last run</h2>" in html and "<h2>Drift:" in html


def test_change_in_business_words(report_inputs: ReportInputs) -> None:
    words = text(section(index(report_inputs, {"change": CHANGE}), "change"))
    assert "616 customers newly at risk" in words and "1,094 no longer at risk" in words
    assert "550,049 → 581,122 value at risk, then → now" in words.replace("&rarr;", "→")
    assert "2024-12-01" in words and "2025-01-01" in words
    assert "(35,907 value at risk)" in words


def test_no_previous_scores_is_one_sentence(report_inputs: ReportInputs) -> None:
    first = {"previous": None, "notes": ["no previous scores: this is the first run"]}
    words = text(section(index(report_inputs, {"change": first}), "change"))
    assert "No earlier scores to compare with (no previous scores: this is the first run)." in words
    old = text(section(index(report_inputs, {}), "change"))
    assert "No earlier scores to compare with" in old
    assert "without drift figures" in text(section(index(report_inputs, None), "drift"))


def test_a_large_drift_is_a_visible_warning_naming_the_input(report_inputs: ReportInputs) -> None:
    manifest = {"change": CHANGE, "drift": drift({"days_since_last_order": 0.2, "region": 0.01})}
    part = section(index(report_inputs, manifest), "drift")
    assert 'class="drift-warning"' in part
    words = text(part)
    assert "days since the last order" in words.lower()  # the dictionary's words, not the name
    assert "days_since_last_order" not in words
    # churn 0.2 (moderate), value model 0.4 (large): the row shows the larger, and its date
    row = re.search(r"Days since the last order</td><td>([^<]*)</td><td[^>]*>([^<]*)<", part)
    assert row is not None and row.groups() == ("2024-07-01", "0.40")
    assert "large shift" in words and "stable" in words


def test_no_warning_when_everything_is_stable(report_inputs: ReportInputs) -> None:
    part = section(index(report_inputs, {"drift": drift({"region": 0.01})}), "drift")
    assert "drift-warning" not in part and "No model input or score shifted a lot" in text(part)


def test_the_table_keeps_the_scores_and_the_most_shifted_inputs(
    report_inputs: ReportInputs,
) -> None:
    many = {f"feature_{i:02d}": i / 100 for i in range(30)}
    context = change_context({"drift": drift(many)}, report_inputs.dictionary)["drift"]
    rows = context["rows"]
    assert len(rows) == DRIFT_ROWS and [r["is_score"] for r in rows[:2]] == [True, True]
    assert [r["what"] for r in rows[:2]] == ["Churn probability", "Expected value"]
    psis = [r["psi"] for r in rows[2:]]
    assert psis == sorted(psis, reverse=True) and psis[0] == 0.58
    assert context["hidden"] == 30 - (DRIFT_ROWS - 2)
