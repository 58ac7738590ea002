"""The bootstrap helpers of benchmarks/bench_btyd_features.py against scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score

from benchmarks.bench_btyd_features import (
    paired_bootstrap,
    resample_counts,
    weighted_auc,
    weighted_brier,
)


def test_weighted_auc_with_unit_weights_is_roc_auc_including_ties() -> None:
    # Scores on a coarse grid so that many rows tie, across both classes.
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) + 0.3 * y, 1)
    assert np.isclose(weighted_auc(scores, y, np.ones((1, 300)))[0], roc_auc_score(y, scores))


def test_integer_weights_equal_the_repeated_rows() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200) + 0.2 * y, 2)
    counts = resample_counts(200, 3, seed=5)
    for w in counts:
        rows = np.repeat(np.arange(200), w.astype(int))
        assert np.isclose(weighted_auc(scores, y, w)[0], roc_auc_score(y[rows], scores[rows]))
        assert np.isclose(
            weighted_brier(scores.clip(0, 1), y, w)[0],
            brier_score_loss(y[rows], scores.clip(0, 1)[rows]),
        )


def test_resample_counts_draw_n_rows_each_and_repeat_with_the_seed() -> None:
    counts = resample_counts(50, 250, seed=7)  # more than one chunk of resamples
    assert counts.shape == (250, 50)
    assert (counts.sum(axis=1) == 50).all()
    assert np.array_equal(counts, resample_counts(50, 250, seed=7))


def test_identical_models_give_a_zero_interval() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 100)
    p = rng.random(100)
    out = paired_bootstrap(y, p, p, resamples=50, seed=0)
    assert out["auc_diff_ci95"] == [0.0, 0.0]
    assert out["brier_diff_ci95"] == [0.0, 0.0]
