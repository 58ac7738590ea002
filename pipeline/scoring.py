"""Scoring: the only code that turns models into customer rows (pure).

:func:`score_customers` takes one snapshot (the very ``build_snapshot`` output used in training)
and the loaded models, and returns one row per customer: each target's prediction (calibrated
probability; for the value target ``expected_value``, spend in its horizon),
the business labels of :mod:`pipeline.business`, reason codes and the model versions. Every
value of a row depends only on that customer's snapshot row and the models, so the engines
can score any partition of customers on its own and concatenate: scoring a subset gives exactly
the rows of scoring everyone.

The columns follow from the targets scored (:func:`output_columns`); ``conform_output`` fixes
their dtypes so that every engine writes the same table.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from pipeline.business import (
    ReasonCut,
    Reference,
    business_labels,
    reasons_cut,
    value_lines,
)
from pipeline.config import NO_LEVER, BusinessParams
from pipeline.errors import ModelError
from pipeline.features.partition import customer_hash
from pipeline.reasons import FeatureDictionary, reason_codes, strongest_lever
from pipeline.sentences import comparisons
from pipeline.targets import Target

logger = logging.getLogger(__name__)

BUSINESS_COLUMNS = (
    "churn_risk_band",
    "loyalty_tier",
    "value_tier",
    "rfm_segment",
    "value_at_risk",
    "high_value",
)
FLOAT_BUSINESS = ("value_at_risk",)
#: What to do about a customer who gets reasons: the concept of their strongest actionable
#: reason (a lever: ``business.actions``), its sentence, and the action the map gives it.
ACTION_COLUMNS = ("action_concept", "action_reason", "suggested_action")
BOOLEAN_COLUMNS = ("high_value",)


class ReasonModel(Protocol):
    """What reason codes need from a predictor: its reference, margins and contributions."""

    features: dict[str, Any]

    def raw_margin(self, frame: pd.DataFrame) -> Any:
        """Log-odds score of each row (before calibration), input row order."""
        ...

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """TreeSHAP contributions in log-odds (features + ``base_value``)."""
        ...

    def derive(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` plus the features the model derives (for reason sentences)."""
        ...


class Model(ReasonModel, Protocol):
    """What scoring needs from a predictor (see :class:`pipeline.modeling.artifacts.Predictor`)."""

    feature_names: list[str]

    def predict(self, frame: pd.DataFrame) -> Any:
        """Calibrated probabilities (expected spend for a value model), input row order."""
        ...

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return the model's input frame: its features in stored order and training dtypes."""
        ...


@dataclass(frozen=True)
class ScoringModel:
    """A loaded model with the name and version written next to its scores."""

    target: Target
    name: str
    version: str
    predictor: Model


@dataclass(frozen=True)
class ScoringRules:
    """What the output needs besides the models: business rules and reason codes."""

    business: BusinessParams
    segment_grid: tuple[tuple[str, ...], ...]
    reasons_top_share: float = 0.2
    top_reasons: int = 3
    # Customers with at least this value at risk get reasons too (None: the derived line).
    reasons_min_value_at_risk: float | None = None


def output_columns(targets: Sequence[Target], top_reasons: int) -> tuple[str, ...]:
    """Return the scores' columns, in order, for the targets scored."""
    return (
        "customer_id",
        "as_of",
        *(t.output_column for t in targets),
        *BUSINESS_COLUMNS,
        *(f"reason_{i}" for i in range(1, top_reasons + 1)),
        *ACTION_COLUMNS,
        *(column for t in targets for column in t.model_columns),
    )


def float_columns(targets: Sequence[Target]) -> tuple[str, ...]:
    """Return the float64 columns of the scores."""
    return (*(t.output_column for t in targets), *FLOAT_BUSINESS)


def conform_output(
    frame: pd.DataFrame, columns: Sequence[str], floats: Sequence[str]
) -> pd.DataFrame:
    """Return ``frame`` with exactly ``columns`` in their contract dtypes.

    Every engine passes its result through this, so that local and Spark output (Spark's
    Parquet round trip changes string and timestamp types) are the same table.
    """
    out: dict[str, Any] = {}
    for name in columns:
        series = frame[name]
        if name == "as_of":
            out[name] = pd.to_datetime(series, utc=True).dt.as_unit("us")
        elif name in floats:
            out[name] = series.astype("float64")
        elif name in BOOLEAN_COLUMNS:
            out[name] = series.astype("boolean")
        else:
            out[name] = series.astype("string")
    return pd.DataFrame(out, index=frame.index)


def reference_of(models: Sequence[ScoringModel], risk_target: str) -> Reference:
    """Return the reference population of the risk model (else of the first binary model)."""
    if not models:
        raise ModelError("no model to score with")
    binary = [m for m in models if m.target.kind == "binary"] or list(models)
    chosen = next((m for m in binary if m.target.name == risk_target), binary[0])
    return Reference.from_dict(chosen.predictor.features.get("reference"), chosen.name)


