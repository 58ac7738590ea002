"""Reason sentences: when one feature speaks, with which template, and how it is filled."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.business import QUANTILES, Reference
from pipeline.sentences import (
    MISSING,
    REASON,
    SILENT,
    Comparison,
    FeatureInfo,
    comparisons,
    render_reason,
    speech,
)

COMPLAINTS = FeatureInfo(
    "complaints",
    direction="higher_is_riskier",
    reason="Unresolved complaints: {value:.0f}; {zero_share:.0%} of customers have none",
)
MEMBER = FeatureInfo(
    "loyalty_member",
    direction="lower_is_riskier",
    reason="Not in the loyalty programme; {nonzero_share:.0%} of customers are",
)
REVIEW = FeatureInfo(
    "review",
    direction="lower_is_riskier",
    reason="Average review {value:.1f} of 5; typical reviewer {typical:.1f}",
    reason_missing="No review yet; {known_share:.0%} of customers have written one",
)
DISCOUNT = FeatureInfo(  # no known direction
    "discount",
    reason="{value:.0%} of spend was discounted; typical customer {typical:.0%}",
)
RECENCY = FeatureInfo(
    "days",
    direction="higher_is_riskier",
    reason="No order for {value:.0f} days; usually orders every {gap:.0f} days",
    reason_missing="No order for {value:.0f} days; typical customer {typical:.0f} days",
)


def _speech(info: FeatureInfo, comparison: Comparison | None = None, **columns: list) -> list:
    return speech(info, pd.DataFrame(columns), comparison).tolist()


def test_the_value_must_be_on_the_risky_side_of_the_typical_one() -> None:
    typical = Comparison(typical=3.5)
    # 2.0 < 3.5 is a reason; 3.5 is typical; 4.0 is the safe side; 3.46 reads "3.5" as well
    assert _speech(REVIEW, typical, review=[2.0, 3.5, 4.0, 3.46]) == [
        REASON,
        SILENT,
        SILENT,
        SILENT,
    ]


def test_a_count_compared_with_none_speaks_above_zero_and_a_flag_at_zero() -> None:
    none = Comparison(zero_share=0.93)
    assert _speech(COMPLAINTS, none, complaints=[2.0, 0.0, 0.4]) == [REASON, SILENT, SILENT]
    members = Comparison(zero_share=0.38)
    assert _speech(MEMBER, members, loyalty_member=[0.0, 1.0, np.nan]) == [REASON, SILENT, SILENT]
    assert render_reason(
        MEMBER.reason or "", MEMBER, pd.DataFrame({"loyalty_member": [0.0]}), members
    ) == ["Not in the loyalty programme; 62% of customers are"]


def test_without_a_direction_only_an_unusual_value_speaks() -> None:
    usual = Comparison(typical=0.03, low=0.01, high=0.07)
    # 9% is above the usual range; 2% differs from the median but is usual; 0% is below it
    assert _speech(DISCOUNT, usual, discount=[0.09, 0.02, 0.0]) == [REASON, SILENT, REASON]


def test_a_missing_value_uses_the_missing_sentence_a_missing_reference_none() -> None:
    known = Comparison(typical=3.5, known_share=0.62)
    assert _speech(REVIEW, known, review=[np.nan, 2.0]) == [MISSING, REASON]
    # the model ships no median: the reviewer's sentence cannot be said, and "No review yet"
    # would be false for them, so they are silent
    no_median = Comparison(known_share=0.62)
    assert _speech(REVIEW, no_median, review=[np.nan, 2.0]) == [MISSING, SILENT]
    assert _speech(REVIEW, None, review=[np.nan, 2.0]) == [SILENT, SILENT]


def test_the_missing_sentence_compares_too() -> None:
    typical = Comparison(typical=48.0)
    # one order: no usual gap; 182 days against a typical 48 speaks, 20 days does not
    out = _speech(RECENCY, typical, days=[182.0, 20.0, 182.0], gap=[np.nan, np.nan, 40.0])
    assert out == [MISSING, SILENT, REASON]
    rows = pd.DataFrame({"days": [182.0], "gap": [np.nan]})
    assert render_reason(RECENCY.reason_missing or "", RECENCY, rows, typical) == [
        "No order for 182 days; typical customer 48 days"
    ]


def test_a_feature_without_a_template_is_silent() -> None:
    assert _speech(FeatureInfo("x"), None, x=[1.0, 2.0]) == [SILENT, SILENT]


def test_render_refuses_an_empty_field_and_never_prints_minus_zero() -> None:
    trend = FeatureInfo("trend", reason="Changed by {value:+.0f}; typical {typical:.0f}")
    rows = pd.DataFrame({"trend": [-0.2, -3.0]})
    assert render_reason(trend.reason or "", trend, rows, Comparison(typical=-0.1)) == [
        "Changed by 0; typical 0",
        "Changed by -3; typical 0",
    ]
    with pytest.raises(ValueError, match="empty"):
        render_reason(REVIEW.reason or "", REVIEW, pd.DataFrame({"review": [np.nan]}), None)


def test_comparisons_come_from_the_shipped_reference() -> None:
    reference = Reference(
        "test cutoff",
        100,
        (),
        {"x": tuple(10.0 * q for q in QUANTILES)},
        zero_share={"x": 0.2},
        known_share={"x": 0.9, "region": 0.5},
    )
    found = comparisons(reference)
    assert found["x"] == Comparison(typical=5.0, zero_share=0.2, known_share=0.9, low=2.5, high=7.5)
    assert found["x"].field("nonzero_share") == pytest.approx(0.8)
    assert math.isnan(found["region"].typical) and found["region"].known_share == 0.5
