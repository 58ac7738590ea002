"""Metrics and curve data for predicted customer value (spend in the horizon), pure functions.

Spend is zero for most customers and heavy-tailed for the rest, so value is judged the way
retail analysts judge a CLV forecast: how well it *ranks* customers (normalized Gini,
Spearman, the share of realised spend held by the predicted top decile), how well its *levels*
hold per decile (mean predicted vs mean realised, and their mean absolute percentage error) and
in *total* (predicted minus realised, in % of realised).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from pipeline.errors import DataError

DECILES = 10
TOP_SHARE = 0.1
MAX_CURVE_POINTS = 201


def _check(y_true: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype="float64")
    p = np.asarray(predicted, dtype="float64")
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"values {y.shape} and predictions {p.shape} must be 1-D, same length")
    if len(y) < DECILES:
        raise DataError(f"{len(y)} rows: too few to evaluate a value model")
    if not (np.isfinite(y).all() and np.isfinite(p).all()):
        raise ValueError("values and predictions must be finite")
    if y.sum() <= 0:
        raise DataError("no realised spend in the evaluation rows; value metrics are undefined")
    return y, p


def _by_prediction(p: np.ndarray) -> np.ndarray:
    """Row order by descending prediction; ties keep input order (reproducible)."""
    return np.argsort(-p, kind="stable")


def _gini(y: np.ndarray, score: np.ndarray) -> float:
    ordered = y[_by_prediction(score)]
    cumulative = np.cumsum(ordered) / ordered.sum()
    n = len(y)
    return float(cumulative.sum() / n - (n + 1) / (2 * n))


def normalized_gini(y_true: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of the prediction's ranking divided by the Gini of a perfect ranking (1 = perfect)."""
    y, p = _check(y_true, predicted)
    return _gini(y, p) / _gini(y, y)


def top_decile_capture(y_true: np.ndarray, predicted: np.ndarray) -> float:
    """Share of all realised spend that the predicted top 10% of customers hold."""
    y, p = _check(y_true, predicted)
    top = _by_prediction(p)[: max(1, int(np.ceil(len(y) * TOP_SHARE)))]
    return float(y[top].sum() / y.sum())


def decile_table(y_true: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """Mean predicted and mean realised spend per decile of the prediction (1 = highest)."""
    y, p = _check(y_true, predicted)
    order = _by_prediction(p)
    decile = np.empty(len(y), dtype=np.int64)
    decile[order] = np.arange(len(y)) * DECILES // len(y) + 1
    return (
        pd.DataFrame({"decile": decile, "predicted": p, "realised": y})
        .groupby("decile", sort=True)
        .agg(
            mean_predicted=("predicted", "mean"),
            mean_realised=("realised", "mean"),
            n_rows=("realised", "size"),
        )
        .reset_index()
    )


def decile_mape(table: pd.DataFrame) -> float:
    """Mean absolute % error of mean predicted vs mean realised over deciles with spend."""
    has = table["mean_realised"] > 0
    error = (table["mean_predicted"] - table["mean_realised"]).abs() / table["mean_realised"]
    return float(error[has].mean() * 100) if has.any() else float("nan")


def value_metrics(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float | int]:
    """Ranking, per-decile and total accuracy of predicted spend against realised spend."""
    y, p = _check(y_true, predicted)
    table = decile_table(y, p)
    return {
        "normalized_gini": normalized_gini(y, p),
        "spearman": float(spearmanr(y, p).statistic),
        "top_decile_capture": top_decile_capture(y, p),
        "decile_mape": decile_mape(table),
        "total_predicted": float(p.sum()),
        "total_realised": float(y.sum()),
        "total_error_pct": float((p.sum() - y.sum()) / y.sum() * 100),
        "mean_realised": float(y.mean()),
        "buyer_share": float((y > 0).mean()),
        "n_rows": int(len(y)),
    }


def value_curves(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, pd.DataFrame]:
    """Gain curve (share of customers contacted -> share of realised spend) and deciles."""
    y, p = _check(y_true, predicted)
    ordered = y[_by_prediction(p)]
    gain = pd.DataFrame(
        {
            "share_of_customers": np.arange(1, len(y) + 1) / len(y),
            "share_of_spend": np.cumsum(ordered) / ordered.sum(),
        }
    )
    if len(gain) > MAX_CURVE_POINTS:
        keep = np.unique(np.linspace(0, len(gain) - 1, MAX_CURVE_POINTS).round().astype(int))
        gain = gain.iloc[keep]
    return {"gain": gain.reset_index(drop=True), "deciles": decile_table(y, p)}
