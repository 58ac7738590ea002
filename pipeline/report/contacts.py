"""The contact list: whom to contact first, why, and what to do (pure pandas).

The customers with the most value at risk, as many as ``report.contact_budget`` allows (a
count, or a share of the customers scored), each with the strongest actionable reason and the
suggested action the scorer wrote (``action_reason``, ``suggested_action``: one rule, in
:func:`pipeline.scoring.reasons_of`), joined with the contact fields of the clean customers
table where it has them. The report writes it as ``contact_list.csv`` (formula-safe) and shows
its first rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from pipeline.config import NO_LEVER
from pipeline.schemas import CONTACT_FIELDS

#: The list's columns before the contact fields.
COLUMNS = (
    "rank",
    "customer_id",
    "value_at_risk",
    "churn_probability",
    "expected_value",
    "value_tier",
    "segment",
    "reason",
    "suggested_action",
)


def budget_size(budget: float, customers: int) -> int:
    """Return how many customers the budget reaches: a count (>= 1) or a share (< 1)."""
    if budget >= 1:
        return min(int(budget), customers)
    return min(math.ceil(budget * customers), customers)


def contact_list(
    scores: pd.DataFrame,
    budget: float,
    actions: Mapping[str, str],
    risk_column: str,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return the first :func:`budget_size` customers by value at risk (ties: customer id).

    A customer the scorer gave no reason (value at risk below its line and outside the
    riskiest share) gets the fallback action and an empty reason.
    """
    ranked = scores.loc[scores["value_at_risk"].notna()].sort_values(
        ["value_at_risk", "customer_id"], ascending=[False, True], kind="stable"
    )
    top = ranked.head(budget_size(budget, len(scores))).reset_index(drop=True)
    fallback = actions.get(NO_LEVER, "")
    out = pd.DataFrame(
        {
            "rank": range(1, len(top) + 1),
            "customer_id": top["customer_id"].astype("string"),
            "value_at_risk": top["value_at_risk"].astype("float64").round(2),
            "churn_probability": top[risk_column].astype("float64").round(4),
            "expected_value": top["expected_value"].astype("float64").round(2),
            "value_tier": top.get("value_tier", pd.Series(pd.NA, index=top.index)),
            "segment": top.get("rfm_segment", pd.Series(pd.NA, index=top.index)),
            "reason": top.get("action_reason", pd.Series(pd.NA, index=top.index)).astype("string"),
            "suggested_action": top.get("suggested_action", pd.Series(pd.NA, index=top.index))
            .astype("string")
            .fillna(fallback),
        }
    )
    if customers is None:
        return out
    fields = [c for c in CONTACT_FIELDS if c in customers.columns]
    if not fields:
        return out
    contact = customers[["customer_id", *fields]].astype({"customer_id": "string"})
    return out.merge(contact, on="customer_id", how="left", validate="one_to_one")
