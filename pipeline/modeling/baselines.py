"""Baselines evaluated on the same test rows as the model.

- ``recency``: the rule "longer since the last order = more likely to churn" (for repurchase,
  the opposite), using ``days_since_last_order`` directly as a score; ranking metrics only.
- ``rfm_logistic``: scikit-learn logistic regression on the RFM features only (median-imputed,
  standardised).
- ``rfm_lgbm``: the same LightGBM recipe on RFM features only (fitted in :mod:`train`), so the
  report can say what satisfaction, service and the other concepts add.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.errors import DataError
from pipeline.features.catalog import Catalog

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
    train: pd.DataFrame, y_train: np.ndarray, test: pd.DataFrame, columns: Sequence[str], seed: int
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
    model.fit(x_train, np.asarray(y_train, dtype="int64"))
    return np.asarray(model.predict_proba(x_test)[:, 1], dtype="float64")
