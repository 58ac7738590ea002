"""Business rules applied to scored customers: risk band, loyalty tier, value, RFM segment.

These turn a customer's predictions and own history into the labels a marketing team plans
with. Every threshold is one key of ``params.yaml`` section ``business``; every population
statistic (the spend cap, the high-value line, the RFM quintile edges, the reason-code
threshold) is read from the model's **reference**: quantiles of the features and of the
calibrated probability over the test cutoff's population, fitted by ``train`` and shipped in
``features.json`` (:class:`Reference`). So a customer's labels depend only on that customer
and the model, never on who else is in the batch.

Definitions:

- *churn risk band* (from the risk target's probability p): high p >= ``risk_high`` (a
  *predicted churner*), medium p >= ``risk_medium``, else low;
- *loyalty tier* (from the tier target's probability q): high q >= ``tier_high``, medium
  q >= ``tier_medium``, else low;
- *expected value*: the customer's spend over the ``value_feature`` window (their history
  repeated), capped at the reference's ``spend_cap_quantile`` so that a few bulk or mistyped
  orders do not hold most of the value at risk;
- *value at risk*: p x expected value;
- *high value*: expected value at or above the reference's ``high_value_quantile`` (and > 0);
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


def spend_cap(reference: Reference, rules: BusinessParams) -> float:
    """Return the cap on expected value: the reference quantile ``spend_cap_quantile``."""
    return reference.feature_quantile(rules.value_feature, rules.spend_cap_quantile)


def expected_value(spend: Any, cap: float) -> pd.Series:
    """Return expected spend: the customer's own window spend (missing = 0), capped at ``cap``."""
    value = pd.Series(np.asarray(spend, dtype="float64")).fillna(0.0).clip(lower=0.0)
    return value.clip(upper=cap) if math.isfinite(cap) else value


def value_at_risk(churn_probability: Any, expected: Any) -> pd.Series:
    """Spend expected to be lost: churn probability x expected value."""
    p = pd.Series(np.asarray(churn_probability, dtype="float64"))
    return (p * pd.Series(np.asarray(expected, dtype="float64"))).rename("value_at_risk")


def high_value_line(reference: Reference, rules: BusinessParams) -> float:
    """Return the expected value at or above which a customer is high-value (reference quantile)."""
    return reference.feature_quantile(rules.value_feature, rules.high_value_quantile)


def high_value(expected: Any, reference: Reference, rules: BusinessParams) -> pd.Series:
    """Flag expected values >= the reference quantile ``high_value_quantile`` (and > 0)."""
    line = high_value_line(reference, rules)
    value = pd.Series(np.asarray(expected, dtype="float64"))
    if not math.isfinite(line):
        return pd.Series(pd.NA, index=value.index, dtype="boolean")
    return ((value >= line) & (value > 0)).astype("boolean")


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
    probabilities: Mapping[str, Any],
    rules: BusinessParams,
    reference: Reference,
    grid: Sequence[Sequence[str]],
) -> pd.DataFrame:
    """Every business label of the rows of ``snapshot`` (positional, same row order).

    ``probabilities`` maps a target name to its calibrated probabilities; a label whose target
    has no model is missing.
    """
    n = len(snapshot)
    missing = pd.Series(np.full(n, np.nan))
    risk = pd.Series(np.asarray(probabilities.get(rules.risk_target, missing), dtype="float64"))
    tier = pd.Series(np.asarray(probabilities.get(rules.tier_target, missing), dtype="float64"))
    spend = (
        snapshot[rules.value_feature].to_numpy(dtype="float64", na_value=np.nan)
        if rules.value_feature in snapshot.columns
        else np.full(n, np.nan)
    )
    expected = expected_value(spend, spend_cap(reference, rules))
    out = pd.DataFrame(
        {
            "churn_risk_band": churn_risk_band(risk, rules).to_numpy(),
            "loyalty_tier": loyalty_tier(tier, rules).to_numpy(),
            "rfm_segment": rfm_segment(snapshot.reset_index(drop=True), reference, grid).array,
            "expected_value": expected.to_numpy(),
            "value_at_risk": value_at_risk(risk, expected).to_numpy(),
            "high_value": high_value(expected, reference, rules).array,
        }
    )
    return out
