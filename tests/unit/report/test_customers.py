"""Customer-level numbers of the report are counts and sums of the scores' columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.report.customers import headline, segment_table

# Four scored customers, each with a reason to exist:
#   a: likely churner, big spender -> high value and at risk;
#   b: safe, loyal (repurchase 0.8 -> high tier);
#   c: at risk but spent nothing -> 0 value at risk, never "high value";
#   d: scored without a repurchase probability -> no loyalty tier, still counted.
SCORES = pd.DataFrame(
    {
        "customer_id": pd.array(["a", "b", "c", "d"], dtype="string"),
        "churn_probability": [0.9, 0.1, 0.6, 0.3],
        "repurchase_probability": [0.05, 0.8, 0.3, np.nan],
        "churn_risk_band": pd.array(["high", "low", "high", "medium"], dtype="string"),
        "loyalty_tier": pd.array(["low", "high", "medium", None], dtype="string"),
        "value_tier": pd.array(["high", "medium", "low", "high"], dtype="string"),
        "rfm_segment": pd.array(["At risk", "Champions", "At risk", "Loyal"], dtype="string"),
        "expected_value": [1000.0, 500.0, 0.0, 1200.0],
        "value_at_risk": [900.0, 50.0, 0.0, 360.0],
        "high_value": pd.array([True, False, False, True], dtype="boolean"),
        "reason_1": pd.array(
            ["No order for 143 days", None, "2 unresolved complaints", None], dtype="string"
        ),
    }
)
COLUMNS = ("churn_probability", "repurchase_probability")


def test_headline_counts_the_scores() -> None:
    numbers = headline(SCORES, *COLUMNS)
    assert numbers["customers"] == 4
    assert numbers["predicted_churners"] == 2 and numbers["churner_share"] == 0.5
    assert numbers["expected_churners"] == pytest.approx(1.9)
    assert numbers["value_at_risk"] == pytest.approx(900 + 50 + 0 + 360)
    assert numbers["high_value"] == 2 and numbers["high_value_at_risk"] == 1
    assert numbers["tiers"] == {"high": 1, "medium": 1, "low": 1}
    assert numbers["has_value"] and numbers["expected_value"] == pytest.approx(2700.0)
    assert numbers["value_tiers"] == {"high": 2, "medium": 1, "low": 1}


def test_segments_sum_to_the_total() -> None:
    table = segment_table(SCORES, "rfm_segment", *COLUMNS)
    assert table["group"].tolist()[0] == "At risk"
    assert table["customers"].sum() == 4
    assert table["value_at_risk"].sum() == pytest.approx(SCORES["value_at_risk"].sum())
    tiers = segment_table(SCORES, "loyalty_tier", *COLUMNS)
    assert tiers["group"].tolist() == ["high", "medium", "low", "unknown"]
    values = segment_table(SCORES, "value_tier", *COLUMNS)
    assert values["group"].tolist() == ["high", "medium", "low"]
    assert values["expected_value"].tolist() == [2200.0, 500.0, 0.0]
