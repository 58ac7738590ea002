"""Evaluation metrics and curve data for binary scores (pure functions of arrays).

Ranking metrics (ROC AUC, PR AUC, lift and capture in the top decile) apply to any score;
probability metrics (Brier, log loss, ECE) only to calibrated probabilities.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from pipeline.errors import DataError

TOP_SHARE = 0.1
ECE_BINS = 10
MAX_CURVE_POINTS = 201


def _check(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype="int64")
    s = np.asarray(score, dtype="float64")
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must be 1-D of the same length")
    if len(y) == 0:
        raise DataError("no rows to evaluate")
    if y.min() == y.max():
        raise DataError(f"only one class ({int(y[0])}) in the evaluation rows; AUC is undefined")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return y, s


def top_share_order(score: np.ndarray) -> np.ndarray:
    """Row order by descending score; ties keep input order (stable), for reproducibility."""
    return np.argsort(-np.asarray(score, dtype="float64"), kind="stable")


def lift_and_capture(y_true: np.ndarray, score: np.ndarray, share: float = TOP_SHARE) -> dict:
    """Lift (precision in the top share / base rate) and capture rate (share of all positives)."""
    y, s = _check(y_true, score)
    n_top = max(1, math.ceil(len(y) * share))
    top = y[top_share_order(s)[:n_top]]
    base_rate = y.mean()
    return {
        "lift_top_decile": float(top.mean() / base_rate),
        "capture_top_decile": float(top.sum() / y.sum()),
    }


def expected_calibration_error(y_true: np.ndarray, prob: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE with equal-width bins: sum over bins of |observed - predicted| weighted by bin size."""
    y, p = _check(y_true, prob)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(y[mask].mean() - p[mask].mean())
    return float(total)


def ranking_metrics(y_true: np.ndarray, score: np.ndarray) -> dict:
    """Metrics that only need an ordering: ROC AUC, PR AUC, lift and capture, counts."""
    y, s = _check(y_true, score)
    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        **lift_and_capture(y, s),
        "base_rate": float(y.mean()),
        "n_rows": int(len(y)),
        "n_positive": int(y.sum()),
    }


def probability_metrics(y_true: np.ndarray, prob: np.ndarray) -> dict:
    """Ranking metrics plus Brier score, log loss and ECE for calibrated probabilities."""
    y, p = _check(y_true, prob)
    if p.min() < 0 or p.max() > 1:
        raise ValueError("probabilities must lie in [0, 1]")
    return {
        **ranking_metrics(y, p),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
    }


def _thin(frame: pd.DataFrame, max_points: int = MAX_CURVE_POINTS) -> pd.DataFrame:
    """Keep at most ``max_points`` evenly spaced rows (first and last always kept)."""
    if len(frame) <= max_points:
        return frame.reset_index(drop=True)
    keep = np.unique(np.linspace(0, len(frame) - 1, max_points).round().astype(int))
    return frame.iloc[keep].reset_index(drop=True)


def curves(y_true: np.ndarray, prob: np.ndarray) -> dict[str, pd.DataFrame]:
    """ROC, PR, calibration (reliability) and cumulative lift curve data, as small frames."""
    y, p = _check(y_true, prob)
    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=True), 0, ECE_BINS - 1)
    calib = (
        pd.DataFrame({"bin": index, "predicted": p, "observed": y})
        .groupby("bin", sort=True)
        .agg(
            mean_predicted=("predicted", "mean"),
            observed_rate=("observed", "mean"),
            n_rows=("observed", "size"),
        )
        .reset_index()
    )
    ordered = y[top_share_order(p)]
    share = np.arange(1, len(y) + 1) / len(y)
    captured = np.cumsum(ordered) / y.sum()
    lift = pd.DataFrame(
        {"share_contacted": share, "capture_rate": captured, "lift": captured / share}
    )
    return {
        "roc": _thin(pd.DataFrame({"fpr": fpr, "tpr": tpr})),
        "pr": _thin(pd.DataFrame({"recall": recall[::-1], "precision": precision[::-1]})),
        "calibration": calib,
        "lift": _thin(lift),
    }
