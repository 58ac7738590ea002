from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.reasons import FeatureDictionary, FeatureInfo
from pipeline.scoring import (
    OUTPUT_COLUMNS,
    ScoringModel,
    ScoringRules,
    add_reasons,
    churn_risk_band,
    reasons_threshold,
    score_snapshot,
    with_spend_cap,
)

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")


class FakeModel:
    """Probability = the value of one feature; contributions = the features themselves."""

    def __init__(self, column: str) -> None:
        self.column = column
        self.feature_names = ["days_since_last_order", "spend_sum_365d", "p_churn", "p_rep"]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.column].to_numpy(dtype="float64")

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[["days_since_last_order", "spend_sum_365d"]].astype("float64").copy()
        out["spend_sum_365d"] = -out["spend_sum_365d"]  # spending lowers churn risk
        out["base_value"] = 0.0
        return out


def _snapshot() -> pd.DataFrame:
    # c is listed first to check that output is sorted by customer_id
    return pd.DataFrame(
        {
            "customer_id": pd.array(["c", "a", "b", "d"], dtype="string"),
            "days_since_last_order": [200.0, 10.0, 60.0, 400.0],
            "spend_sum_365d": [100.0, 500.0, 0.0, np.nan],  # d: no spend in the year
            "p_churn": [0.8, 0.1, 0.3, 0.5],  # c high, a low, b medium, d high (at the edge)
            "p_rep": [0.1, 0.9, 0.5, 0.7],  # c low, a high, b medium, d high (at the edge)
        }
    )


def _models() -> dict[str, ScoringModel]:
    return {
        "churn": ScoringModel("churn", "loyalty-churn", "3", FakeModel("p_churn")),
        "repurchase": ScoringModel("repurchase", "models/repurchase", "local", FakeModel("p_rep")),
    }


def test_pass_one_columns_bands_and_value_at_risk() -> None:
    snap = _snapshot()
    before = snap.copy()
    out = score_snapshot(snap, AS_OF, _models(), ScoringRules())
    pd.testing.assert_frame_equal(snap, before)  # input not mutated
    assert tuple(out.columns) == OUTPUT_COLUMNS
    assert list(out["customer_id"]) == ["a", "b", "c", "d"]
    assert list(out["loyalty_tier"]) == ["high", "medium", "low", "high"]
    assert list(out["churn_risk_band"]) == ["low", "medium", "high", "high"]
    assert list(out["value_at_risk"]) == [50.0, 0.0, 80.0, 0.0]
    assert out["reason_1"].isna().all()
    assert set(out["churn_model_version"]) == {"3"}
    assert (out["as_of"] == AS_OF).all()


def test_missing_model_leaves_its_columns_empty() -> None:
    out = score_snapshot(_snapshot(), AS_OF, {"churn": _models()["churn"]}, ScoringRules())
    assert out["repurchase_probability"].isna().all()
    assert out["loyalty_tier"].isna().all()
    assert out["repurchase_model"].isna().all()


def test_empty_snapshot_gives_empty_output() -> None:
    out = score_snapshot(_snapshot().iloc[0:0], AS_OF, _models(), ScoringRules())
    assert out.empty and tuple(out.columns) == OUTPUT_COLUMNS


def test_risk_band_edges() -> None:
    rules = ScoringRules(high_risk=0.5, medium_risk=0.2)
    bands = churn_risk_band([0.5, 0.4999, 0.2, 0.19, np.nan], rules)
    assert list(bands.iloc[:4]) == ["high", "medium", "medium", "low"]
    assert pd.isna(bands.iloc[4])


@pytest.mark.parametrize(
    ("share", "expected"),
    [(0.0, math.inf), (0.25, 0.8), (0.5, 0.5), (0.6, 0.3), (1.0, 0.1)],
)
def test_reasons_threshold_is_the_kth_largest(share: float, expected: float) -> None:
    assert reasons_threshold([0.1, 0.3, 0.5, 0.8, np.nan], share) == expected


def test_threshold_does_not_depend_on_how_customers_are_split() -> None:
    p = np.random.default_rng(0).random(1000)
    t = reasons_threshold(p, 0.2)
    assert (p >= t).sum() == 200
    # the same customers are chosen whatever the partition they sit in
    assert sum(int((part >= t).sum()) for part in np.array_split(p, 7)) == 200


def test_reasons_only_for_customers_above_threshold() -> None:
    snap = _snapshot()
    scored = score_snapshot(snap, AS_OF, _models(), ScoringRules())
    dictionary = FeatureDictionary(
        {"days_since_last_order": FeatureInfo("days_since_last_order",
                                              reason="No order for {value:.0f} days")}
    )
    out = add_reasons(scored, snap, _models()["churn"], dictionary, threshold=0.5)
    assert out["reason_1"].isna().tolist() == [True, True, False, False]
    assert out.loc[2, "reason_1"] == "No order for 200 days"
    # only risk-raising contributions become reasons: spend lowers risk, so no reason_2
    assert out["reason_2"].isna().all()
    assert scored["reason_1"].isna().all()  # input not mutated


def test_spend_is_capped_like_the_report_when_the_engine_sets_the_cap() -> None:
    snap = _snapshot()
    # The cap is a quantile over all customers scored (here the median of 100, 500, 0, 0 = 50).
    rules = with_spend_cap(ScoringRules(spend_cap_quantile=0.5), snap["spend_sum_365d"])
    assert rules.spend_cap == 50.0
    out = score_snapshot(snap, AS_OF, _models(), rules).set_index("customer_id")
    assert out.loc["a", "value_at_risk"] == pytest.approx(0.1 * 50.0)  # 500 capped at 50
    assert out.loc["c", "value_at_risk"] == pytest.approx(0.8 * 50.0)  # 100 capped at 50
    assert out.loc["b", "value_at_risk"] == 0.0
    uncapped = score_snapshot(snap, AS_OF, _models(), ScoringRules()).set_index("customer_id")
    assert uncapped.loc["a", "value_at_risk"] == pytest.approx(0.1 * 500.0)
