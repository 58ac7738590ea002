"""Baselines evaluated on the same test rows as the model.

- ``recency``: the rule "longer since the last order = more likely to churn" (for repurchase,
  the opposite), using ``days_since_last_order`` directly as a score; ranking metrics only.
- ``rfm_logistic``: scikit-learn logistic regression on the RFM features only (median-imputed,
  standardised).
- ``rfm_lgbm``: the same LightGBM recipe on RFM features only (fitted in :mod:`train`), so the
  report can say what satisfaction, service and the other concepts add.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.errors import DataError

RECENCY_FEATURE = "days_since_last_order"
RFM_CONCEPTS = frozenset({"recency", "frequency", "monetary"})
# Used when configs/features.yaml is absent: RFM features by their name.
RFM_PREFIXES = ("days_since_last_order", "recency", "frequency", "monetary", "orders_", "spend_")


def recency_score(frame: pd.DataFrame, target: str) -> np.ndarray:
    """Score of the recency rule: days since the last order (negated for repurchase)."""
    if RECENCY_FEATURE not in frame.columns:
        raise DataError(f"panel has no {RECENCY_FEATURE} column; the recency baseline needs it")
    days = frame[RECENCY_FEATURE].to_numpy(dtype="float64", na_value=np.nan)
    # A customer with no known last order is treated as the least recent one.
    fill = np.nanmax(days) if np.isfinite(days).any() else 0.0
    days = np.where(np.isnan(days), fill, days)
    return days if target == "churn" else -days


def rfm_features(
    feature_names: Sequence[str], feature_config: Mapping[str, Any] | None = None
) -> list[str]:
    """RFM feature names among ``feature_names``: by concept from features.yaml, else by prefix."""
    concepts = dictionary_field(feature_config, "concept")
    if concepts:
        chosen = [name for name in feature_names if field_of(name, concepts) in RFM_CONCEPTS]
    else:
        chosen = [name for name in feature_names if name.startswith(RFM_PREFIXES)]
    if not chosen:
        raise DataError("no RFM features (recency/frequency/monetary) found in the panel")
    return chosen


def field_of(name: str, values: Mapping[str, str]) -> str | None:
    """Return a dictionary field of a panel column; names may hold a ``{window}``."""
    if name in values:
        return values[name]
    for pattern, concept in values.items():
        if "{window}" in pattern:
            head, _, tail = pattern.partition("{window}")
            regex = re.escape(head) + r"\d+" + re.escape(tail)
            if re.fullmatch(regex, name):
                return concept
    return None


def dictionary_field(feature_config: Mapping[str, Any] | None, field: str) -> dict[str, str]:
    """Map feature name -> ``field`` (concept, direction) from a features.yaml document."""
    if not feature_config:
        return {}
    entries = feature_config.get("features", feature_config)
    out: dict[str, str] = {}
    if isinstance(entries, Mapping):
        for name, meta in entries.items():
            if isinstance(meta, Mapping) and field in meta:
                out[str(name)] = str(meta[field])
    elif isinstance(entries, list):
        for meta in entries:
            if isinstance(meta, Mapping) and "name" in meta and field in meta:
                out[str(meta["name"])] = str(meta[field])
    return out


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
