"""A tiny, hand-made report input: one LightGBM churn model on 300 customers.

The data are generated so the drivers are known (recency and unresolved complaints raise churn,
a good review lowers it, region is noise), and one customer id carries a `<script>` tag to test
escaping.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from pipeline import business
from pipeline.config import BusinessParams
from pipeline.explain import concept_importance, feature_importance, shap_table
from pipeline.features.catalog import parse_catalog
from pipeline.reasons import FeatureDictionary
from pipeline.report.build import ReportInputs, TargetInputs
from pipeline.targets import get_target
from tests.support.params import fixed_labels

EVIL_ID = "<script>alert('x')</script>"
FEATURES = [
    "days_since_last_order",
    "complaints_unresolved_365d",
    "review_score_mean_365d",
    "spend_sum_365d",
    "region",
]
DICTIONARY = {
    "version": 1,
    "rfm_segments": [{"name": "All", "r": [1, 5], "f": [1, 5]}],
    "concepts": {
        "recency": "Recency",
        "service": "Complaints and service",
        "satisfaction": "Satisfaction",
        "monetary": "Spend",
        "relationship": "Relationship",
    },
    "features": [
        {
            "name": "days_since_last_order",
            "requires": ["orders.order_ts"],
            "concept": "recency",
            "unit": "days",
            "description": "Days since the last order",
            "reason": "No order for {value:.0f} days",
        },
        {
            "name": "complaints_unresolved_365d",
            "requires": ["orders.order_ts"],
            "concept": "service",
            "unit": "count",
            "description": "Unresolved complaints",
            "reason": "{value:.0f} complaints <b>unresolved</b>",
        },
        {
            "name": "review_score_mean_365d",
            "requires": ["orders.order_ts"],
            "concept": "satisfaction",
            "unit": "score",
            "description": "Average review score",
            "reason": "Average review {value:.1f} of 5",
        },
        {
            "name": "spend_sum_365d",
            "requires": ["orders.order_ts"],
            "concept": "monetary",
            "unit": "currency",
            "description": "Spend in the last 365 days",
            "reason": "Spent {value:,.0f}",
        },
        {
            "name": "region",
            "requires": ["orders.order_ts"],
            "concept": "relationship",
            "unit": "category",
            "dtype": "category",
            "levels": ["north", "south"],
            "description": "Region",
            "reason": "Lives in {value}",
        },
    ],
}
METRICS = {
    "target": "churn",
    "test_cutoff": "2024-06-01T00:00:00+00:00",
    "model": {
        "roc_auc": 0.8123,
        "pr_auc": 0.7,
        "lift_top_decile": 1.9,
        "capture_top_decile": 0.19,
        "brier": 0.18,
        "ece": 0.021,
    },
    "baselines": {
        "recency": {"roc_auc": 0.7011, "pr_auc": 0.6, "lift_top_decile": 1.5},
        "rfm_logistic": {"roc_auc": 0.7222, "pr_auc": 0.6, "lift_top_decile": 1.6, "ece": 0.03},
        "rfm_lgbm": {"roc_auc": 0.7333, "pr_auc": 0.6, "lift_top_decile": 1.7, "ece": 0.03},
    },
}


def _frame(n: int, seed: int, cutoff: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = [f"c{i:03d}" for i in range(n)]
    ids[0] = EVIL_ID
    frame = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "cutoff": pd.Timestamp(cutoff, tz="UTC"),
            "days_since_last_order": rng.integers(1, 300, n).astype(float),
            "complaints_unresolved_365d": rng.poisson(0.5, n).astype(float),
            "review_score_mean_365d": np.round(rng.uniform(1, 5, n), 1),
            "spend_sum_365d": np.round(rng.gamma(2.0, 200.0, n), 2),
            "region": pd.Categorical(
                rng.choice(["north", "south"], n), categories=["north", "south"]
            ),
            "rfm_segment": pd.Categorical(rng.choice(["At risk", "Champions", "Lost"], n)),
        }
    )
    logit = (
        0.015 * (frame["days_since_last_order"] - 150)
        + 0.9 * frame["complaints_unresolved_365d"]
        - 0.6 * (frame["review_score_mean_365d"] - 3)
    )
    frame["churn"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int8")
    return frame


def _value_metrics(gini: float) -> dict[str, float]:
    return {
        "normalized_gini": gini,
        "top_decile_capture": 0.31,
        "decile_mape": 13.1,
        "total_error_pct": 4.1,
    }


VALUE_METRICS = {
    "model": _value_metrics(0.72),
    "baselines": {"last_year_spend": _value_metrics(0.57), "btyd": _value_metrics(0.61)},
}


def _scores(current: pd.DataFrame, churn: np.ndarray) -> pd.DataFrame:
    """Scores as ``loyalty score`` writes them (business labels from pipeline.business)."""
    rules = BusinessParams()
    spend = current["spend_sum_365d"].to_numpy()
    expected = business.expected_value(np.minimum(spend, np.quantile(spend, 0.99)) / 2)
    lines = (float(np.quantile(expected, 0.8)), float(np.quantile(expected, 0.5)))
    scores = pd.DataFrame(
        {
            "customer_id": current["customer_id"],
            "as_of": current["cutoff"],
            "churn_probability": churn,
            "repurchase_probability": 1 - churn,
            "churn_risk_band": business.churn_risk_band(churn, rules).to_numpy(),
            "loyalty_tier": business.loyalty_tier(1 - churn, rules).to_numpy(),
            "value_tier": business.value_tier(expected, lines).array,
            "rfm_segment": current["rfm_segment"].astype("string").to_numpy(),
            "expected_value": expected.to_numpy(),
            "value_at_risk": business.value_at_risk(churn, expected).to_numpy(),
            "high_value": business.high_value(expected, lines).array,
            "reason_1": pd.array(
                ["No order for 200 days <img src=x onerror=alert(1)>"] + [None] * (len(churn) - 1),
                dtype="string",
            ),
            "reason_2": pd.array([None] * len(churn), dtype="string"),
            "action_concept": pd.array(["service"] + [None] * (len(churn) - 1), dtype="string"),
            "action_reason": pd.array(
                ["Unresolved complaints: 2 <b>unresolved</b>"] + [None] * (len(churn) - 1),
                dtype="string",
            ),
            "suggested_action": pd.array(
                ["Service call: resolve the complaint"] + [None] * (len(churn) - 1),
                dtype="string",
            ),
        }
    )
    return scores


@pytest.fixture(scope="session")
def report_inputs() -> ReportInputs:
    test = _frame(300, 1, "2024-06-01")
    current = _frame(120, 2, "2024-09-01").drop(columns="churn")
    params = {"objective": "binary", "num_leaves": 7, "min_data_in_leaf": 10, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(test[FEATURES], test["churn"]), num_boost_round=25)
    dictionary = FeatureDictionary(parse_catalog(DICTIONARY, "report test"))
    table = shap_table(
        test[["customer_id", "cutoff"]],
        booster.predict(test[FEATURES], pred_contrib=True),
        FEATURES,
    )
    concepts = dictionary.concepts(FEATURES)
    margin = booster.predict(current[FEATURES], raw_score=True)
    probability = 1 / (1 + np.exp(-booster.predict(test[FEATURES], raw_score=True)))
    labels = fixed_labels()
    churn = TargetInputs(
        target=get_target(labels, "churn"),
        metrics=METRICS,
        shap=table,
        explained=test[["customer_id", "cutoff", *FEATURES]],
        concepts=concept_importance(table, concepts),
        features=feature_importance(table, concepts),
        test_predictions=test[["customer_id", "cutoff"]].assign(
            label=test["churn"], probability=probability
        ),
        model_features={
            "cutoffs": {"train": ["2024-01-01", "2024-03-01"], "valid": ["2024-04-01"]},
            "horizon_days": 90,
            "windows_days": [30, 90, 365],
        },
    )
    repurchase = TargetInputs(
        target=get_target(labels, "repurchase"),
        metrics={**METRICS, "target": "repurchase"},
        shap=table,
        explained=churn.explained,
        concepts=churn.concepts,
        features=churn.features,
        test_predictions=churn.test_predictions.assign(
            label=1 - test["churn"], probability=1 - probability
        ),
    )
    manifest = {
        "source": "synthetic",
        "inputs": [
            {
                "source_file": "transactions.csv",
                "table": "transactions",
                "rows_read": 1000,
                "accepted": 990,
                "rejected": 10,
            }
        ],
        "rows_read": 1000,
        "accepted": 990,
        "rejected": 10,
        "rejected_by_reason": {"duplicate_row": 7, "bad_date": 3},
    }
    summary = {
        "features": {"absent": {"late_delivery_share": "source lacks orders.delivered_ts"}},
        # What the features stage chose from the data and what the population filter removed.
        "derived": {
            "labels.targets.churn.horizon_days": {
                "value": 90,
                "why": "90% of the 1,000 repeat purchases come within 72 days",
            },
            "features.active_within_days": {
                "value": "any",
                "why": "no recency filter: the 365-day window would remove 60%",
            },
        },
        "grid": {"step_months": None, "step_days": 14, "min_history_days": 60},
        "population": {
            "active_within_days": 365,
            "rule": "customers with an order before the cutoff, the last within 365 days of it",
            "max_filtered_share": 0.25,
            "removed_by": {
                "features.active_within_days": {
                    "test": {
                        "where": "test cutoff 2024-10-01",
                        "customers": 1000,
                        "removed": 400,
                        "kept": 600,
                        "share_removed": 0.4,
                    }
                }
            },
            "warnings": ["population filter features.active_within_days=365 removes 400 of 1,000"],
        },
    }
    scores = _scores(current, 1 / (1 + np.exp(-margin)))
    return ReportInputs(
        targets={"churn": churn, "repurchase": repurchase},
        dictionary=dictionary,
        scores=scores,
        business=BusinessParams(),
        scores_manifest={
            "expected_value": {
                "target": "value",
                "horizon_days": 180,
                "meaning": "expected spend in the next 180 days",
            }
        },
        value_metrics=VALUE_METRICS,
        manifest=manifest,
        feature_summary=summary,
        source="synthetic",
    )
