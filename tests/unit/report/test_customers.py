"""Customer-level numbers of the report: value at risk, tiers, segments, headline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.report.customers import customer_table, headline, segment_table, top_value_at_risk

# Four customers, each with a reason to exist:
#   a: likely churner, big spender -> high value and at risk;
#   b: safe, loyal (repurchase 0.8 -> high tier);
#   c: at risk but spent nothing in the last year -> 0 value at risk, never "high value";
#   d: only scored by the churn model (missing from repurchase) -> no tier, still counted.
CHURN = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c", "d"],
        "probability": [0.9, 0.1, 0.6, 0.3],
        "reason_1": ["No order for 143 days", None, "2 unresolved complaints", None],
    }
)
REPURCHASE = pd.DataFrame({"customer_id": ["a", "b", "c"], "probability": [0.05, 0.8, 0.3]})
SNAPSHOT = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c", "d"],
        "spend_sum_365d": [1000.0, 500.0, np.nan, 100.0],
        "rfm_segment": pd.Categorical(["At risk", "Champions", "At risk", "Loyal"]),
    }
)


@pytest.fixture
def customers() -> pd.DataFrame:
    return customer_table(
        {"churn": CHURN, "repurchase": REPURCHASE}, SNAPSHOT, "spend_sum_365d", "rfm_segment", 0.75
    )


def test_value_at_risk_and_tiers(customers: pd.DataFrame) -> None:
    row = customers.set_index("customer_id")
    assert row.loc["a", "value_at_risk"] == pytest.approx(900.0)
    assert row.loc["c", "value_at_risk"] == 0.0
    assert row.loc["b", "loyalty_tier"] == "high" and row.loc["c", "loyalty_tier"] == "medium"
    assert pd.isna(row.loc["d", "loyalty_tier"])
    assert row["high_value"].tolist() == [True, False, False, False]
    assert row.loc["a", "churn_reason_1"] == "No order for 143 days"


def test_headline(customers: pd.DataFrame) -> None:
    numbers = headline(customers, 0.5)
    assert numbers["customers"] == 4
    assert numbers["predicted_churners"] == 2 and numbers["churner_share"] == 0.5
    assert numbers["value_at_risk"] == pytest.approx(900 + 50 + 0 + 30)
    assert numbers["high_value_at_risk"] == 1
    assert numbers["tiers"] == {"high": 1, "medium": 1, "low": 1}


def test_segments_sum_to_the_total(customers: pd.DataFrame) -> None:
    table = segment_table(customers, "rfm_segment", 0.5)
    assert table["group"].tolist()[0] == "At risk"
    assert table["customers"].sum() == 4
    assert table["value_at_risk"].sum() == pytest.approx(headline(customers, 0.5)["value_at_risk"])
    tiers = segment_table(customers, "loyalty_tier", 0.5)
    assert tiers["group"].tolist() == ["high", "medium", "low", "unknown"]


def test_top_value_at_risk_order(customers: pd.DataFrame) -> None:
    assert top_value_at_risk(customers, 2)["customer_id"].tolist() == ["a", "b"]


def test_extreme_spend_is_capped() -> None:
    # one bulk/mistyped customer must not hold most of the value at risk
    snapshot = SNAPSHOT.assign(spend_sum_365d=[1_000_000.0, 500.0, np.nan, 100.0])
    table = customer_table({"churn": CHURN}, snapshot, "spend_sum_365d", "rfm_segment", 0.75, 0.5)
    row = table.set_index("customer_id")
    assert row.loc["a", "expected_spend_12m"] == pytest.approx(table["expected_spend_12m"].max())
    assert row.loc["a", "expected_spend_12m"] <= 500.0 and bool(row.loc["a", "spend_capped"])
    numbers = headline(table, 0.5)
    assert numbers["spend_capped"] >= 1 and numbers["spend_cap"] <= 500.0
