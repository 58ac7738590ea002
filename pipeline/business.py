"""Business rules applied to scored customers: risk band, loyalty tier, value, RFM segment.

These turn a customer's predictions and own history into the labels a marketing team plans
with. Every threshold is one key of ``params.yaml`` section ``business``; every population
statistic (the value tier lines, the RFM quintile edges, the reason-code threshold) is read
from a model's **reference**: quantiles of the features and of the prediction over the test
cutoff's population, fitted by ``train`` and shipped in
``features.json`` (:class:`Reference`). So a customer's labels depend only on that customer
and the model, never on who else is in the batch.

Definitions:

- *churn risk band* (from the risk target's probability p): high p >= ``risk_high`` (a
  *predicted churner*), medium p >= ``risk_medium``, else low;
- *loyalty tier* (from the tier target's probability q): high q >= ``tier_high``, medium
  q >= ``tier_medium``, else low;
- *expected value*: the value model's expected spend in its horizon (``value_target``; the
  horizon is in the scores manifest), missing when no value model is scored;
- *value at risk*: p x expected value: the spend expected to be lost to churn;
- *value tier*: high when the expected value is at or above the value model's reference
  ``high_value_quantile``, medium at or above ``value_medium_quantile``, else low;
- *high value*: value tier high (and expected value > 0);
- *RFM segment*: recency and frequency quintile scores 1-5 against the reference quintile
  edges, named by the (r, f) boxes of ``configs/features.yaml``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import BusinessParams
from pipeline.errors import ModelError

#: Quantile levels of the reference: every 1% plus the upper tail (spend caps live there).
QUANTILES: tuple[float, ...] = tuple(
    sorted({round(i / 100, 2) for i in range(101)} | {0.995, 0.999})
)
#: Probability quantiles are kept finer (the reason-code threshold can be any share).
PROBABILITY_QUANTILES: tuple[float, ...] = tuple(round(i / 1000, 3) for i in range(1001))
RECENCY, FREQUENCY, MONETARY = "days_since_last_order", "lifetime_orders", "lifetime_spend"
QUINTILE_EDGES = (0.2, 0.4, 0.6, 0.8)
LEVELS = ("high", "medium", "low")


@dataclass(frozen=True)
class Reference:
    """Quantiles of a model's reference population (fitted in ``train``, shipped with it)."""

    population: str
    rows: int
    probability: tuple[float, ...]
    features: Mapping[str, tuple[float, ...]]

    @classmethod
    def fit(cls, frame: pd.DataFrame, probability: Any, population: str) -> Reference:
        """Quantiles of every numeric column of ``frame`` and of the probabilities."""
        features: dict[str, tuple[float, ...]] = {}
        for name in frame.columns:
            series = frame[name]
            if isinstance(series.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
                series
            ):
                continue
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            values = values[np.isfinite(values)]
            if values.size:
                features[str(name)] = tuple(float(v) for v in np.quantile(values, QUANTILES))
        p = np.asarray(probability, dtype="float64")
        p = p[np.isfinite(p)]
        prob = tuple(float(v) for v in np.quantile(p, PROBABILITY_QUANTILES)) if p.size else ()
        return cls(population, int(len(frame)), prob, features)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored as ``reference`` in ``features.json``)."""
        return {
            "population": self.population,
            "rows": self.rows,
            "quantiles": list(QUANTILES),
            "probability_quantiles": list(PROBABILITY_QUANTILES),
            "probability": list(self.probability),
            "features": {k: list(v) for k, v in self.features.items()},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, origin: str) -> Reference:
        """Read the ``reference`` block of a model's ``features.json``."""
        if not raw:
            raise ModelError(
                f"{origin}: the model has no reference distribution (trained before it was "
                "shipped with models); retrain it"
            )
        if list(raw.get("quantiles", [])) != list(QUANTILES) or list(
            raw.get("probability_quantiles", [])
        ) != list(PROBABILITY_QUANTILES):
            raise ModelError(f"{origin}: reference quantile levels differ from this version's")
        return cls(
            population=str(raw.get("population", "")),
            rows=int(raw.get("rows", 0)),
            probability=tuple(float(v) for v in raw.get("probability", [])),
            features={str(k): tuple(float(x) for x in v) for k, v in raw["features"].items()},
        )

    def feature_quantile(self, name: str, q: float) -> float:
        """Return the ``q`` quantile of feature ``name`` (NaN when the reference lacks it)."""
        values = self.features.get(name)
        if not values:
            return math.nan
        return float(np.interp(q, QUANTILES, values))

    def probability_quantile(self, q: float) -> float:
        """Return the ``q`` quantile of the model's calibrated probability on its reference."""
        if not self.probability:
            return math.nan
        return float(np.interp(q, PROBABILITY_QUANTILES, self.probability))


def _bands(values: Any, high: float, medium: float) -> pd.Series:
    p = pd.Series(values, dtype="float64")
    band = np.select([p >= high, p >= medium], ["high", "medium"], "low")
    return pd.Series(band, index=p.index, dtype="string").mask(p.isna())


def churn_risk_band(churn_probability: Any, rules: BusinessParams) -> pd.Series:
    """Churn risk band: high >= ``risk_high``, medium >= ``risk_medium``, else low."""
    return _bands(churn_probability, rules.risk_high, rules.risk_medium)


