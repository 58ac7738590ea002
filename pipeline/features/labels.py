"""Labels of every target from the orders in ``[cutoff, cutoff + horizon)``.

Each target's rule (:mod:`pipeline.targets`) names one of the functions in :data:`LABEL_RULES`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.config import LabelsParams
from pipeline.features.prepare import DAY_US, Prepared
from pipeline.targets import all_targets


def _ordered_within(prepared: Prepared, cutoff: int, days: int) -> np.ndarray:
    o = prepared.orders
    window = (o["ts"] >= cutoff) & (o["ts"] < cutoff + days * DAY_US)
    return np.bincount(o["code"][window], minlength=prepared.n) > 0


def no_order_within(prepared: Prepared, cutoff: int, days: int) -> np.ndarray:
    """1 when the customer places no order within ``days`` of the cutoff (churn)."""
    return (~_ordered_within(prepared, cutoff, days)).astype(np.int8)


def order_within(prepared: Prepared, cutoff: int, days: int) -> np.ndarray:
    """1 when the customer places at least one order within ``days`` of the cutoff."""
    return _ordered_within(prepared, cutoff, days).astype(np.int8)


def spend_within(prepared: Prepared, cutoff: int, days: int) -> np.ndarray:
    """Return the customer's spend within ``days`` of the cutoff (float64; 0 for no order).

    Spend = order gross amounts, as in the ``spend_sum_*`` features.
    """
    o = prepared.orders
    window = (o["ts"] >= cutoff) & (o["ts"] < cutoff + days * DAY_US)
    return np.bincount(o["code"][window], weights=o["amount"][window], minlength=prepared.n)


LABEL_RULES: dict[str, Callable[[Prepared, int, int], np.ndarray]] = {
    "no_order_within": no_order_within,
    "order_within": order_within,
    "spend_within": spend_within,
}


def label_arrays(prepared: Prepared, cutoff: int, params: LabelsParams) -> dict[str, np.ndarray]:
    """Per-customer label of every defined target at ``cutoff`` (UTC microseconds).

    Binary labels are int8 0/1, value labels float64. An order exactly at the cutoff is in the
    label window. Every horizon must be resolved (:func:`pipeline.targets.with_horizons`).
    """
    out: dict[str, np.ndarray] = {}
    for target in all_targets(params).values():
        if target.horizon_days is None:
            raise ValueError(f"target {target.name}: horizon not chosen yet")
        out[target.label] = LABEL_RULES[target.rule](prepared, cutoff, target.horizon_days)
    return out