def value_reference_of(
    models: Sequence[ScoringModel], value_target: str | None
) -> Reference | None:
    """Return the value model's reference (its predictions' quantiles), None without one."""
    chosen = next((m for m in models if m.target.name == value_target), None)
    if chosen is None:
        return None
    return Reference.from_dict(chosen.predictor.features.get("reference"), chosen.name)


def score_customers(
    snapshot: pd.DataFrame,
    as_of: pd.Timestamp,
    models: Sequence[ScoringModel],
    rules: ScoringRules,
    dictionary: FeatureDictionary,
) -> pd.DataFrame:
    """One row per snapshot customer, sorted by ``customer_id``: see the module docstring.

    Reason codes (the risk model's top drivers of risk) go to customers at or above the risk
    model's shipped cut (:func:`reasons_of`).
    """
    targets = [m.target for m in models]
    snapshot = snapshot.sort_values("customer_id", kind="stable").reset_index(drop=True)
    n = len(snapshot)
    out = pd.DataFrame({"customer_id": snapshot["customer_id"].astype("string")})
    out["as_of"] = pd.Series([as_of] * n, dtype="datetime64[us, UTC]")
    probabilities: dict[str, np.ndarray] = {}
    for model in models:
        predicted = (
            np.asarray(model.predictor.predict(snapshot), dtype="float64") if n else np.zeros(0)
        )
        probabilities[model.target.name] = predicted
        out[model.target.output_column] = predicted
    reference = reference_of(models, rules.business.risk_target)
    labels = business_labels(
        snapshot,
        probabilities,
        rules.business,
        reference,
        rules.segment_grid,
        value_reference_of(models, rules.business.value_target),
    )
    for name in BUSINESS_COLUMNS:
        out[name] = labels[name].to_numpy()
    line = explained_value_line(models, rules)
    valuable = labels["value_at_risk"].to_numpy(dtype="float64", na_value=np.nan) >= line
    reasons = risk_reasons(snapshot, models, probabilities, rules, dictionary, valuable)
    for name in reasons.columns:
        out[name] = reasons[name].to_numpy()
    for model in models:
        name_column, version_column = model.target.model_columns
        out[name_column] = pd.Series([model.name] * n, dtype="string")
        out[version_column] = pd.Series([model.version] * n, dtype="string")
    columns = output_columns(targets, rules.top_reasons)
    return conform_output(out, columns, float_columns(targets))


def risk_reasons(
    snapshot: pd.DataFrame,
    models: Sequence[ScoringModel],
    probabilities: Mapping[str, np.ndarray],
    rules: ScoringRules,
    dictionary: FeatureDictionary,
    also: np.ndarray | None = None,
) -> pd.DataFrame:
    """``reason_1..k`` and the action columns of the risk model for the rows of ``snapshot``.

    Rows at or above the risk model's cut get them, and the rows where ``also`` is true.
    """
    risk = next((m for m in models if m.target.name == rules.business.risk_target), None)
    if risk is None:
        columns = [*(f"reason_{i}" for i in range(1, rules.top_reasons + 1)), *ACTION_COLUMNS]
        return pd.DataFrame({c: pd.Series([None] * len(snapshot), dtype="string") for c in columns})
    return reasons_of(
        snapshot,
        probabilities[risk.target.name],
        risk.predictor,
        risk.target,
        rules.reasons_top_share,
        rules.top_reasons,
        dictionary,
        also=also,
        actions=rules.business.actions,
    )


def explained_value_line(models: Sequence[ScoringModel], rules: ScoringRules) -> float:
    """Value at risk from which a customer gets reasons whatever their rank by risk.

    ``score.reasons_min_value_at_risk`` when set; else the value at risk of a high-value
    customer at the medium risk line (the value model's high-value line x
    ``business.risk_medium``); infinite (nobody) without a value model.
    """
    if rules.reasons_min_value_at_risk is not None:
        return float(rules.reasons_min_value_at_risk)
    high, _ = value_lines(value_reference_of(models, rules.business.value_target), rules.business)
    line = high * rules.business.risk_medium
    return float(line) if math.isfinite(line) else math.inf


