"""Churn and repurchase labels from the orders in ``[cutoff, cutoff + horizon)``."""

from __future__ import annotations

import numpy as np

from pipeline.config import LabelsParams
from pipeline.features.prepare import DAY_US, Prepared


def label_arrays(prepared: Prepared, cutoff: int, params: LabelsParams) -> dict[str, np.ndarray]:
    """Per-customer labels at ``cutoff`` (UTC microseconds), as int8 0/1.

    ``churned``: no order within ``churn_horizon_days`` of the cutoff; ``repurchased``: an order
    within ``repurchase_horizon_days``. An order exactly at the cutoff is in the label window.
    """
    o, n = prepared.orders, prepared.n
    after = o["ts"] >= cutoff

    def ordered_within(days: int) -> np.ndarray:
        window = after & (o["ts"] < cutoff + days * DAY_US)
        return np.bincount(o["code"][window], minlength=n) > 0

    return {
        "churned": (~ordered_within(params.churn_horizon_days)).astype(np.int8),
        "repurchased": ordered_within(params.repurchase_horizon_days).astype(np.int8),
    }
