"""Model behaviour on synthetic data where the truth is known (Made-With-ML's model tests).

The demo panel is built so that churn rises with unresolved complaints and falls with review
scores; the real simulation (`loyalty generate`) is built the same way.
"""

import numpy as np
import pandas as pd
import pytest

from pipeline.config import TrainParams
from tests.support.demo_panel import make_demo_panel, train_demo


@pytest.fixture(scope="module")
def behaviour():
    panel = make_demo_panel(n_customers=3000, n_cutoffs=5, seed=11)
    result = train_demo(panel, "churn", TrainParams())
    test = panel[panel["split"] == "test"].reset_index(drop=True)
    return result, result.predictor(), test


def test_churn_auc_clearly_above_the_recency_rule(behaviour):
    result, _, _ = behaviour
    assert (
        result.metrics["model"]["roc_auc"]
        > result.metrics["baselines"]["recency"]["roc_auc"] + 0.03
    )


@pytest.mark.parametrize(
    ("column", "change"),
    [
        ("complaints_unresolved_365d", lambda s: s + 2),
        ("review_score_mean_365d", lambda s: (s - 1.5).clip(lower=1)),
    ],
)
def test_more_unresolved_complaints_or_lower_reviews_never_lower_churn(behaviour, column, change):
    _, predictor, test = behaviour
    rows = test.head(500)
    if column == "review_score_mean_365d":
        rows = rows[rows[column].notna()]
    before = predictor.predict_proba(rows)
    after = predictor.predict_proba(rows.assign(**{column: change(rows[column])}))
    assert np.all(after >= before - 1e-12)
    assert np.mean(after > before) > 0.5  # and the change actually moves most customers


def test_shuffled_column_order_gives_identical_predictions(behaviour):
    _, predictor, test = behaviour
    rng = np.random.default_rng(0)
    shuffled = test[list(rng.permutation(test.columns))]
    np.testing.assert_array_equal(predictor.predict_proba(shuffled), predictor.predict_proba(test))
    assert isinstance(shuffled, pd.DataFrame)
