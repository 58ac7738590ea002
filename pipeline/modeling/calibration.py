"""Probability calibration fitted on validation margins, stored as plain JSON.

The calibrator maps LightGBM's raw margin (log-odds) to a probability:

- ``isotonic``: a monotone step-wise-linear map, stored as its breakpoints
  (``x`` margins, ``y`` probabilities) and applied with linear interpolation, clipped at the ends
  (the same rule as scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``);
- ``platt``: ``p = 1 / (1 + exp(-(a * margin + b)))``.

Probabilities are clipped to ``[EPS, 1 - EPS]`` so that log loss stays finite when isotonic
regression produces a pure bin.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from pipeline.errors import ModelError

EPS = 1e-6


def fit_calibration(
    y_true: np.ndarray, raw_margin: np.ndarray, method: Literal["isotonic", "platt"]
) -> dict[str, Any]:
    """Fit a calibrator on (validation) labels and raw margins; return its JSON form."""
    y = np.asarray(y_true, dtype="float64")
    m = np.asarray(raw_margin, dtype="float64")
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True)
        iso.fit(m, y)
        return {
            "method": "isotonic",
            "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_],
            "n_rows": int(len(y)),
        }
    if method == "platt":
        # Large C: plain maximum likelihood, no shrinkage of the slope.
        lr = LogisticRegression(C=1e6, solver="lbfgs", max_iter=1000)
        lr.fit(m.reshape(-1, 1), y.astype("int64"))
        return {
            "method": "platt",
            "a": float(lr.coef_[0, 0]),
            "b": float(lr.intercept_[0]),
            "n_rows": int(len(y)),
        }
    raise ValueError(f"unknown calibration method {method!r}")


def apply_calibration(calibration: dict[str, Any], raw_margin: np.ndarray) -> np.ndarray:
    """Map raw margins to calibrated probabilities with a stored calibrator (pure)."""
    m = np.asarray(raw_margin, dtype="float64")
    method = calibration.get("method")
    if method == "isotonic":
        x = np.asarray(calibration["x"], dtype="float64")
        y = np.asarray(calibration["y"], dtype="float64")
        if len(x) == 0 or len(x) != len(y) or np.any(np.diff(x) < 0):
            raise ModelError("calibration.json: isotonic breakpoints are empty or not sorted")
        prob = np.interp(m, x, y)
    elif method == "platt":
        prob = 1.0 / (1.0 + np.exp(-(calibration["a"] * m + calibration["b"])))
    else:
        raise ModelError(f"calibration.json: unknown method {method!r}")
    return np.clip(prob, EPS, 1.0 - EPS)