def reasons_of(
    rows: pd.DataFrame,
    probability: Any,
    model: ReasonModel,
    target: Target,
    top_share: float,
    top_k: int,
    dictionary: FeatureDictionary,
    with_features: bool = False,
    also: np.ndarray | None = None,
    actions: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Reason codes of the rows (positional) at or above the model's cut of ``top_share``.

    The one rule of who gets reason codes and what they say; the scorer and the explain stage
    both call it. A customer gets reasons when their key (probability, raw margin, customer
    hash) is at or above the cut shipped with the model (:class:`pipeline.business.ReasonCut`):
    exactly ``round(top_share x rows)`` of its reference population, and for anyone a
    decision of their own row alone. Their sentences compare them with that same reference
    (:func:`pipeline.reasons.reason_codes`). Other rows get ``<NA>``. ``rows`` need
    ``customer_id`` and the model's features; ``probability`` is the model's, row for row.

    The scorer also explains the rows where ``also`` is true (a rule of each row's own
    values), and with ``actions`` (``business.actions``) adds :data:`ACTION_COLUMNS`
    (:func:`pipeline.reasons.strongest_lever`).
    """
    n = len(rows)
    reference = Reference.from_dict(model.features.get("reference"), target.name)
    cut = reasons_cut(reference, top_share)
    p = np.asarray(probability, dtype="float64")
    chosen = np.zeros(0, dtype=np.int64) if cut is None or not n else _chosen(rows, p, model, cut)
    if also is not None and n:
        chosen = np.union1d(chosen, np.flatnonzero(np.asarray(also, dtype=bool)))
    picked = rows.iloc[chosen].reset_index(drop=True)
    contributions = pd.DataFrame(index=picked.index)
    if chosen.size:
        picked = model.derive(picked)
        contributions = model.contributions(picked)
    reasons = reason_codes(
        picked,
        contributions,
        dictionary,
        top_k=top_k,
        direction=target.risk_direction,
        references=comparisons(reference),
        with_features=with_features,
    )
    if actions is not None:
        lever = strongest_lever(
            picked,
            contributions,
            dictionary,
            levers=[k for k in actions if k != NO_LEVER],
            direction=target.risk_direction,
            references=comparisons(reference),
        )
        concept = lever["action_concept"].fillna(NO_LEVER)
        reasons = reasons.assign(
            action_concept=concept.to_numpy(),
            action_reason=lever["action_reason"].to_numpy(),
            suggested_action=concept.map(actions).to_numpy(),
        )
    out = pd.DataFrame({c: pd.Series([None] * n, dtype="string") for c in reasons.columns})
    for name in reasons.columns:
        column = out[name].copy()
        column.iloc[chosen] = reasons[name].to_numpy()
        out[name] = column
    return out


def _chosen(rows: pd.DataFrame, probability: np.ndarray, model: ReasonModel, cut: ReasonCut) -> Any:
    """Positions of the rows at or above ``cut``; margins only where the probability ties it."""
    d = cut.direction
    # Below the cut's probability nobody is in, whatever their margin: skip those margins.
    with np.errstate(invalid="ignore"):
        candidates = np.flatnonzero(d * probability >= d * cut.probability)
    if not candidates.size:
        return candidates
    part = rows.iloc[candidates]
    margin = np.asarray(model.raw_margin(part), dtype="float64")
    hashes = customer_hash(part["customer_id"])
    return candidates[cut.selects(probability[candidates], margin, hashes)]


def rules_summary(models: Sequence[ScoringModel], rules: ScoringRules) -> dict[str, Any]:
    """Summarise the shipped thresholds the run applied and their reference (manifest)."""
    reference = reference_of(models, rules.business.risk_target)
    value = next((m for m in models if m.target.name == rules.business.value_target), None)
    high, medium = value_lines(
        value_reference_of(models, rules.business.value_target), rules.business
    )

    def finite(value: float) -> float | None:
        return value if math.isfinite(value) else None

    risk = next((m for m in models if m.target.name == rules.business.risk_target), None)
    cut = None
    if risk is not None:
        risk_reference = Reference.from_dict(risk.predictor.features.get("reference"), risk.name)
        cut = reasons_cut(risk_reference, rules.reasons_top_share)
    return {
        # Reasons go to customers whose (probability, raw margin, customer hash) is at or above
        # this key; on the reference population, exactly reference_customers of its rows.
        "reasons_threshold": None if cut is None else finite(cut.probability),
        "reasons_cut": None
        if cut is None
        else {
            "probability": cut.probability,
            "raw_margin": cut.raw_margin,
            "customer_hash": cut.customer_hash,
            "reference_customers": cut.reference_customers,
        },
        "reasons_top_share": rules.reasons_top_share,
        # ... and to customers with at least this value at risk (None: nobody).
        "reasons_min_value_at_risk": finite(explained_value_line(models, rules)),
        "business": {
            **rules.business.model_dump(),
            "high_value_line": finite(high),
            "medium_value_line": finite(medium),
        },
        # What expected_value means: spend in the value model's horizon.
        "expected_value": None
        if value is None
        else {
            "target": value.target.name,
            "horizon_days": value.target.horizon_days,
            "meaning": f"expected {value.target.event}",
        },
        "reference": {"population": reference.population, "rows": reference.rows},
    }
