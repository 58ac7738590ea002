"""Customer-level numbers of the report, read off the scores (pure pandas).

The report re-scores nothing: every per-customer number (probabilities, risk band, loyalty
tier, value tier, RFM segment, expected value, value at risk, high value, reasons) is a column of
``data/scores/scores.parquet`` written by ``loyalty score``; the definitions live in
:mod:`pipeline.business`. This module only counts and sums them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

TIERS = ("high", "medium", "low")


def _column(frame: pd.DataFrame, name: str, dtype: str = "float64") -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series(np.nan, index=frame.index, dtype=dtype)


def _flag(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame[name].astype("boolean").fillna(False).astype(bool)


def headline(scores: pd.DataFrame, risk_column: str, tier_column: str) -> dict[str, Any]:
    """Numbers of the summary section."""
    n = int(len(scores))
    churn = _column(scores, risk_column)
    at_risk = (
        (scores.get("churn_risk_band", pd.Series(dtype="string")) == "high")
        .reindex(scores.index, fill_value=False)
        .fillna(False)
        .astype(bool)
    )
    high_value = _flag(scores, "high_value")
    value = _column(scores, "value_at_risk")
    tiers = scores.get("loyalty_tier", pd.Series(dtype="string")).value_counts()
    value_tiers = scores.get("value_tier", pd.Series(dtype="string")).value_counts()
    expected = _column(scores, "expected_value")
    return {
        "customers": n,
        "has_churn": bool(churn.notna().any()),
        "predicted_churners": int(at_risk.sum()),
        "churner_share": float(at_risk.mean()) if n else 0.0,
        "expected_churners": float(churn.sum()),
        "value_at_risk": float(value.sum()),
        "value_at_risk_predicted_churners": float(value[at_risk].sum()),
        "high_value": int(high_value.sum()),
        "high_value_at_risk": int((high_value & at_risk).sum()),
        "high_value_value_at_risk": float(value[high_value & at_risk].sum()),
        "tiers": {tier: int(tiers.get(tier, 0)) for tier in TIERS},
        "has_value": bool(expected.notna().any()),
        "expected_value": float(expected.sum()),
        "value_tiers": {tier: int(value_tiers.get(tier, 0)) for tier in TIERS},
        "has_repurchase": bool(_column(scores, tier_column).notna().any()),
    }


def segment_table(
    scores: pd.DataFrame, by: str, risk_column: str, tier_column: str
) -> pd.DataFrame:
    """Risk and value per group of ``by`` (``rfm_segment``, ``loyalty_tier``, ``value_tier``)."""
    frame = scores.assign(
        at_risk=_column(scores, "churn_risk_band", "string").eq("high").fillna(False),
        churn_p=_column(scores, risk_column),
        repurchase_p=_column(scores, tier_column),
        group=_column(scores, by, "string").astype("string").fillna("unknown"),
        expected=_column(scores, "expected_value"),
        value=_column(scores, "value_at_risk"),
    )
    out = (
        frame.groupby("group", sort=True)
        .agg(
            customers=("customer_id", "size"),
            mean_churn_probability=("churn_p", "mean"),
            predicted_churners=("at_risk", "sum"),
            mean_repurchase_probability=("repurchase_p", "mean"),
            expected_value=("expected", "sum"),
            value_at_risk=("value", "sum"),
        )
        .reset_index()
    )
    out["share_of_value_at_risk"] = out["value_at_risk"] / max(out["value_at_risk"].sum(), 1e-12)
    if by in ("loyalty_tier", "value_tier"):
        order = {t: i for i, t in enumerate(TIERS)}
        return out.sort_values("group", key=lambda s: s.map(order).fillna(9)).reset_index(drop=True)
    return out.sort_values(["value_at_risk", "group"], ascending=[False, True]).reset_index(
        drop=True
    )
