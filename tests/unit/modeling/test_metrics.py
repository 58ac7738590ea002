import numpy as np
import pytest

from pipeline.errors import DataError
from pipeline.modeling import metrics

# Ten customers, three churners. Scores rank two churners first, one last.
Y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 1])
SCORE = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])


def test_top_decile_is_one_row_of_ten_and_a_churner():
    out = metrics.lift_and_capture(Y, SCORE)
    assert out["capture_top_decile"] == pytest.approx(1 / 3)
    assert out["lift_top_decile"] == pytest.approx(1 / 0.3)


def test_ties_in_the_top_decile_are_broken_by_input_order():
    # All scores equal: the top row is the first row (a churner), whatever the sort algorithm.
    out = metrics.lift_and_capture(Y, np.zeros(10))
    assert out["capture_top_decile"] == pytest.approx(1 / 3)


def test_ranking_metrics_counts_and_auc():
    out = metrics.ranking_metrics(Y, SCORE)
    assert out["n_rows"] == 10 and out["n_positive"] == 3 and out["base_rate"] == pytest.approx(0.3)
    # 3 churners x 7 stayers = 21 pairs; the last churner loses all 7 of its pairs.
    assert out["roc_auc"] == pytest.approx(14 / 21)


def test_ece_is_zero_when_every_bin_is_exact_and_known_otherwise():
    y = np.array([0, 1, 0, 1])
    assert metrics.expected_calibration_error(y, np.full(4, 0.5)) == pytest.approx(0.0)
    # Everyone predicted 0.9, observed 0.5: one bin, gap 0.4.
    assert metrics.expected_calibration_error(y, np.full(4, 0.9)) == pytest.approx(0.4)


def test_probability_metrics_include_brier_and_log_loss():
    out = metrics.probability_metrics(np.array([0, 1]), np.array([0.25, 0.75]))
    assert out["brier"] == pytest.approx(0.0625)
    assert out["log_loss"] == pytest.approx(-np.log(0.75))


def test_one_class_or_empty_rows_are_data_errors():
    with pytest.raises(DataError, match="only one class"):
        metrics.ranking_metrics(np.zeros(5), np.arange(5.0))
    with pytest.raises(DataError, match="no rows"):
        metrics.ranking_metrics(np.array([]), np.array([]))


def test_curves_have_the_columns_dvc_plots_declares():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    p = np.clip(y * 0.3 + rng.random(5000) * 0.7, 0, 1)
    out = metrics.curves(y, p)
    assert list(out["roc"].columns) == ["fpr", "tpr"]
    assert list(out["pr"].columns) == ["recall", "precision"]
    assert {"mean_predicted", "observed_rate"} <= set(out["calibration"].columns)
    assert {"share_contacted", "capture_rate"} <= set(out["lift"].columns)
    assert (
        len(out["roc"]) <= metrics.MAX_CURVE_POINTS and len(out["lift"]) <= metrics.MAX_CURVE_POINTS
    )
    assert out["lift"]["capture_rate"].iloc[-1] == pytest.approx(1.0)
    assert out["calibration"]["n_rows"].sum() == 5000
