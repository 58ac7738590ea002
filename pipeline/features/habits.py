"""Buying habits at a cutoff: price points, basket composition and calendar habits.

All from order-level columns of the clean orders (``n_items``, ``n_distinct_products`` and the
order time); a product-level feature (repeat products, returns by product) would need the order
lines, which the clean stage aggregates away.
"""

from __future__ import annotations

import numpy as np

from pipeline.features.prepare import DAY_US, Prepared

Columns = dict[str, np.ndarray]
RECENT_DAYS = 90
WEEKDAYS = 7
MIN_ORDERS_FOR_HABIT = 3  # a weekday "habit" of one or two orders is the orders themselves


def _sum(
    code: np.ndarray, n: int, mask: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    w = None if weights is None else weights[mask]
    return np.bincount(code[mask], weights=w, minlength=n).astype(np.float64)


def _mean(code: np.ndarray, n: int, mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    count = _sum(code, n, mask)
    return np.divide(_sum(code, n, mask, values), count, out=np.full(n, np.nan), where=count > 0)


def basket_features(prepared: Prepared, cutoff: int) -> Columns:
    """Mean item price (and its last-90-day ratio to before) and distinct products per order.

    The item price of an order is its gross amount over its item count; the mean is over orders,
    so one mistyped huge quantity moves it by one order's share only.
    """
    o, n = prepared.orders, prepared.n
    code, ts = o["code"], o["ts"]
    before = ts < cutoff
    out: Columns = {}
    if "item_price" in o:
        price = o["item_price"]
        priced = before & ~np.isnan(price)
        recent = priced & (ts >= cutoff - RECENT_DAYS * DAY_US)
        out["item_price_mean"] = _mean(code, n, priced, price)
        # NaN unless there are priced orders both in the last 90 days and before them.
        out["item_price_ratio_90d"] = _mean(code, n, recent, price) / _mean(
            code, n, priced & ~recent, price
        )
    if "products" in o:
        counted = before & ~np.isnan(o["products"])
        out["products_per_order_mean"] = _mean(code, n, counted, o["products"])
    return out


def seasonality_features(prepared: Prepared, cutoff: int) -> Columns:
    """Share of orders in the Nov-Dec peak and share on the customer's most frequent weekday.

    Both over the orders before the cutoff, in UTC (the clean tables' time zone); the weekday
    share needs three orders (NaN below).
    """
    o, n = prepared.orders, prepared.n
    code = o["code"]
    before = o["ts"] < cutoff
    count = _sum(code, n, before)
    by_day = np.bincount(
        code[before] * WEEKDAYS + o["weekday"][before], minlength=n * WEEKDAYS
    ).reshape(n, WEEKDAYS)
    habit = count >= MIN_ORDERS_FOR_HABIT
    return {
        "peak_season_order_share": np.divide(
            _sum(code, n, before & o["peak"]), count, out=np.full(n, np.nan), where=count > 0
        ),
        "weekday_modal_share": np.divide(
            by_day.max(axis=1), count, out=np.full(n, np.nan), where=habit
        ),
    }
