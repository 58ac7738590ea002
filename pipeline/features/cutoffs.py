"""The time axis of the panel: observed period, cutoff grid and the train/valid/test split.

Label windows decide everything here: a cutoff is usable once its longest label window is
observed, and a split is kept clear of the label windows of the split before it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import FeaturesParams, LabelsParams
from pipeline.errors import DataError
from pipeline.features.gaps import HORIZON_LADDER
from pipeline.features.prepare import DAY_US, Prepared
from pipeline.features.snapshot import cutoff_timestamp, cutoff_us
from pipeline.targets import longest_horizon_days

logger = logging.getLogger(__name__)

SPLIT_RULE = (
    "test = the latest cutoff whose label window is complete; valid = the latest "
    "validation_cutoffs cutoffs whose label windows end at or before the test cutoff; train = "
    "the cutoffs whose label windows end at or before the first validation cutoff; the cutoffs "
    "in between (embargo) are not in the panel. Label window = the longest horizon of the "
    "binary targets (column split); a value target is planned the same way on its own horizon "
    "and the cutoffs whose window it completes (column split_<name>)."
)


SHORT_DATA_HINT = (
    "the data span is too short for the split: lower features.min_history_days or "
    "features.validation_cutoffs, or the label horizons (or leave them null: chosen from the data)"
)


@dataclass(frozen=True)
class SplitPlan:
    """Which cutoffs are for training, validation and test, and which are left out."""

    train: tuple[pd.Timestamp, ...]
    valid: tuple[pd.Timestamp, ...]
    test: pd.Timestamp
    embargo: tuple[pd.Timestamp, ...]

    def cutoffs(self) -> list[tuple[pd.Timestamp, str]]:
        """Return the panel's cutoffs in time order with their split."""
        pairs = [(c, "train") for c in self.train] + [(c, "valid") for c in self.valid]
        return sorted(pairs + [(self.test, "test")])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description of the split."""
        return {
            "train": [c.isoformat() for c in self.train],
            "valid": [c.isoformat() for c in self.valid],
            "test": self.test.isoformat(),
            "embargo": [c.isoformat() for c in self.embargo],
            "rule": SPLIT_RULE,
        }


def _timestamp_us(value: int) -> pd.Timestamp:
    return pd.Timestamp(value * 1000, tz="UTC").as_unit("us")


QUIET_DAY_SHARE = 0.05
STRAY_MAX_SHARE = 0.001


def observed_end(order_ts: np.ndarray) -> tuple[pd.Timestamp, int]:
    """Return the end of the observed period (last order date + 1 day) and the stray orders.

    A few orders dated after the extract (a future-dated export error that cleaning let
    through) would make label windows look complete while they are empty. So the period ends
    after the last "busy" day (at least ``QUIET_DAY_SHARE`` of the median orders per day), when
    the orders after it are fewer than ``STRAY_MAX_SHARE`` of all; those are reported.
    """
    days = order_ts // DAY_US
    unique_days, counts = np.unique(days, return_counts=True)
    last_busy = int(unique_days[counts >= QUIET_DAY_SHARE * np.median(counts)][-1])
    after = int((days > last_busy).sum())
    if 0 < after < STRAY_MAX_SHARE * days.size:
        return _timestamp_us((last_busy + 1) * DAY_US), after
    return _timestamp_us(int(unique_days[-1] + 1) * DAY_US), 0


def data_bounds(
    prepared: Prepared, params: FeaturesParams
) -> tuple[pd.Timestamp, pd.Timestamp, int]:
    """First order instant, end of the observed period, and the count of stray late orders.

    The end is ``params.data_end`` when set, else the last order's date + 1 day (see
    :func:`observed_end`). Labels are made of orders, so the end is measured on orders.
    """
    ts = prepared.orders["ts"]
    if ts.size == 0:
        raise DataError("orders: no orders, so no customer snapshot can be built")
    first = _timestamp_us(int(ts.min()))
    if params.data_end is not None:
        end = cutoff_timestamp(params.data_end)
        return first, end, int((ts >= cutoff_us(end)).sum())
    end, stray = observed_end(ts)
    if stray:
        logger.warning(
            "%d stray order(s) dated after %s (future-dated rows?) are outside the observed "
            "period; set features.data_end to override",
            stray,
            end.date(),
        )
    return first, end, stray


def label_horizon(params: LabelsParams) -> pd.Timedelta:
    """Return the shared label window: the longest binary horizon (see :func:`plan_split`)."""
    return pd.Timedelta(days=longest_horizon_days(params))


def cutoff_grid(
    first_order: pd.Timestamp,
    data_end: pd.Timestamp,
    params: FeaturesParams,
    label_params: LabelsParams,
) -> list[pd.Timestamp]:
    """Return the cutoffs of the panel, from the first to the last cutoff.

    The last is the latest cutoff whose longest label window ends by ``data_end`` (or
    ``last_cutoff`` when earlier). The first is at least ``min_history_days`` after the first
    order (or ``first_cutoff``). With ``step_days`` the grid steps back from the last cutoff
    every ``step_days`` days (the test cutoff is then as late as the data allow); otherwise
    it is every ``step_months`` months from the first month start at or after the earliest.
    """
    if (params.first_cutoff is None and params.min_history_days is None) or (
        params.step_days is None and params.step_months is None
    ):
        raise ValueError(
            "the cutoff step and minimum history are null (chosen from the data): pass the "
            "params of pipeline.features.defaults.fit_timeline"
        )
    latest = data_end - label_horizon(label_params)
    if params.first_cutoff is not None:
        earliest = cutoff_timestamp(params.first_cutoff)
    else:
        earliest = first_order.floor("D") + pd.Timedelta(days=params.min_history_days or 0)
    end = latest
    if params.last_cutoff is not None:
        end = cutoff_timestamp(params.last_cutoff)
        if end > latest:
            logger.warning(
                "last_cutoff %s has an incomplete label window; using %s", end.date(), latest
            )
            end = latest
    if params.step_days is not None:
        step = pd.Timedelta(days=params.step_days)
        count = int((end - earliest) // step) + 1 if end >= earliest else 0
        return [cutoff_timestamp(end - k * step) for k in reversed(range(count))]
    start = earliest
    if params.first_cutoff is None and earliest.day != 1:
        start = (earliest + pd.offsets.MonthBegin(1)).floor("D")
    grid = []
    k = 0
    while (c := start + pd.DateOffset(months=k * (params.step_months or 1))) <= end:
        grid.append(cutoff_timestamp(c))
        k += 1
    return grid


def plan_split(
    cutoffs: list[pd.Timestamp],
    label_params: LabelsParams | pd.Timedelta,
    validation_cutoffs: int,
) -> SplitPlan:
    """Decide the train/valid/test cutoffs so that no label window reaches into a later split.

    The window is ``label_params``' shared horizon (:func:`label_horizon`) or a given one.
    """
    if not cutoffs:
        raise DataError("no cutoff has a complete label window; the data span is too short")
    horizon = (
        label_params if isinstance(label_params, pd.Timedelta) else label_horizon(label_params)
    )
    test = cutoffs[-1]
    valid = [c for c in cutoffs[:-1] if c + horizon <= test][-validation_cutoffs:]
    if len(valid) < validation_cutoffs:
        raise DataError(
            f"only {len(valid)} cutoff(s) end their label window before the test cutoff "
            f"{test.date()}; {validation_cutoffs} needed for validation ({SHORT_DATA_HINT})"
        )
    train = [c for c in cutoffs if c + horizon <= valid[0]]
    if not train:
        raise DataError(
            f"no training cutoff ends its label window before validation starts "
            f"({valid[0].date()}; {SHORT_DATA_HINT})"
        )
    used = set(train) | set(valid) | {test}
    embargo = [c for c in cutoffs if c not in used]
    return SplitPlan(tuple(train), tuple(valid), test, tuple(embargo))


def complete_cutoffs(
    grid: list[pd.Timestamp], data_end: pd.Timestamp, horizon_days: int
) -> list[pd.Timestamp]:
    """Return the cutoffs of ``grid`` whose ``horizon_days`` label window ends by ``data_end``."""
    return [c for c in grid if c + pd.Timedelta(days=horizon_days) <= data_end]


def plan_value_split(
    grid: list[pd.Timestamp],
    data_end: pd.Timestamp,
    horizon_days: int | None,
    validation_cutoffs: int,
) -> tuple[int, SplitPlan]:
    """Plan a value target's own split on the panel's grid; choose its horizon when unset.

    A value target's window is usually longer than the binary ones, so it has fewer cutoffs
    (only those whose window ends by ``data_end``) and its own train / valid / test cutoffs.
    With ``horizon_days`` None the horizon is the longest of :data:`HORIZON_LADDER` that still
    gives such a split (a one-year export gets 90 days, the two-year simulation 180).
    """
    if horizon_days is not None:
        window = pd.Timedelta(days=horizon_days)
        usable = complete_cutoffs(grid, data_end, horizon_days)
        return horizon_days, plan_split(usable, window, validation_cutoffs)
    for days in HORIZON_LADDER:
        try:
            plan = plan_split(
                complete_cutoffs(grid, data_end, days), pd.Timedelta(days=days), validation_cutoffs
            )
        except DataError:
            continue
        return days, plan
    raise DataError(
        f"no value horizon of {list(HORIZON_LADDER)} days gives a train / valid / test split "
        f"on the cutoffs {grid[0].date() if grid else '-'}..{grid[-1].date() if grid else '-'} "
        f"({SHORT_DATA_HINT})"
    )