def loyalty_tier(repurchase_probability: Any, rules: BusinessParams) -> pd.Series:
    """Loyalty tier: high >= ``tier_high``, medium >= ``tier_medium``, else low."""
    return _bands(repurchase_probability, rules.tier_high, rules.tier_medium)


def expected_value(predicted: Any) -> pd.Series:
    """Return expected spend: the value model's prediction (missing stays missing, >= 0)."""
    return pd.Series(np.asarray(predicted, dtype="float64")).clip(lower=0.0)


def value_at_risk(churn_probability: Any, expected: Any) -> pd.Series:
    """Spend expected to be lost: churn probability x expected value."""
    p = pd.Series(np.asarray(churn_probability, dtype="float64"))
    return (p * pd.Series(np.asarray(expected, dtype="float64"))).rename("value_at_risk")


def value_lines(value_reference: Reference | None, rules: BusinessParams) -> tuple[float, float]:
    """Return the (high, medium) value tier lines: quantiles of the value model's reference."""
    if value_reference is None:
        return math.nan, math.nan
    return (
        value_reference.probability_quantile(rules.high_value_quantile),
        value_reference.probability_quantile(rules.value_medium_quantile),
    )


def value_tier(expected: Any, lines: tuple[float, float]) -> pd.Series:
    """Value tier: high >= the high line, medium >= the medium line, else low (missing: NA)."""
    high, medium = lines
    value = pd.Series(np.asarray(expected, dtype="float64"))
    if not (math.isfinite(high) and math.isfinite(medium)):
        return pd.Series([None] * len(value), dtype="string")
    return _bands(value, high, medium)


def high_value(expected: Any, lines: tuple[float, float]) -> pd.Series:
    """Flag expected values at or above the high value line (and > 0)."""
    value = pd.Series(np.asarray(expected, dtype="float64"))
    line = lines[0]
    if not math.isfinite(line):
        return pd.Series(pd.NA, index=value.index, dtype="boolean")
    return ((value >= line) & (value > 0)).astype("boolean").mask(value.isna())


def quintile_score(values: Any, edges: Sequence[float], higher_is_better: bool) -> np.ndarray:
    """Score 1-5 against fixed quintile edges (a value on an edge takes the lower score)."""
    x = np.asarray(values, dtype="float64")
    above = np.searchsorted(np.asarray(edges, dtype="float64"), x, side="left")
    score = (above + 1) if higher_is_better else (5 - above)
    return np.where(np.isnan(x), np.nan, score.astype("float64"))


def rfm_segment(
    snapshot: pd.DataFrame, reference: Reference, grid: Sequence[Sequence[str]]
) -> pd.Series:
    """Named RFM segment of each row, from reference quintile edges (missing when unknown)."""
    n = len(snapshot)
    edges = {
        name: [reference.feature_quantile(name, q) for q in QUINTILE_EDGES]
        for name in (RECENCY, FREQUENCY)
    }
    if any(name not in snapshot.columns or not np.isfinite(edges[name]).all() for name in edges):
        return pd.Series([None] * n, index=snapshot.index, dtype="string")
    r = quintile_score(snapshot[RECENCY], edges[RECENCY], higher_is_better=False)
    f = quintile_score(snapshot[FREQUENCY], edges[FREQUENCY], higher_is_better=True)
    known = np.isfinite(r) & np.isfinite(f)
    names = np.full(n, None, dtype=object)
    table = np.asarray(grid, dtype=object)
    names[known] = table[r[known].astype(int) - 1, f[known].astype(int) - 1]
    return pd.Series(pd.array(names, dtype="string"), index=snapshot.index)


def reasons_threshold(reference: Reference, top_share: float) -> float:
    """Risk probability at or above which a customer gets reason codes.

    The reference's ``1 - top_share`` quantile: on a population like the reference, about
    ``top_share`` of customers get reasons; ``inf`` when ``top_share`` is 0.
    """
    if top_share <= 0:
        return math.inf
    return reference.probability_quantile(1.0 - top_share)


def business_labels(
    snapshot: pd.DataFrame,
    predictions: Mapping[str, Any],
    rules: BusinessParams,
    reference: Reference,
    grid: Sequence[Sequence[str]],
    value_reference: Reference | None = None,
) -> pd.DataFrame:
    """Every business label of the rows of ``snapshot`` (positional, same row order).

    ``predictions`` maps a target name to its predictions (probabilities, expected spend); a
    label whose target has no model is missing. ``reference`` is the risk model's,
    ``value_reference`` the value model's.
    """
    n = len(snapshot)
    missing = pd.Series(np.full(n, np.nan))
    risk = pd.Series(np.asarray(predictions.get(rules.risk_target, missing), dtype="float64"))
    tier = pd.Series(np.asarray(predictions.get(rules.tier_target, missing), dtype="float64"))
    value = None if rules.value_target is None else predictions.get(rules.value_target)
    expected = expected_value(missing if value is None else value)
    lines = value_lines(value_reference, rules)
    return pd.DataFrame(
        {
            "churn_risk_band": churn_risk_band(risk, rules).to_numpy(),
            "loyalty_tier": loyalty_tier(tier, rules).to_numpy(),
            "value_tier": value_tier(expected, lines).array,
            "rfm_segment": rfm_segment(snapshot.reset_index(drop=True), reference, grid).array,
            "value_at_risk": value_at_risk(risk, expected).to_numpy(),
            "high_value": high_value(expected, lines).array,
        }
    )
