"""Business rules applied to scored customers: risk band, loyalty tier, value, RFM segment.

These turn a customer's predictions and own history into the labels a marketing team plans
with. Every threshold is one key of ``params.yaml`` section ``business``; every population
statistic (the value tier lines, the RFM quintile edges, the reason-code threshold) is read
from a model's **reference**: quantiles of the features and of the prediction over the test
cutoff's population, fitted by ``train`` and shipped in
``features.json`` (:class:`Reference`). So a customer's labels depend only on that customer
and the model, never on who else is in the batch.

Who gets reason codes is a rule of this module too (:class:`ReasonCuts`): customers are ranked
by (risk probability, raw margin, customer hash), and the cut of each share is the key of the
reference customer ranked last within it, so exactly that share of the reference population,
``round(share x rows)``, gets reasons, and any other customer's decision is a comparison of
their own key with the shipped cut.

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import SHARE_STEPS, BusinessParams, share_step
from pipeline.errors import ModelError
from pipeline.features.partition import customer_hash

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
class ReasonCut:
    """The ranking key of the last reference customer within one share: who gets reasons.

    A customer's key is (probability, raw margin, customer hash): the calibrated probability,
    then the model's uncalibrated margin (the ranking inside a calibration step, where many
    customers share one probability), both in the target's risk direction, then
    ``crc32(customer_id)`` (:func:`pipeline.features.partition.customer_hash`), a fixed order
    that favours no kind of customer. Each part is the customer's own, so the decision never
    depends on the batch.
    """

    probability: float
    raw_margin: float
    customer_hash: int
    direction: float = 1.0
    #: Reference customers at or above the cut: ``round(share x rows)``.
    reference_customers: int = 0

    def selects(self, probability: Any, raw_margin: Any, hashes: Any) -> np.ndarray:
        """Return whether each customer's key is at or above the cut (missing: never)."""
        d = self.direction
        p = d * np.asarray(probability, dtype="float64")
        m = d * np.asarray(raw_margin, dtype="float64")
        h = np.asarray(hashes, dtype="int64")
        cut_p, cut_m = d * self.probability, d * self.raw_margin
        on_margin = (m > cut_m) | ((m == cut_m) & (h >= self.customer_hash))
        return (p > cut_p) | ((p == cut_p) & on_margin)


