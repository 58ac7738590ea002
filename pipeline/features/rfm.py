"""Recency, frequency and monetary features of each customer at a cutoff.

Each value is the customer's own history; the RFM quintile scores and named segment, which rank
a customer among others, are business labels of scored customers (:mod:`pipeline.business`).
"""

from __future__ import annotations

import numpy as np

from pipeline.features.prepare import DAY_US, Prepared, starts

Columns = dict[str, np.ndarray]
TREND_DAYS = 90
SLOPE_DAYS, SLOPE_BINS = 365, 12  # orders_slope_365d: monthly counts over the last year


def _window(
    codes: np.ndarray, values: np.ndarray, n: int, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    count = np.bincount(codes[mask], minlength=n).astype(np.float64)
    total = np.bincount(codes[mask], weights=values[mask], minlength=n)
    return count, total


def _monthly_slope(
    code: np.ndarray, ts: np.ndarray, n: int, before: np.ndarray, cutoff: int
) -> np.ndarray:
    """Least-squares slope of the orders per month over the last 12 months (orders/month/month).

    The slope of counts ``c_j`` over months ``x_j`` is ``sum_j (x_j - mean x) c_j / sum_j
    (x_j - mean x)^2``: one weighted count per customer, each order weighted by its month's
    centred position. Months before the first order count as zero orders (a new customer's
    orders are rising).
    """
    in_window = before & (ts >= cutoff - SLOPE_DAYS * DAY_US)
    age = (cutoff - ts[in_window]) / (DAY_US * SLOPE_DAYS / SLOPE_BINS)
    month_ago = np.minimum(age.astype(np.int64), SLOPE_BINS - 1)  # 0 = the latest month
    centre = (SLOPE_BINS - 1) / 2
    weights = centre - month_ago  # later months weigh positive
    denominator = float(np.sum((np.arange(SLOPE_BINS) - centre) ** 2))
    return np.bincount(code[in_window], weights=weights, minlength=n) / denominator


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
    # The same trends relative to the customer's own level: (last - previous) / (last + previous)
    # is -1 (stopped), 0 (steady) or +1 (all recent) whatever their size; NaN when both are 0.
    for name, last, both in (
        ("orders_trend_rel_90d", out["orders_count_90d"], out["orders_count_180d"]),
        ("spend_trend_rel_90d", out["spend_sum_90d"], out["spend_sum_180d"]),
    ):
        out[name] = np.divide(2 * last - both, both, out=np.full(n, np.nan), where=both > 0)
    out["orders_slope_365d"] = _monthly_slope(code, ts, n, before, cutoff)
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
    out["inter_purchase_gap_cv"] = np.divide(
        out["inter_purchase_gap_days_std"],
        gap_mean,
        out=np.full(n, np.nan),
        where=(n_gaps >= 2) & (gap_mean > 0),
    )
    # A usual gap under one day (two orders the same day) would make the ratio explode.
    out["overdue_ratio"] = days_since / np.fmax(gap_mean, 1.0)
    return out
