"""Customers' gaps between purchases: what the params left null are chosen from.

:class:`Gaps` pools the days between consecutive purchase days of every repeat customer;
:func:`covering` turns a share of them into a rung of :data:`HORIZON_LADDER` and the
sentence that says why. The rules
that use them are in :mod:`pipeline.features.defaults` (horizons, step, minimum history) and
:mod:`pipeline.features.population` (the recency filter); each returns a :class:`Choice`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.features.prepare import DAY_US, Arrays

#: Round numbers of days a chosen horizon or window takes, longest first (a value target's
#: horizon is the longest that leaves a split: :func:`pipeline.features.cutoffs.plan_value_split`).
HORIZON_LADDER = (365, 270, 180, 120, 90, 60, 30)
#: Below this many gaps a quantile is noise: the rules fall back to standard values.
MIN_GAPS = 30
#: The quantiles recorded in summary.json (those the rules read).
QUANTILES = (0.5, 0.75, 0.9, 0.99)


@dataclass(frozen=True)
class Choice:
    """One param chosen from the data: its key in params.yaml, the value and why."""

    param: str
    value: int | str
    why: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{value, why}``."""
        return {"value": self.value, "why": self.why}


@dataclass(frozen=True)
class Gaps:
    """Days between consecutive purchase days of each repeat customer, pooled and sorted.

    Orders on the same UTC day are one purchase: a line-level export splits one visit into
    several invoices, and their zero gaps would say nothing about how often customers return.
    """

    days: np.ndarray
    customers: int

    @classmethod
    def of(cls, orders: Arrays) -> Gaps:
        """Measure the gaps of orders sorted by (customer code, time)."""
        code, day = orders["code"], orders["ts"] // DAY_US
        new = np.ones(code.size, dtype=bool)
        new[1:] = (code[1:] != code[:-1]) | (day[1:] != day[:-1])
        code, day = code[new], day[new]
        same = code[1:] == code[:-1]
        return cls(np.sort(np.diff(day)[same]), int(np.unique(code[1:][same]).size))

    @property
    def enough(self) -> bool:
        """Whether there are enough gaps for their quantiles to mean something."""
        return int(self.days.size) >= MIN_GAPS

    def quantile(self, share: float) -> float:
        """Return the gap length that ``share`` of the gaps do not exceed, in days."""
        return float(np.quantile(self.days, share))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: counts and the quantiles the rules read."""
        return {
            "repeat_purchases": int(self.days.size),
            "repeat_customers": self.customers,
            "quantiles_days": (
                {f"p{round(100 * s)}": round(self.quantile(s), 1) for s in QUANTILES}
                if self.days.size
                else {}
            ),
        }


def rung_at_least(days: float) -> int:
    """Return the smallest rung of the ladder at or above ``days`` (the longest if none is)."""
    return min((r for r in HORIZON_LADDER if r >= days), default=max(HORIZON_LADDER))


def covering(gaps: Gaps, share: float) -> tuple[int, str]:
    """Return the rung covering ``share`` of the gaps, and the sentence that says so."""
    days = gaps.quantile(share)
    value = rung_at_least(days)
    amount = "half" if share == 0.5 else f"{share:.0%}"
    ladder = ", ".join(str(r) for r in sorted(HORIZON_LADDER))
    return value, (
        f"{amount} of the {gaps.days.size:,} repeat purchases come within {days:.0f} days of "
        f"the customer's previous one; {value} is the smallest of {ladder} days at or above it"
    )