@dataclass(frozen=True)
class ReasonCuts:
    """The :class:`ReasonCut` of every share 0.001 .. 1 on a model's reference population.

    ``customers[i - 1]`` reference customers, ``round(i / 1000 x rows)`` (halves up), are at or
    above the cut of share ``i / 1000``: exactly, since keys tie only if two customers share a
    probability, a margin and a crc32 (such a pair is decided alike).
    """

    direction: float
    customers: tuple[int, ...]
    probability: tuple[float, ...]
    raw_margin: tuple[float, ...]
    customer_hash: tuple[int, ...]

    @classmethod
    def fit(
        cls, probability: Any, raw_margin: Any, customer_ids: Any, direction: float
    ) -> ReasonCuts:
        """Rank the reference customers by their key and keep the cut of every share."""
        d = float(direction)
        p = np.asarray(probability, dtype="float64")
        m = np.asarray(raw_margin, dtype="float64")
        h = customer_hash(customer_ids)
        known = np.isfinite(p) & np.isfinite(m)
        p, m, h = p[known], m[known], h[known]
        # Riskiest first: np.lexsort sorts by its last key first, ascending.
        order = np.lexsort((-h, -d * m, -d * p))
        steps = np.arange(1, SHARE_STEPS + 1)
        # round(step / 1000 x n), halves up, in integers (no float rounding at the edges).
        counts = (2 * steps * len(order) + SHARE_STEPS) // (2 * SHARE_STEPS)
        if not len(order):
            zeros = (0,) * SHARE_STEPS
            return cls(d, zeros, (0.0,) * SHARE_STEPS, (0.0,) * SHARE_STEPS, zeros)
        # A share too small to hold one customer has no cut: its (never read) key is row 0's.
        rows = order[np.maximum(counts - 1, 0)]
        return cls(
            d,
            tuple(int(k) for k in counts),
            tuple(float(v) for v in p[rows]),
            tuple(float(v) for v in m[rows]),
            tuple(int(v) for v in h[rows]),
        )

    def cut(self, share: float) -> ReasonCut | None:
        """Return the cut of ``share`` (a multiple of 0.001), None when nobody gets reasons."""
        step = share_step(share)
        if step == 0 or self.customers[step - 1] == 0:
            return None
        i = step - 1
        return ReasonCut(
            self.probability[i],
            self.raw_margin[i],
            self.customer_hash[i],
            self.direction,
            self.customers[i],
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``reason_cuts`` of the reference; index i is share (i + 1)/1000)."""
        return {
            "direction": self.direction,
            "customers": list(self.customers),
            "probability": list(self.probability),
            "raw_margin": list(self.raw_margin),
            "customer_hash": list(self.customer_hash),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], origin: str) -> ReasonCuts:
        """Read the ``reason_cuts`` block of a reference."""
        lists = ("customers", "probability", "raw_margin", "customer_hash")
        if any(len(raw.get(key, [])) != SHARE_STEPS for key in lists):
            raise ModelError(f"{origin}: reason_cuts do not hold one cut per 0.001 of share")
        return cls(
            float(raw["direction"]),
            tuple(int(v) for v in raw["customers"]),
            tuple(float(v) for v in raw["probability"]),
            tuple(float(v) for v in raw["raw_margin"]),
            tuple(int(v) for v in raw["customer_hash"]),
        )


def _numeric(series: pd.Series) -> bool:
    return not isinstance(series.dtype, pd.CategoricalDtype) and bool(
        pd.api.types.is_numeric_dtype(series)
    )


@dataclass(frozen=True)
class Reference:
    """A model's reference population (fitted in ``train``, shipped with it).

    Quantiles of the features and of the prediction, each feature's share of customers with a
    value (``known_share``) and with a value of zero among those (``zero_share``), and for a
    binary model the reason-code cuts (:class:`ReasonCuts`).
    """

    population: str
    rows: int
    probability: tuple[float, ...]
    features: Mapping[str, tuple[float, ...]]
    zero_share: Mapping[str, float] = field(default_factory=dict)
    known_share: Mapping[str, float] = field(default_factory=dict)
    cuts: ReasonCuts | None = None

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        probability: Any,
        population: str,
        cuts: ReasonCuts | None = None,
    ) -> Reference:
        """Quantiles and shares of the columns of ``frame``; quantiles of ``probability``."""
        features: dict[str, tuple[float, ...]] = {}
        zero: dict[str, float] = {}
        known: dict[str, float] = {}
        for name in frame.columns:
            series = frame[name]
            known[str(name)] = float(series.notna().mean()) if len(series) else 0.0
            if not _numeric(series):
                continue
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            values = values[np.isfinite(values)]
            if values.size:
                features[str(name)] = tuple(float(v) for v in np.quantile(values, QUANTILES))
                zero[str(name)] = float(np.mean(values == 0.0))
        p = np.asarray(probability, dtype="float64")
        p = p[np.isfinite(p)]
        prob = tuple(float(v) for v in np.quantile(p, PROBABILITY_QUANTILES)) if p.size else ()
        return cls(population, int(len(frame)), prob, features, zero, known, cuts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored as ``reference`` in ``features.json``)."""
        out: dict[str, Any] = {
            "population": self.population,
            "rows": self.rows,
            "quantiles": list(QUANTILES),
            "probability_quantiles": list(PROBABILITY_QUANTILES),
            "probability": list(self.probability),
            "features": {k: list(v) for k, v in self.features.items()},
            "zero_share": dict(self.zero_share),
            "known_share": dict(self.known_share),
        }
        if self.cuts is not None:
            out["reason_cuts"] = self.cuts.to_dict()
        return out

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
        cuts = raw.get("reason_cuts")
        return cls(
            population=str(raw.get("population", "")),
            rows=int(raw.get("rows", 0)),
            probability=tuple(float(v) for v in raw.get("probability", [])),
            features={str(k): tuple(float(x) for x in v) for k, v in raw["features"].items()},
            zero_share={str(k): float(v) for k, v in raw.get("zero_share", {}).items()},
            known_share={str(k): float(v) for k, v in raw.get("known_share", {}).items()},
            cuts=None if cuts is None else ReasonCuts.from_dict(cuts, origin),
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


def reasons_cut(reference: Reference, top_share: float) -> ReasonCut | None:
    """Return the cut at or above which a customer gets reason codes (None: nobody does).

    Exactly ``round(top_share x rows)`` customers of the reference population are at or above
    it; on another population the share is what that population's risk makes it.
    """
    if share_step(top_share) == 0:
        return None
    if reference.cuts is None:
        raise ModelError(
            f"the model's reference ({reference.population}) ships no reason-code cuts "
            "(trained before they were shipped with models); retrain it"
        )
    return reference.cuts.cut(top_share)


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
