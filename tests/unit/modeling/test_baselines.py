import numpy as np
import pandas as pd
import pytest

from pipeline.errors import DataError
from pipeline.modeling import baselines

NAMES = ["days_since_last_order", "orders_count_90d", "spend_sum_365d", "review_score_mean_365d"]


def test_recency_rule_scores_churn_up_and_repurchase_down_with_missing_as_least_recent():
    frame = pd.DataFrame({"days_since_last_order": [10.0, 200.0, np.nan]})
    np.testing.assert_array_equal(baselines.recency_score(frame, "churn"), [10.0, 200.0, 200.0])
    np.testing.assert_array_equal(
        baselines.recency_score(frame, "repurchase"), [-10.0, -200.0, -200.0]
    )


def test_recency_rule_needs_its_feature():
    with pytest.raises(DataError, match="days_since_last_order"):
        baselines.recency_score(pd.DataFrame({"x": [1.0]}), "churn")


def test_rfm_features_by_concept_in_either_dictionary_layout():
    as_map = {
        "features": {
            "orders_count_90d": {"concept": "frequency"},
            "review_score_mean_365d": {"concept": "satisfaction"},
        }
    }
    as_list = {
        "features": [
            {"name": "spend_sum_365d", "concept": "monetary"},
            {"name": "days_since_last_order", "concept": "recency"},
        ]
    }
    assert baselines.rfm_features(NAMES, as_map) == ["orders_count_90d"]
    assert baselines.rfm_features(NAMES, as_list) == ["days_since_last_order", "spend_sum_365d"]


def test_rfm_features_by_name_prefix_without_a_dictionary():
    assert baselines.rfm_features(NAMES, None) == NAMES[:3]
    with pytest.raises(DataError, match="no RFM"):
        baselines.rfm_features(["review_score_mean_365d"], None)


def test_rfm_logistic_is_standardised_and_imputes_missing_values():
    train = pd.DataFrame(
        {"a": [0.0, 1.0, 2.0, 3.0, np.nan, 5.0], "b": [1e6, 2e6, 3e6, 4e6, 5e6, 6e6]}
    )
    y = np.array([0, 0, 0, 1, 1, 1])
    prob = baselines.rfm_logistic_scores(train, y, train, ["a", "b"], seed=0)
    assert prob.shape == (6,) and np.all((prob > 0) & (prob < 1))
    assert prob[-1] > prob[0]


def test_rfm_features_match_per_window_dictionary_names():
    config = {
        "features": [
            {"name": "orders_count_{window}d", "concept": "frequency"},
            {"name": "review_score_mean_{window}d", "concept": "satisfaction"},
        ]
    }
    names = [
        "orders_count_90d",
        "orders_count_365d",
        "orders_count_90d_trend",
        "review_score_mean_365d",
    ]
    assert baselines.rfm_features(names, config) == ["orders_count_90d", "orders_count_365d"]
