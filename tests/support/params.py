"""Explicit params for tests: the values the data-fitted defaults choose on the simulation.

``params.yaml`` leaves the grid, the population and the horizons null (chosen from the data by
the features stage); tests of the grid, the split and the snapshot set them, so that what they
check does not move with the fixture's gaps between purchases.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import FeaturesParams, LabelsParams, TargetParams


def fixed_features(**overrides: Any) -> FeaturesParams:
    """``features`` with a monthly grid, 60 days of history and a 365-day recency window."""
    values: dict[str, Any] = {"step_months": 1, "min_history_days": 60, "active_within_days": 365}
    return FeaturesParams(**(values | overrides))


def fixed_labels(churn: int = 90, repurchase: int = 30, value: int | None = None) -> LabelsParams:
    """The three default targets with set horizons (the value horizon null by default)."""
    return LabelsParams(
        targets={
            "churn": TargetParams(rule="no_order_within", horizon_days=churn),
            "repurchase": TargetParams(rule="order_within", horizon_days=repurchase),
            "value": TargetParams(rule="spend_within", horizon_days=value),
        }
    )
