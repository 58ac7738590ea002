"""The contact list: budget, order by value at risk, actions, contact fields, formula-safe CSV."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline import io
from pipeline.config import DEFAULT_ACTIONS, ReportParams
from pipeline.report.contacts import budget_size, contact_list

SCORES = pd.DataFrame(
    {
        "customer_id": pd.array(["a", "b", "c", "d", "e"], dtype="string"),
        "churn_probability": [0.9, 0.2, 0.6, 0.5, 0.1],
        "expected_value": [100.0, 2000.0, 50.0, 400.0, None],
        "value_at_risk": [90.0, 400.0, 30.0, 200.0, None],
        "value_tier": pd.array(["medium", "high", "low", "high", None], dtype="string"),
        "rfm_segment": pd.array(["Lost", "Loyal", "New", "At risk", "New"], dtype="string"),
        "action_reason": pd.array(
            ['=HYPERLINK("x")', "Unresolved complaints: 1", None, "Late deliveries", None],
            dtype="string",
        ),
        "suggested_action": pd.array(
            ["Product follow-up", "Service call", None, "Apology", None], dtype="string"
        ),
    }
)


def test_a_budget_is_a_count_or_a_share() -> None:
    assert budget_size(3, 100) == 3
    assert budget_size(0.05, 100) == 5
    assert budget_size(0.051, 100) == 6  # a share rounds up: nobody in it is left out
    assert budget_size(500, 100) == 100
    with pytest.raises(ValueError, match="count of customers"):
        ReportParams(contact_budget=2.5)


def test_ranked_by_value_at_risk_with_the_fallback_action() -> None:
    out = contact_list(SCORES, 4, DEFAULT_ACTIONS, "churn_probability")
    assert out["customer_id"].tolist() == ["b", "d", "a", "c"]  # e has no value at risk
    assert out["rank"].tolist() == [1, 2, 3, 4]
    assert out["suggested_action"].tolist()[:3] == ["Service call", "Apology", "Product follow-up"]
    assert out.loc[3, "suggested_action"] == DEFAULT_ACTIONS["none"]  # c was not explained
    assert pd.isna(out.loc[3, "reason"])


def test_contact_fields_are_joined_when_the_customers_table_has_them() -> None:
    customers = pd.DataFrame(
        {
            "customer_id": pd.array(["a", "b", "z"], dtype="string"),
            "email": pd.array(["a@x.org", None, "z@x.org"], dtype="string"),
            "region": pd.array(["north", "south", "east"], dtype="string"),
        }
    )
    out = contact_list(SCORES, 2, DEFAULT_ACTIONS, "churn_probability", customers)
    assert list(out.columns)[-1] == "email" and "region" not in out.columns
    assert out["email"].isna().tolist() == [True, True]  # b has none; d is not in the table
    none = contact_list(SCORES, 2, DEFAULT_ACTIONS, "churn_probability", customers[["customer_id"]])
    assert "email" not in none.columns


def test_the_csv_is_formula_safe(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = contact_list(SCORES, 0.999, DEFAULT_ACTIONS, "churn_probability")
    path = io.write_csv(tmp_path / "contact_list.csv", out)
    text = path.read_text()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
