"""Label definitions for tests: the two default targets with chosen horizons."""

from __future__ import annotations

from pipeline.config import LabelsParams, TargetParams


def churn_and_repurchase(churn: int = 90, repurchase: int = 30) -> LabelsParams:
    """``labels.targets`` with churn (no order within) and repurchase (an order within)."""
    return LabelsParams(
        targets={
            "churn": TargetParams(rule="no_order_within", horizon_days=churn),
            "repurchase": TargetParams(rule="order_within", horizon_days=repurchase),
        }
    )
