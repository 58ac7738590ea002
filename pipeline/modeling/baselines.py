"""Baselines evaluated on the same test rows as the model.

- ``recency``: the rule "longer since the last order = more likely to churn" (for repurchase,
  the opposite), using ``days_since_last_order`` directly as a score; ranking metrics only.
- ``rfm_logistic``: scikit-learn logistic regression on the RFM features only (median-imputed,
  standardised).
- ``rfm_lgbm``: the same LightGBM recipe on RFM features only (fitted in :mod:`train`), so the
  report can say what satisfaction, service and the other concepts add;
- ``btyd``: BG/NBD (Fader, Hardie and Lee 2005) fitted on the test cutoff's pre-cutoff history
  (frequency, recency, age): P(no purchase in the horizon) for a churn-like target, one minus
  it for a purchase target. Left out, with a warning and the reason, when the fit fails.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.errors import DataError
from pipeline.features.catalog import Catalog
from pipeline.modeling import btyd

logger = logging.getLogger(__name__)

RECENCY_FEATURE = "days_since_last_order"
RFM_CONCEPTS = frozenset({"recency", "frequency", "monetary"})


def recency_score(frame: pd.DataFrame, risk_direction: float) -> np.ndarray:
    """Score of the recency rule: days since the last order, times the target's risk direction.

    +1 (churn): longer since the last order ranks higher; -1 (repurchase): lower.
    """
    if RECENCY_FEATURE not in frame.columns:
        raise DataError(f"panel has no {RECENCY_FEATURE} column; the recency baseline needs it")
    days = frame[RECENCY_FEATURE].to_numpy(dtype="float64", na_value=np.nan)
    # A customer with no known last order is treated as the least recent one.
    fill = np.nanmax(days) if np.isfinite(days).any() else 0.0
    days = np.where(np.isnan(days), fill, days)
    return days * float(risk_direction)


def rfm_features(feature_names: Sequence[str], catalog: Catalog) -> list[str]:
    """RFM feature names among ``feature_names``: concept recency, frequency or monetary."""
    chosen = [name for name in feature_names if catalog.concept_of(name) in RFM_CONCEPTS]
    if not chosen:
        raise DataError("no RFM features (recency/frequency/monetary) found in the panel")
    return chosen


def rfm_logistic_scores(
    train: pd.DataFrame,
    y_train: np.ndarray,
    test: pd.DataFrame,
    columns: Sequence[str],
    seed: int,
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """Fit a standardised logistic regression on RFM ``columns``; return test probabilities."""
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(train[c])]
    if not numeric:
        raise DataError("no numeric RFM features for the logistic baseline")
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000, random_state=seed),
    )
    x_train = train[numeric].to_numpy(dtype="float64", na_value=np.nan)
    x_test = test[numeric].to_numpy(dtype="float64", na_value=np.nan)
    model.fit(x_train, np.asarray(y_train, dtype="int64"), logisticregression__sample_weight=weight)
    return np.asarray(model.predict_proba(x_test)[:, 1], dtype="float64")


def fit_record(fit: btyd.BgNbd | btyd.GammaGamma) -> dict[str, Any]:
    """Return a BTYD fit as strict JSON (the NaN parameters of a failed fit become null)."""
    return {
        key: None if isinstance(value, float) and not np.isfinite(value) else value
        for key, value in fit.to_dict().items()
    }


def missing_btyd_inputs(frame: pd.DataFrame) -> list[str]:
    """Return the snapshot columns BTYD needs that ``frame`` lacks (empty when it has all)."""
    return [c for c in btyd.SNAPSHOT_COLUMNS if c not in frame.columns]


def absent_inputs_record(frame: pd.DataFrame) -> dict[str, Any] | None:
    """Return the record of a BTYD baseline left out for lack of inputs (logged), else None."""
    missing = missing_btyd_inputs(frame)
    if not missing:
        return None
    logger.warning("BTYD baseline left out: the panel lacks %s", ", ".join(missing))
    return {"failure": f"panel lacks {', '.join(missing)}"}


def btyd_probability(
    frame: pd.DataFrame, horizon_days: int, risk_direction: float
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """BG/NBD probability of the target's event on ``frame``'s own pre-cutoff history.

    P(no purchase in the next ``horizon_days``) when ``risk_direction`` is +1 (churn), else
    P(at least one purchase). Returns (None, record) when the fit does not converge.
    """
    absent = absent_inputs_record(frame)
    if absent is not None:
        return None, absent
    x, t_x, age, _ = btyd.inputs_from_snapshot(frame)
    model = btyd.fit_bgnbd(x, t_x, age)
    record = fit_record(model)
    if not model.converged:
        logger.warning("BTYD baseline left out: %s", model.message)
        return None, record
    none = btyd.probability_no_purchase(model, float(horizon_days), x, t_x, age)
    prob = none if risk_direction > 0 else 1.0 - none
    if not np.isfinite(prob).all():
        record["failure"] = f"{int((~np.isfinite(prob)).sum())} non-finite probabilities"
        logger.warning("BTYD baseline left out: %s", record["failure"])
        return None, record
    return np.clip(prob, 0.0, 1.0), record
