from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import DataError
from pipeline.features.catalog import Catalog, load_catalog, parse_catalog
from pipeline.modeling import baselines

NAMES = ["days_since_last_order", "orders_count_90d", "spend_sum_365d", "review_score_mean_365d"]


@pytest.fixture
def catalog(repo_root: Path) -> Catalog:
    return load_catalog(repo_root / "configs" / "features.yaml")


def catalog_of(*features: dict) -> Catalog:
    """A valid catalog of ``features`` (text fields filled in: only names and concepts matter)."""
    base = {"description": "d", "unit": "", "requires": ["orders.order_ts"], "reason": "r"}
    return parse_catalog(
        {
            "version": 1,
            "features": [{**base, **f} for f in features],
            "rfm_segments": [{"name": "All", "r": [1, 5], "f": [1, 5]}],
        },
        "test",
    )


def test_recency_rule_scores_churn_up_and_repurchase_down_with_missing_as_least_recent():
    frame = pd.DataFrame({"days_since_last_order": [10.0, 200.0, np.nan]})
    # risk directions: +1 churn, -1 repurchase (pipeline/targets.py)
    np.testing.assert_array_equal(baselines.recency_score(frame, 1.0), [10.0, 200.0, 200.0])
    np.testing.assert_array_equal(baselines.recency_score(frame, -1.0), [-10.0, -200.0, -200.0])


def test_recency_rule_needs_its_feature():
    with pytest.raises(DataError, match="days_since_last_order"):
        baselines.recency_score(pd.DataFrame({"x": [1.0]}), 1.0)


def test_rfm_features_by_concept_of_the_catalog(catalog: Catalog) -> None:
    # recency, frequency (windowed entry), monetary (windowed entry) in; satisfaction out
    assert baselines.rfm_features(NAMES, catalog) == NAMES[:3]
    with pytest.raises(DataError, match="no RFM"):
        baselines.rfm_features(["review_score_mean", "region"], catalog)


def test_directions_come_from_the_catalog_with_windows_resolved(catalog: Catalog):
    assert catalog.direction_of("orders_count_365d") == "lower_is_riskier"
    assert catalog.direction_of("region") is None


def test_rfm_logistic_is_standardised_and_imputes_missing_values():
    train = pd.DataFrame(
        {"a": [0.0, 1.0, 2.0, 3.0, np.nan, 5.0], "b": [1e6, 2e6, 3e6, 4e6, 5e6, 6e6]}
    )
    y = np.array([0, 0, 0, 1, 1, 1])
    prob = baselines.rfm_logistic_scores(train, y, train, ["a", "b"], seed=0)
    assert prob.shape == (6,) and np.all((prob > 0) & (prob < 1))
    assert prob[-1] > prob[0]


def test_rfm_features_match_per_window_catalog_names():
    catalog = catalog_of(
        {"name": "orders_count_{window}d", "per_window": True, "concept": "frequency"},
        {"name": "review_score_mean_{window}d", "per_window": True, "concept": "satisfaction"},
    )
    names = [
        "orders_count_90d",
        "orders_count_365d",
        "orders_count_90d_trend",  # another column, not in the catalog
        "review_score_mean_365d",
    ]
    assert baselines.rfm_features(names, catalog) == ["orders_count_90d", "orders_count_365d"]
