"""Batch scoring of one partition of customers (pure: DataFrames and typed params in and out).

Scoring runs in two passes so that its result does not depend on how customers were split:

1. :func:`score_snapshot`: per partition, both models' calibrated probabilities, the loyalty
   tier, churn risk band and value at risk, from the very ``build_snapshot`` output used in
   training (the engines call :func:`pipeline.features.snapshot.build_snapshot` on the
   partition's clean tables).
2. :func:`add_reasons`: reason codes only for customers whose churn probability is at or above
   :func:`reasons_threshold`, the threshold of the top ``reasons_top_share`` of *all* scored
   customers (computed by the engine from every partition's pass-1 probabilities), so that 4
   or 64 partitions, local or Spark, give the same rows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from pipeline.errors import DataError
from pipeline.explain import loyalty_tier, spend_cap, value_at_risk
from pipeline.reasons import FeatureDictionary, reason_codes

logger = logging.getLogger(__name__)

TARGETS = ("churn", "repurchase")
N_REASONS = 3
OUTPUT_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "as_of",
    "churn_probability",
    "repurchase_probability",
    "loyalty_tier",
    "churn_risk_band",
    "value_at_risk",
    *(f"reason_{i}" for i in range(1, N_REASONS + 1)),
    "churn_model",
    "churn_model_version",
    "repurchase_model",
    "repurchase_model_version",
)


FLOAT_COLUMNS = ("churn_probability", "repurchase_probability", "value_at_risk")


def conform_output(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with exactly :data:`OUTPUT_COLUMNS` in their contract dtypes.

    Every engine passes its result through this, so that local and Spark output (Spark's
    Parquet round trip changes string and timestamp types) are the same table.
    """
    out: dict[str, Any] = {}
    for name in OUTPUT_COLUMNS:
        series = frame[name]
        if name == "as_of":
            out[name] = pd.to_datetime(series, utc=True).dt.as_unit("us")
        elif name in FLOAT_COLUMNS:
            out[name] = series.astype("float64")
        else:
            out[name] = series.astype("string")
    return pd.DataFrame(out, index=frame.index)


class Model(Protocol):
    """What scoring needs from a predictor (see :class:`pipeline.modeling.artifacts.Predictor`)."""

    feature_names: list[str]

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        """Calibrated probabilities, input row order."""
        ...

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """TreeSHAP contributions in log-odds (features + ``base_value``)."""
        ...


@dataclass(frozen=True)
class ScoringModel:
    """A loaded model with the name and version written next to its scores."""

    target: str
    name: str
    version: str
    predictor: Model


@dataclass(frozen=True)
class ScoringRules:
    """Business rules of the output: risk bands, value at risk, reason codes."""

    high_risk: float = 0.5
    medium_risk: float = 0.2
    value_feature: str = "spend_sum_365d"
    reasons_top_share: float = 0.2
    # Expected spend is capped at this quantile over all scored customers (as in the report);
    # the engines gather the spend of every partition and set ``spend_cap`` before pass 1.
    spend_cap_quantile: float = 0.995
    spend_cap: float | None = None


def churn_risk_band(churn_probability: Any, rules: ScoringRules) -> pd.Series:
    """Churn risk band: high >= ``rules.high_risk``, medium >= ``rules.medium_risk``, else low."""
    p = pd.Series(churn_probability, dtype="float64")
    band = np.select([p >= rules.high_risk, p >= rules.medium_risk], ["high", "medium"], "low")
    return pd.Series(band, index=p.index, dtype="string").mask(p.isna())


def score_snapshot(
    snapshot: pd.DataFrame,
    as_of: pd.Timestamp,
    models: Mapping[str, ScoringModel],
    rules: ScoringRules,
) -> pd.DataFrame:
    """Pass 1: one row per snapshot customer with probabilities, tier, band, value at risk.

    Columns are :data:`OUTPUT_COLUMNS` (reasons still empty), sorted by ``customer_id``. A
    target without a model has empty probability, tier or band columns.
    """
    unknown = set(models) - set(TARGETS)
    if unknown:
        raise DataError(f"unknown model target(s): {sorted(unknown)}")
    snapshot = snapshot.sort_values("customer_id", kind="stable").reset_index(drop=True)
    n = len(snapshot)
    out = pd.DataFrame({"customer_id": snapshot["customer_id"].astype("string")})
    out["as_of"] = pd.Series([as_of] * n, dtype="datetime64[us, UTC]")
    for target in TARGETS:
        model = models.get(target)
        proba = (
            np.asarray(model.predictor.predict_proba(snapshot), dtype="float64")
            if model is not None and n
            else np.full(n, np.nan)
        )
        out[f"{target}_probability"] = proba
    out["loyalty_tier"] = loyalty_tier(out["repurchase_probability"])
    out["churn_risk_band"] = churn_risk_band(out["churn_probability"], rules)
    spend = (
        snapshot[rules.value_feature]
        if rules.value_feature in snapshot.columns
        else pd.Series(np.nan, index=snapshot.index)
    )
    if rules.spend_cap is not None:
        spend = spend.clip(upper=rules.spend_cap)
    out["value_at_risk"] = value_at_risk(out["churn_probability"], spend).to_numpy()
    for i in range(1, N_REASONS + 1):
        out[f"reason_{i}"] = pd.Series([None] * n, dtype="string")
    for target in TARGETS:
        model = models.get(target)
        out[f"{target}_model"] = pd.Series([model.name if model else None] * n, dtype="string")
        out[f"{target}_model_version"] = pd.Series(
            [model.version if model else None] * n, dtype="string"
        )
    return conform_output(out)


