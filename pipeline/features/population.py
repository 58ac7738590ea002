"""Who is in a snapshot: the population rule, its recency window, and what the window removes.

The population at cutoff ``t`` is the customers with an order before ``t`` (the time contract:
a customer first seen later is not a customer yet) and, when ``features.active_within_days`` is
a number, whose last order is at most that many days before ``t``. :func:`in_population` is the
one statement of the rule (:func:`pipeline.features.snapshot.snapshot_part` applies it);
:func:`filter_counts` counts what the recency filter removes, for ``summary.json``, the report
and the warning of :func:`warn_if_too_many`.

``active_within_days: null`` is chosen from the data (:func:`choose_population`): the whole
number of years that covers 99% of the gaps between purchases (a full seasonal cycle at least),
unless, on an export with less than twice that window of history before the test cutoff, it
would remove more than ``features.max_filtered_share`` of the test cutoff's customers: there
the customers it drops are those seen only early in the export rather than a dormant tail, and
every customer is kept (``any``). On a longer export the window applies (and warns if it
removes that much).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import ANY, FeaturesParams
from pipeline.features.gaps import Choice, Gaps
from pipeline.features.prepare import DAY_US, Prepared, starts

logger = logging.getLogger(__name__)

#: The params key of the recency filter, named in logs, summary.json and the report.
ACTIVE_PARAM = "features.active_within_days"
#: Share of the gaps between purchases the chosen window covers, in whole years.
ACTIVE_SHARE = 0.99
YEAR = 365


def in_population(
    orders_before: np.ndarray,
    days_since_last_order: np.ndarray,
    active_within_days: int | str | None,
) -> np.ndarray:
    """Return the mask of customers in the population (see the module docstring).

    ``active_within_days`` is a number of days or ``"any"``; ``None`` (chosen from the data)
    must have been resolved by the features stage, so it is refused here: a scorer that forgot
    to take the models' population would otherwise score another population silently.
    """
    if active_within_days is None:
        raise ValueError(
            f"{ACTIVE_PARAM} is null (chosen from the data): pass the features stage's chosen "
            "params (FeatureStage.params), or the population shipped with the models"
        )
    mask = orders_before > 0
    if active_within_days != ANY:
        mask &= days_since_last_order <= int(active_within_days)
    return mask


def recency(prepared: Prepared, cutoff: int) -> tuple[np.ndarray, np.ndarray]:
    """Per customer: orders before ``cutoff`` (UTC us) and days since the last one (NaN: none).

    The same values as the ``lifetime_orders`` and ``days_since_last_order`` features.
    """
    o, n = prepared.orders, prepared.n
    code, ts = o["code"], o["ts"]
    before = ts < cutoff
    count = np.bincount(code[before], minlength=n)
    has = count > 0
    if not code.size:
        return count, np.full(n, np.nan)
    # Rows are sorted by (customer, time): the rows before the cutoff are a prefix per customer.
    first_row = np.minimum(starts(code, n), code.size - 1)
    last_ts = ts[np.where(has, first_row + count - 1, first_row)]
    return count, np.where(has, (cutoff - last_ts) / DAY_US, np.nan)


@dataclass(frozen=True)
class FilterCount:
    """What the recency filter does at one cutoff (or summed over many)."""

    where: str  # "test cutoff 2024-10-01", "scoring date 2025-01-01", "panel (14 cutoffs)"
    customers: int  # with an order before the cutoff: what the filter sees
    removed: int

    @property
    def share(self) -> float:
        """Share of the customers seen that the filter removes."""
        return self.removed / self.customers if self.customers else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts."""
        return {
            "where": self.where,
            "customers": self.customers,
            "removed": self.removed,
            "kept": self.customers - self.removed,
            "share_removed": round(self.share, 4),
        }


