"""The quality scoreboard: vectorised bootstrap metrics, populations and the paired intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.errors import DataError
from pipeline.modeling import scoreboard
from pipeline.targets import Target


def _predictions(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = y + rng.normal(size=n)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "label": y.astype("int8"),
            "probability": 1 / (1 + np.exp(-2 * signal)),
            "days_since_last_order": rng.integers(0, 120, n).astype("float64"),
            "score_recency": signal + rng.normal(scale=2.0, size=n),
            "score_rfm_logistic": 1 / (1 + np.exp(-(signal + rng.normal(scale=2.0, size=n)))),
        }
    )


def test_weighted_auc_equals_sklearn_with_sample_weights_and_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    score = np.round(rng.normal(size=300) + y, 1)  # many ties
    weights = np.vstack(scoreboard.resample_weights(300, 7, seed=1))
    expected = [roc_auc_score(y, score, sample_weight=w) for w in weights]
    np.testing.assert_allclose(scoreboard.weighted_auc(y, score, weights), expected, atol=1e-12)


def test_resample_weights_draw_every_row_count_n_times_and_repeat_with_the_seed():
    batches = scoreboard.resample_weights(50, 250, seed=4)
    weights = np.vstack(batches)
    assert weights.shape == (250, 50)
    assert (weights.sum(axis=1) == 50).all()
    np.testing.assert_array_equal(weights, np.vstack(scoreboard.resample_weights(50, 250, 4)))


def test_paired_interval_is_that_of_the_difference_and_favours_the_better_scorer():
    board = scoreboard.scoreboard(_predictions(), early_warning_days=30, n_boot=200, seed=0)
    everyone = board["populations"]["all"]
    assert set(everyone["scorers"]) == {"model", "recency", "rfm_logistic"}
    recency = everyone["model_minus"]["recency"]
    low, high = recency["roc_auc_ci95"]
    assert 0 < low <= recency["roc_auc"] <= high
    assert "brier" not in recency  # a ranking rule has no probabilities
    logistic = everyone["model_minus"]["rfm_logistic"]
    assert logistic["brier_ci95"][1] < 0  # the model's Brier is lower
    model_auc = everyone["scorers"]["model"]["roc_auc"]
    assert recency["roc_auc"] == pytest.approx(
        model_auc - everyone["scorers"]["recency"]["roc_auc"]
    )


def test_early_warning_population_is_the_recent_buyers_only():
    predictions = _predictions()
    board = scoreboard.scoreboard(predictions, early_warning_days=30, n_boot=100, seed=0)
    recent = int((predictions["days_since_last_order"] <= 30).sum())
    assert board["populations"]["early_warning"]["rows"] == recent
    assert board["populations"]["all"]["rows"] == len(predictions)


def test_a_population_with_one_class_is_skipped_with_the_reason():
    predictions = _predictions()
    predictions.loc[predictions["days_since_last_order"] <= 30, "label"] = 1
    board = scoreboard.scoreboard(predictions, early_warning_days=30, n_boot=100, seed=0)
    assert board["populations"]["early_warning"]["skipped"] == "fewer than two classes"
    assert "Skipped: fewer than two classes" in scoreboard.markdown({"churn": board})


def test_markdown_lists_every_scorer_with_its_interval():
    board = scoreboard.scoreboard(_predictions(), early_warning_days=30, n_boot=100, seed=0)
    text = scoreboard.markdown({"churn": board})
    assert "**churn, all**" in text and "**churn, early warning**" in text
    assert text.count("| rfm_logistic |") == 2
    assert scoreboard.best_baseline(board["populations"]["all"]) in {"recency", "rfm_logistic"}


def test_predictions_without_recency_get_one_line_error():
    with pytest.raises(DataError, match="days_since_last_order"):
        scoreboard.scoreboard(_predictions().drop(columns="days_since_last_order"))


def test_the_headline_is_each_targets_own_metric_named_after_it() -> None:
    targets = {
        "churn": Target("churn", "no_order_within", 90),
        "churn_180d": Target("churn_180d", "no_order_within", 180),  # a target added in params
        "value": Target("value", "spend_within", None),
    }
    trained = {
        "churn": {"model": {"roc_auc": 0.86, "pr_auc": 0.81}, "baselines": {}},
        "churn_180d": {"model": {"roc_auc": 0.9, "pr_auc": 0.7}},
        "value": {"model": {"normalized_gini": 0.74, "spearman": 0.67}},
    }
    assert scoreboard.headline(trained, targets) == {
        "churn_roc_auc": 0.86,
        "churn_180d_roc_auc": 0.9,
        "value_normalized_gini": 0.74,
    }
