"""Customer-level numbers of the report: risk, value at risk, tiers and segments (pure pandas).

Definitions (also in ``docs/explanations.md``):

- *predicted churner*: calibrated churn probability >= ``churn_threshold`` (0.5 by default,
  the scorer's ``high`` risk band);
- *expected 12-month spend*: the customer's spend over the last 365 days (``value_feature``),
  capped at the ``spend_cap_quantile`` of the customers scored: a handful of bulk or
  mistyped orders (extreme lines are kept and flagged by ``clean``) would otherwise hold most
  of the value at risk;
- *value at risk*: churn probability x expected 12-month spend
  (:func:`pipeline.explain.value_at_risk`, the same function the scorer uses);
- *high-value*: expected 12-month spend at or above the ``high_value_quantile`` of the
  customers scored;
- *loyalty tier*: repurchase probability >= 70% high, 30-70% medium, < 30% low.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipeline.explain import loyalty_tier, spend_cap, value_at_risk

TIERS = ("high", "medium", "low")


def customer_table(
    current: Mapping[str, pd.DataFrame],
    snapshot: pd.DataFrame | None,
    value_feature: str,
    segment_feature: str,
    high_value_quantile: float,
    spend_cap_quantile: float = 1.0,
) -> pd.DataFrame:
    """One row per customer of the latest snapshot with both targets' probabilities and value.

    ``current`` maps a target to its explain output ``current.parquet`` (customer_id,
    probability, reason_1..k); ``snapshot`` is the latest feature snapshot (for spend and
    the RFM segment).
    """
    ids: pd.Series | None = None
    for frame in current.values():
        ids = frame["customer_id"] if ids is None else pd.concat([ids, frame["customer_id"]])
    if ids is None:
        return pd.DataFrame(columns=["customer_id"])
    out = pd.DataFrame({"customer_id": pd.unique(ids.astype("string"))})
    for target, frame in current.items():
        keep = ["customer_id", "probability"] + [
            c for c in frame.columns if c.startswith("reason_")
        ]
        renamed = frame[keep].rename(
            columns={c: f"{target}_{c}" for c in keep if c != "customer_id"}
        )
        renamed["customer_id"] = renamed["customer_id"].astype("string")
        out = out.merge(renamed, on="customer_id", how="left")
    if snapshot is not None:
        extra = [c for c in (value_feature, segment_feature) if c in snapshot.columns]
        side = snapshot[["customer_id", *extra]].copy()
        side["customer_id"] = side["customer_id"].astype("string")
        out = out.merge(side.drop_duplicates("customer_id"), on="customer_id", how="left")
    spend = _column(out, value_feature).astype("float64")
    churn = _column(out, "churn_probability").astype("float64")
    spend = spend.fillna(0.0).clip(lower=0.0)
    cap = spend_cap(spend, spend_cap_quantile)
    out["spend_capped"] = spend > cap
    out["expected_spend_12m"] = spend.clip(upper=cap)
    out["value_at_risk"] = value_at_risk(churn, out["expected_spend_12m"]).to_numpy()
    out["loyalty_tier"] = loyalty_tier(_column(out, "repurchase_probability")).to_numpy()
    segment = _column(out, segment_feature)
    out["rfm_segment"] = segment.astype("string").fillna("unknown").to_numpy()
    threshold = out["expected_spend_12m"].quantile(high_value_quantile) if len(out) else 0.0
    out["high_value"] = (out["expected_spend_12m"] >= threshold) & (out["expected_spend_12m"] > 0)
    return out


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series(np.nan, index=frame.index, dtype="float64")


def headline(customers: pd.DataFrame, churn_threshold: float) -> dict[str, Any]:
    """Numbers of the summary section."""
    n = int(len(customers))
    churn = _column(customers, "churn_probability")
    at_risk = churn >= churn_threshold
    high_value = customers.get("high_value", pd.Series(False, index=customers.index))
    tiers = customers.get("loyalty_tier", pd.Series(dtype="string")).value_counts()
    return {
        "customers": n,
        "has_churn": bool(churn.notna().any()),
        "predicted_churners": int(at_risk.sum()),
        "churner_share": float(at_risk.mean()) if n else 0.0,
        "expected_churners": float(churn.sum()),
        "value_at_risk": float(customers.get("value_at_risk", pd.Series(dtype=float)).sum()),
        "value_at_risk_predicted_churners": float(customers.loc[at_risk, "value_at_risk"].sum())
        if n
        else 0.0,
        "high_value": int(high_value.sum()),
        "high_value_at_risk": int((high_value & at_risk).sum()),
        "high_value_value_at_risk": float(
            customers.loc[high_value & at_risk, "value_at_risk"].sum()
        )
        if n
        else 0.0,
        "tiers": {tier: int(tiers.get(tier, 0)) for tier in TIERS},
        "spend_capped": int(customers.get("spend_capped", pd.Series(dtype=bool)).sum()),
        "spend_cap": float(customers.loc[customers["spend_capped"], "expected_spend_12m"].max())
        if "spend_capped" in customers and customers["spend_capped"].any()
        else None,
        "has_repurchase": bool(_column(customers, "repurchase_probability").notna().any()),
    }


def segment_table(customers: pd.DataFrame, by: str, churn_threshold: float) -> pd.DataFrame:
    """Risk and value per group of ``by`` (RFM segment or loyalty tier)."""
    frame = customers.assign(
        at_risk=_column(customers, "churn_probability") >= churn_threshold,
        churn_p=_column(customers, "churn_probability"),
        repurchase_p=_column(customers, "repurchase_probability"),
        group=customers[by].astype("string").fillna("unknown"),
    )
    out = (
        frame.groupby("group", sort=True)
        .agg(
            customers=("customer_id", "size"),
            mean_churn_probability=("churn_p", "mean"),
            predicted_churners=("at_risk", "sum"),
            mean_repurchase_probability=("repurchase_p", "mean"),
            expected_spend_12m=("expected_spend_12m", "sum"),
            value_at_risk=("value_at_risk", "sum"),
        )
        .reset_index()
    )
    out["share_of_value_at_risk"] = out["value_at_risk"] / max(out["value_at_risk"].sum(), 1e-12)
    if by == "loyalty_tier":
        order = {t: i for i, t in enumerate(TIERS)}
        return out.sort_values("group", key=lambda s: s.map(order).fillna(9)).reset_index(drop=True)
    return out.sort_values(["value_at_risk", "group"], ascending=[False, True]).reset_index(
        drop=True
    )


def top_value_at_risk(customers: pd.DataFrame, n: int) -> pd.DataFrame:
    """Return the ``n`` customers with the most value at risk, with their churn reasons."""
    ordered = customers.sort_values(
        ["value_at_risk", "customer_id"], ascending=[False, True], kind="stable"
    )
    return ordered.head(n).reset_index(drop=True)