def filter_count(
    prepared: Prepared, cutoff: pd.Timestamp, active_within_days: int | str | None, where: str
) -> FilterCount:
    """Count the customers seen at ``cutoff`` and those the recency filter removes."""
    us = int(cutoff.value // 1000)
    orders_before, days_since = recency(prepared, us)
    seen = int((orders_before > 0).sum())
    kept = int(in_population(orders_before, days_since, active_within_days).sum())
    return FilterCount(where, seen, seen - kept)


def filter_counts(
    prepared: Prepared,
    test: pd.Timestamp,
    scoring_at: pd.Timestamp,
    panel_cutoffs: Iterable[pd.Timestamp],
    active_within_days: int | str,
) -> dict[str, FilterCount]:
    """Count what the recency filter removes at the test cutoff, scoring date and panel."""
    cutoffs = list(panel_cutoffs)
    each = [filter_count(prepared, c, active_within_days, "") for c in cutoffs]
    return {
        "test": filter_count(prepared, test, active_within_days, f"test cutoff {test.date()}"),
        "scoring": filter_count(
            prepared, scoring_at, active_within_days, f"scoring date {scoring_at.date()}"
        ),
        "panel": FilterCount(
            f"panel ({len(cutoffs)} cutoffs, customer rows)",
            sum(c.customers for c in each),
            sum(c.removed for c in each),
        ),
    }


def warn_if_too_many(
    counts: dict[str, FilterCount], active_within_days: int | str, max_share: float
) -> list[str]:
    """Log a WARNING for each place where the filter removes more than ``max_share``.

    Returns the warnings (they also go to ``summary.json``).
    """
    out = []
    for key in ("test", "scoring"):
        count = counts[key]
        if count.share > max_share:
            out.append(
                f"population filter {ACTIVE_PARAM}={active_within_days} removes "
                f"{count.removed:,} of {count.customers:,} customers ({count.share:.0%}) at the "
                f"{count.where}, more than features.max_filtered_share ({max_share:.0%}): set "
                f"{ACTIVE_PARAM} to a longer window, or to 'any' to keep every customer"
            )
            logger.warning("%s", out[-1])
    return out


def active_window(gaps: Gaps) -> int:
    """Return the recency window: the whole years covering 99% of the gaps (>= 1 year)."""
    if not gaps.enough:
        return YEAR
    return YEAR * max(1, math.ceil(gaps.quantile(ACTIVE_SHARE) / YEAR))


def active_choice(
    window: int, at_test: FilterCount, history_days: float, max_share: float, gaps: Gaps
) -> Choice:
    """Apply the window, or keep every customer (``any``) on a short export where it cuts deep.

    ``window`` is :func:`active_window`, ``at_test`` what it removes at the test cutoff and
    ``history_days`` the time from the first order to the test cutoff.
    """
    covers = (
        f"the whole years covering 99% of the gaps between purchases "
        f"({gaps.quantile(ACTIVE_SHARE):.0f} days or less)"
        if gaps.enough
        else f"a year (only {gaps.days.size} repeat purchases)"
    )
    removes = (
        f"{at_test.removed:,} of {at_test.customers:,} customers at the {at_test.where} "
        f"({at_test.share:.0%})"
    )
    if at_test.share <= max_share:
        return Choice(ACTIVE_PARAM, window, f"{window} days, {covers}; it removes {removes}")
    if history_days >= 2 * window:
        return Choice(
            ACTIVE_PARAM,
            window,
            f"{window} days, {covers}; it removes {removes}: the dormant tail of a long export "
            f"({history_days:.0f} days of history before the test cutoff, at least twice the "
            "window)",
        )
    return Choice(
        ACTIVE_PARAM,
        ANY,
        f"no recency filter: the {window}-day window ({covers}) would remove {removes}, more "
        f"than features.max_filtered_share ({max_share:.0%}), with only {history_days:.0f} "
        "days of history before the test cutoff (under twice the window): customers seen "
        "only early in the export, not a dormant tail",
    )


@dataclass(frozen=True)
class Population:
    """The population rule used, what its recency filter removes, and the warnings about it."""

    active_within_days: int | str
    max_filtered_share: float
    counts: Mapping[str, FilterCount]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record for summary.json (``population``)."""
        window = self.active_within_days
        return {
            "active_within_days": window,
            "rule": "customers with an order before the cutoff"
            + ("" if window == ANY else f", the last within {window} days of it"),
            "max_filtered_share": self.max_filtered_share,
            "removed_by": {ACTIVE_PARAM: {k: c.to_dict() for k, c in self.counts.items()}},
            "warnings": list(self.warnings),
        }


def choose_population(
    prepared: Prepared,
    params: FeaturesParams,
    first_order: pd.Timestamp,
    test: pd.Timestamp,
    scoring_at: pd.Timestamp,
    panel_cutoffs: list[pd.Timestamp],
    gaps: Gaps,
) -> tuple[FeaturesParams, Population, Choice | None]:
    """Resolve ``active_within_days`` when null; count what it removes; warn when too many.

    Returns the params with the window filled in, the population record and the choice
    (None when the window was set in params).
    """
    choice = None
    window: int | str
    if params.active_within_days is not None:
        window = params.active_within_days
    else:
        candidate = active_window(gaps)
        at_test = filter_count(prepared, test, candidate, f"test cutoff {test.date()}")
        history = (test - first_order) / pd.Timedelta(days=1)
        choice = active_choice(candidate, at_test, history, params.max_filtered_share, gaps)
        logger.info("%s = %s: %s", choice.param, choice.value, choice.why)
        window = choice.value
    counts = filter_counts(prepared, test, scoring_at, panel_cutoffs, window)
    warnings = warn_if_too_many(counts, window, params.max_filtered_share)
    population = Population(window, params.max_filtered_share, counts, tuple(warnings))
    return params.model_copy(update={"active_within_days": window}), population, choice
