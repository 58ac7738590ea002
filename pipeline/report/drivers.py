"""Causes and symptoms apart: what each concept does to customers at risk (pure).

The drivers view of the overview splits the concepts in two. *Signals* (recency, frequency,
spend, the buying pattern) say **that** a customer is leaving; *levers* (satisfaction,
service and complaints, delivery, returns, price, relationship: the concepts with an action
in ``business.actions``) are what the business can change. Each concept's **measured effect
among customers at risk** is read off the explain stage's exact SHAP contributions on the test
cutoff, for the customers the model put at or above the high-risk line:

- ``effect_points``: the average, over those customers, of how many percentage points of risk
  the concept adds, ``100 x (sigmoid(m) - sigmoid(m - c))`` with ``m`` the customer's score
  (log-odds) and ``c`` the concept's summed contribution: the model's probability with and
  without what it knows of that concept, everything else of the customer held;
- ``raises_share``: the share of those customers for whom the concept raises the risk;
- ``effect_where_raises``: the average effect over those customers only (what acting on
  the concept could be worth where it applies).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.explain import KEYS
from pipeline.reasons import NOT_FEATURES, FeatureDictionary

SIGNAL = "signal"
LEVER = "lever"
#: The unit of a satisfaction feature that is a score (a review, a survey, a recommendation).
SCORE_UNIT = "score"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def at_risk_rows(
    shap_table: pd.DataFrame, predictions: pd.DataFrame | None, line: float, direction: float
) -> np.ndarray:
    """Positions of the explained rows whose calibrated probability is on the risky side.

    ``direction`` +1: at risk when the probability is at or above ``line`` (churn); -1: at
    or below ``1 - line`` (the likelihood of buying again). Without test predictions, none.
    """
    keys = list(KEYS)
    if predictions is None or not len(shap_table) or not set(keys) <= set(predictions.columns):
        return np.zeros(0, dtype=np.int64)
    merged = shap_table[keys].merge(
        predictions[[*keys, "probability"]], on=keys, how="left", validate="one_to_one"
    )
    p = merged["probability"].to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        risky = p >= line if direction > 0 else p <= 1.0 - line
    return np.flatnonzero(risky)


def concept_effects(
    shap_table: pd.DataFrame,
    dictionary: FeatureDictionary,
    rows: np.ndarray,
    levers: Sequence[str],
    direction: float = 1.0,
) -> pd.DataFrame:
    """One row per concept: kind (signal or lever), label, effect and share among ``rows``.

    Sorted by kind (signals first) and then by effect, largest first.
    """
    names = [c for c in shap_table.columns if c not in NOT_FEATURES]
    concept_of = dictionary.concepts(names)
    picked = shap_table.iloc[rows]
    contributions = picked[names].to_numpy(dtype="float64") * direction
    margin = picked["base_value"].to_numpy(dtype="float64") * direction + contributions.sum(axis=1)
    out = []
    for concept in dict.fromkeys(concept_of.values()):
        columns = [i for i, n in enumerate(names) if concept_of[n] == concept]
        own = contributions[:, columns].sum(axis=1)
        effect = 100 * (_sigmoid(margin) - _sigmoid(margin - own))
        raises = own > 0
        out.append(
            {
                "concept": concept,
                "label": dictionary.label(concept),
                "kind": LEVER if concept in levers else SIGNAL,
                "effect_points": float(effect.mean()) if len(rows) else float("nan"),
                "raises_share": float(raises.mean()) if len(rows) else float("nan"),
                "effect_where_raises": float(effect[raises].mean())
                if raises.any()
                else float("nan"),
                "customers": int(len(rows)),
            }
        )
    frame = pd.DataFrame(out)
    if frame.empty:
        return frame
    frame["_kind"] = frame["kind"].map({SIGNAL: 0, LEVER: 1})
    return (
        frame.sort_values(["_kind", "effect_points"], ascending=[True, False], kind="stable")
        .drop(columns="_kind")
        .reset_index(drop=True)
    )


def satisfaction_curve_feature(
    features: pd.DataFrame, dictionary: FeatureDictionary, available: Sequence[str]
) -> str | None:
    """Return the satisfaction *score* feature the model leans on most (its response curve).

    ``features`` is the explain stage's ranking (``feature``, ``concept``, strongest first).
    A score (review, survey, recommendation) shows the flattening at high satisfaction; any
    satisfaction feature when no score is available; None without one.
    """
    ranked = [
        str(f)
        for f, c in zip(features["feature"], features["concept"], strict=True)
        if c == "satisfaction" and f in available
    ]
    scores = [f for f in ranked if dictionary.info(f).unit == SCORE_UNIT]
    chosen = scores or ranked
    return chosen[0] if chosen else None


def driver_summary(effects: pd.DataFrame) -> dict[str, Any]:
    """Return the two lists of the overview, each strongest first, as JSON-ready records."""
    if effects.empty:
        return {"signals": [], "levers": [], "customers": 0}
    records: Mapping[str, list[dict[Any, Any]]] = {
        kind: effects.loc[effects["kind"] == kind].to_dict(orient="records")
        for kind in (SIGNAL, LEVER)
    }
    return {
        "signals": records[SIGNAL],
        "levers": records[LEVER],
        "customers": int(effects["customers"].iloc[0]),
    }
