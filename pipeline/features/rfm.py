"""Recency, frequency and monetary features of each customer at a cutoff.

Each value is the customer's own history; the RFM quintile scores and named segment, which rank
a customer among others, are business labels of scored customers (:mod:`pipeline.business`).
"""

from __future__ import annotations

import numpy as np

from pipeline.features.prepare import DAY_US, Prepared, starts

Columns = dict[str, np.ndarray]
TREND_DAYS = 90


def _window(
    codes: np.ndarray, values: np.ndarray, n: int, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    count = np.bincount(codes[mask], minlength=n).astype(np.float64)
    total = np.bincount(codes[mask], weights=values[mask], minlength=n)
    return count, total


def rfm_features(prepared: Prepared, cutoff: int, windows: tuple[int, ...]) -> Columns:
    """Per-customer RFM features at ``cutoff`` (UTC microseconds), from orders strictly before it.

    Customers without an order before the cutoff get NaN recency and zero counts; they are not
    in the population and are dropped by the caller.
    """
    o, n = prepared.orders, prepared.n
    code, ts, amount = o["code"], o["ts"], o["amount"]
    before = ts < cutoff
    count, spend = _window(code, amount, n, before)
    has = count > 0
    # Rows are sorted by (customer, time), so the rows before the cutoff are a prefix per customer.
    first_row = np.minimum(starts(code, n), max(code.size - 1, 0))
    last_row = np.where(has, first_row + count.astype(np.int64) - 1, first_row)
    first_ts = ts[first_row] if code.size else np.zeros(n, dtype=np.int64)
    last_ts = ts[last_row] if code.size else np.zeros(n, dtype=np.int64)
    days_since = np.where(has, (cutoff - last_ts) / DAY_US, np.nan)
    out: Columns = {
        "days_since_last_order": days_since,
        "tenure_days": np.where(has, (cutoff - first_ts) / DAY_US, np.nan),
        "lifetime_orders": count,
        "lifetime_spend": spend,
        "avg_order_value": np.divide(spend, count, out=np.full(n, np.nan), where=has),
    }
    for days in sorted(set(windows) | {TREND_DAYS, 2 * TREND_DAYS}):
        c, s = _window(code, amount, n, before & (ts >= cutoff - days * DAY_US))
        out[f"orders_count_{days}d"], out[f"spend_sum_{days}d"] = c, s
    out["orders_trend_90d"] = 2 * out["orders_count_90d"] - out["orders_count_180d"]
    out["spend_trend_90d"] = 2 * out["spend_sum_90d"] - out["spend_sum_180d"]
    # The gaps between consecutive orders telescope: their sum is last - first.
    n_gaps = count - 1
    gap_mean = np.divide(
        (last_ts - first_ts) / DAY_US, n_gaps, out=np.full(n, np.nan), where=n_gaps >= 1
    )
    with_prev = before & o["has_prev"]
    gap_sq = np.bincount(code[with_prev], weights=o["gap_sq"][with_prev], minlength=n)
    var = np.divide(
        gap_sq - n_gaps * gap_mean**2, n_gaps - 1, out=np.full(n, np.nan), where=n_gaps >= 2
    )
    out["inter_purchase_gap_days_mean"] = gap_mean
    out["inter_purchase_gap_days_std"] = np.sqrt(np.clip(var, 0.0, None))
    # A usual gap under one day (two orders the same day) would make the ratio explode.
    out["overdue_ratio"] = days_since / np.fmax(gap_mean, 1.0)
    return out
