"""Targets as data: the one place a prediction target is described.

A target is defined in ``params.yaml`` (``labels.targets.<name>: {rule, horizon_days}``). Its
*rule* says how the label is made from the orders in ``[cutoff, cutoff + horizon)`` and brings
everything else that follows from it: the kind of model, the direction of risk, the metrics that
judge it and the words the report uses. Labels, train, explain, score, report and tracking read a
:class:`Target`; none of them names a target.

Adding a target with an existing rule is a params change only::

    labels:
      targets:
        churn_180d: {rule: no_order_within, horizon_days: 180}
    train:
      targets: [churn, repurchase, churn_180d]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.config import LabelsParams
from pipeline.errors import ConfigError

BINARY_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "lift_top_decile")
VALUE_METRICS = (
    "normalized_gini",
    "spearman",
    "top_decile_capture",
    "decile_mape",
    "total_error_pct",
)


@dataclass(frozen=True)
class Rule:
    """What a label rule means: model kind, risk direction and its words."""

    kind: str  # "binary" | "regression"
    # +1 when a higher prediction means more risk (churn), -1 when less (a repurchase).
    risk_direction: float
    # "{horizon}" is filled in; the event is what a positive label means, in words.
    event: str
    # Verb for sentences such as "given one customer who went on to <outcome>".
    outcome: str
    # How a score is read: "riskiest first" for churn-like targets, "likeliest first" otherwise.
    ranking: str


RULES: Mapping[str, Rule] = {
    "no_order_within": Rule(
        kind="binary",
        risk_direction=1.0,
        event="no order in the next {horizon} days",
        outcome="churn",
        ranking="riskiest first",
    ),
    "order_within": Rule(
        kind="binary",
        risk_direction=-1.0,
        event="an order within the next {horizon} days",
        outcome="buy again",
        ranking="likeliest buyers first",
    ),
    "spend_within": Rule(
        kind="regression",
        risk_direction=-1.0,
        event="spend in the next {horizon} days",
        outcome="spend",
        ranking="highest value first",
    ),
}


@dataclass(frozen=True)
class Target:
    """One prediction target, resolved from params."""

    name: str
    rule: str
    # None until the features stage has chosen it from the data (``horizon_days: null``).
    horizon_days: int | None

    @property
    def meaning(self) -> Rule:
        """The rule's kind, direction and words."""
        return RULES[self.rule]

    @property
    def kind(self) -> str:
        """``binary`` or ``regression``."""
        return self.meaning.kind

    @property
    def risk_direction(self) -> float:
        """+1 when a positive contribution means more risk, -1 when it means less."""
        return self.meaning.risk_direction

    @property
    def label(self) -> str:
        """The label column in the feature panel (the target's name)."""
        return self.name

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics that judge this target's model on the test cutoff."""
        return VALUE_METRICS if self.kind == "regression" else BINARY_METRICS

    @property
    def headline_metric(self) -> str:
        """The one metric that sums the model up (its first): AUC, or the value model's Gini."""
        return self.metrics[0]

    @property
    def output_column(self) -> str:
        """The scores column: ``churn_probability``, or ``expected_value`` for a value target."""
        if self.kind == "regression":
            return f"expected_{self.name}"
        return f"{self.name}_probability"

    @property
    def split_column(self) -> str:
        """The panel column holding this target's own split (``split_churn``, ``split_value``).

        Each target is planned on its own label window (:mod:`pipeline.features.cutoffs`): a
        30-day target validates on the cutoff a month before the test cutoff, where a 90-day
        one must stay three months clear of it; a value target's longer window leaves it
        fewer cutoffs. The shared ``split`` (the longest binary window) says which rows are
        the test snapshot for explanations and the report.
        """
        return f"split_{self.name}"

    @property
    def model_columns(self) -> tuple[str, str]:
        """The scores columns naming the model and its version."""
        return f"{self.name}_model", f"{self.name}_model_version"

    @property
    def event(self) -> str:
        """What a positive label means, with the horizon: "no order in the next 90 days"."""
        horizon = "?" if self.horizon_days is None else self.horizon_days
        return self.meaning.event.format(horizon=horizon)

    @property
    def title(self) -> str:
        """Page title: "Churn (no order in the next 90 days)"."""
        return f"{self.name.replace('_', ' ').capitalize()} ({self.event})"

    @property
    def outcome(self) -> str:
        """Verb for report sentences ("churn", "buy again")."""
        return self.meaning.outcome

    @property
    def ranking(self) -> str:
        """How a ranked list of this target reads ("riskiest first")."""
        return self.meaning.ranking


def all_targets(labels: LabelsParams) -> dict[str, Target]:
    """Every target defined in params, in definition order."""
    return {
        name: Target(name, spec.rule, spec.horizon_days) for name, spec in labels.targets.items()
    }


def with_horizons(labels: LabelsParams, horizons: Mapping[str, int]) -> LabelsParams:
    """Return ``labels`` with the horizons the features stage chose filled in."""
    targets = {
        name: spec
        if spec.horizon_days is not None or name not in horizons
        else spec.model_copy(update={"horizon_days": int(horizons[name])})
        for name, spec in labels.targets.items()
    }
    return labels.model_copy(update={"targets": targets})


def resolved_labels(labels: LabelsParams, summary: Mapping[str, Any] | None) -> LabelsParams:
    """``labels`` with the horizons recorded in the features summary (``summary.json``)."""
    chosen = {
        name: entry["horizon_days"]
        for name, entry in ((summary or {}).get("labels") or {}).items()
        if isinstance(entry, Mapping) and entry.get("horizon_days") is not None
    }
    resolved = with_horizons(labels, chosen)
    missing = [n for n, t in resolved.targets.items() if t.horizon_days is None]
    if summary is not None and missing:
        raise ConfigError(
            f"labels.targets: no horizon for {missing} in the features summary; "
            "rerun `loyalty features`"
        )
    return resolved


def get_target(labels: LabelsParams, name: str) -> Target:
    """Return the target called ``name``; a one-line error naming the defined ones otherwise."""
    targets = all_targets(labels)
    if name not in targets:
        raise ConfigError(f"unknown target {name!r}; labels.targets defines {sorted(targets)}")
    return targets[name]


def label_columns(labels: LabelsParams) -> tuple[str, ...]:
    """Label columns of every defined target (never model features)."""
    return tuple(t.label for t in all_targets(labels).values())


def binary_targets(labels: LabelsParams) -> dict[str, Target]:
    """Return the binary targets (the shared ``split`` is planned on their longest window)."""
    return {n: t for n, t in all_targets(labels).items() if t.kind == "binary"}


def value_targets(labels: LabelsParams) -> dict[str, Target]:
    """Return the regression (customer value) targets, each planned on its own cutoffs."""
    return {n: t for n, t in all_targets(labels).items() if t.kind == "regression"}


def non_feature_columns(labels: LabelsParams) -> tuple[str, ...]:
    """Label and split columns of the panel (the shared ``split`` too): never model features."""
    targets = all_targets(labels).values()
    return tuple(
        dict.fromkeys([*(t.label for t in targets), "split", *(t.split_column for t in targets)])
    )


def longest_horizon_days(labels: LabelsParams) -> int:
    """Return the longest binary label window: the shared ``split`` is planned on it.

    Falls back to the value targets' horizons when there is no binary target.
    """
    shared = binary_targets(labels) or all_targets(labels)
    horizons = [t.horizon_days for t in shared.values() if t.horizon_days is not None]
    if not horizons:
        raise ConfigError("labels.targets: no target has a horizon to plan the cutoffs on")
    return max(horizons)