def with_spend_cap(rules: ScoringRules, spend: Any) -> ScoringRules:
    """Return ``rules`` with the spend cap computed over every scored customer's spend."""
    from dataclasses import replace

    return replace(rules, spend_cap=spend_cap(spend, rules.spend_cap_quantile))


def reasons_threshold(churn_probability: Any, top_share: float) -> float:
    """Churn probability at or above which a customer gets reason codes.

    The ``ceil(top_share * n)``-th largest probability over all scored customers (ties at the
    threshold are all included); ``inf`` when no one should get reasons.
    """
    p = np.asarray(churn_probability, dtype="float64")
    p = p[np.isfinite(p)]
    k = math.ceil(top_share * len(p))
    if k <= 0:
        return math.inf
    return float(np.partition(p, len(p) - k)[len(p) - k])


def add_reasons(
    scored: pd.DataFrame,
    snapshot: pd.DataFrame,
    churn_model: ScoringModel | None,
    dictionary: FeatureDictionary,
    threshold: float,
) -> pd.DataFrame:
    """Pass 2: fill ``reason_1..3`` for customers with churn probability >= ``threshold``.

    ``scored`` is the pass-1 output of the same partition; ``snapshot`` its feature rows (any
    order). Returns a new frame; the inputs are not modified.
    """
    out = scored.copy()
    if churn_model is None or not math.isfinite(threshold) or out.empty:
        return out
    chosen = out.index[out["churn_probability"].to_numpy() >= threshold]
    if len(chosen) == 0:
        return out
    by_id = snapshot.set_index(snapshot["customer_id"].astype("string"), drop=False)
    features = by_id.loc[out.loc[chosen, "customer_id"].to_numpy()].reset_index(drop=True)
    contributions = churn_model.predictor.contributions(features)
    reasons = reason_codes(features, contributions, dictionary, top_k=N_REASONS, direction=1.0)
    for i in range(1, N_REASONS + 1):
        column = out[f"reason_{i}"].copy()
        column.loc[chosen] = reasons[f"reason_{i}"].to_numpy()
        out[f"reason_{i}"] = column
    return out


# --- population-relative features ---------------------------------------------------------

RFM_BASES = ("days_since_last_order", "lifetime_orders", "lifetime_spend")
RFM_COLUMNS = ("rfm_r_score", "rfm_f_score", "rfm_m_score", "rfm_segment")


def population_rfm(
    bases: pd.DataFrame, grid: list[list[str]], levels: tuple[str, ...]
) -> pd.DataFrame:
    """RFM quintile scores and segment over the *whole* scoring population.

    RFM scores rank a customer among all customers of the snapshot, so a partition alone
    cannot compute them. The engines gather ``customer_id`` and the three base columns of
    every partition (three floats per customer) and call this once; it is
    :func:`pipeline.features.rfm.rfm_scores`, the function training used.
    """
    from pipeline.features.rfm import rfm_scores

    ordered = bases.sort_values("customer_id", kind="stable").reset_index(drop=True)
    days, orders, spend = (ordered[name] for name in RFM_BASES)
    scores = rfm_scores(days, orders, spend, grid, levels)
    return pd.DataFrame({"customer_id": ordered["customer_id"].astype("string"), **scores})


def with_population_rfm(snapshot: pd.DataFrame, rfm: pd.DataFrame) -> pd.DataFrame:
    """Replace a partition snapshot's RFM columns by the population ones (matched by id)."""
    present = [name for name in RFM_COLUMNS if name in snapshot.columns]
    if not present:
        return snapshot
    lookup = rfm.set_index(rfm["customer_id"].astype("string"))
    ids = snapshot["customer_id"].astype("string")
    missing = ids[~ids.isin(lookup.index)]
    if len(missing):
        raise DataError(
            f"{len(missing)} customer(s) have no population RFM scores, e.g. {missing.iloc[0]}"
        )
    rows = lookup.loc[pd.Index(ids)]
    out = snapshot.copy()
    for name in present:
        values = rows[name]
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = pd.Categorical(
                values.astype(object).to_numpy(), categories=out[name].cat.categories
            )
        else:
            out[name] = values.to_numpy(dtype="float64")
    return out
