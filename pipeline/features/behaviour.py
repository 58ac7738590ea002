"""Service, product quality, delivery, price and relationship features."""

from __future__ import annotations

import numpy as np

from pipeline.features.prepare import DAY_US, NAT, Prepared

Columns = dict[str, np.ndarray]


def _count(
    codes: np.ndarray, n: int, mask: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    w = None if weights is None else weights[mask]
    return np.bincount(codes[mask], weights=w, minlength=n).astype(np.float64)


def _share(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def service_features(prepared: Prepared, cutoff: int) -> Columns:
    """Count complaints in 90/365 days and those unresolved at the cutoff; mean resolution hours."""
    if prepared.feedback is None:
        return {}
    c, n = prepared.feedback["complaint"], prepared.n
    code, ts = c["code"], c["ts"]
    before = ts < cutoff
    resolved = before & (c["resolved_at"] < cutoff) & ~np.isnan(c["hours"])
    return {
        "complaints_count_90d": _count(code, n, before & (ts >= cutoff - 90 * DAY_US)),
        "complaints_count_365d": _count(code, n, before & (ts >= cutoff - 365 * DAY_US)),
        "complaints_unresolved": _count(code, n, before & (c["resolved_at"] >= cutoff)),
        "complaints_unresolved_90d": _count(
            code, n, before & (ts >= cutoff - 90 * DAY_US) & (c["resolved_at"] >= cutoff)
        ),
        "complaint_resolution_hours_mean": _share(
            _count(code, n, resolved, c["hours"]), _count(code, n, resolved)
        ),
    }


def returns_features(prepared: Prepared, cutoff: int, lifetime_spend: np.ndarray) -> Columns:
    """Count returns (and cancellations) before the cutoff and their value as a share of spend."""
    if prepared.returns is None:
        return {}
    r, n = prepared.returns, prepared.n
    before = r["ts"] < cutoff
    return {
        "returns_count": _count(r["code"], n, before),
        "returns_count_90d": _count(r["code"], n, before & (r["ts"] >= cutoff - 90 * DAY_US)),
        "returned_value_share": _share(_count(r["code"], n, before, r["amount"]), lifetime_spend),
    }


def delivery_features(prepared: Prepared, cutoff: int) -> Columns:
    """Share of orders delivered late and mean delay, as known at the cutoff.

    An order counts once its promised date has passed. A delivery at or after the cutoff (or
    never) is unknown at the cutoff: such an order is late by ``cutoff - promised`` so far.
    """
    o, n = prepared.orders, prepared.n
    if "promised" not in o or "delivered" not in o:
        return {}
    promised, delivered = o["promised"], o["delivered"]
    due = (o["ts"] < cutoff) & (promised != NAT) & (promised < cutoff)
    seen = np.where((delivered != NAT) & (delivered < cutoff), delivered, cutoff)
    delay = np.clip((seen - promised) / DAY_US, 0.0, None)
    orders_due = _count(o["code"], n, due)
    return {
        "late_delivery_share": _share(_count(o["code"], n, due & (delay > 0)), orders_due),
        "delivery_delay_days_mean": _share(_count(o["code"], n, due, delay), orders_due),
    }


def price_features(prepared: Prepared, cutoff: int) -> Columns:
    """Discount as a share of gross spend before the cutoff."""
    o, n = prepared.orders, prepared.n
    if "discount" not in o:
        return {}
    before = o["ts"] < cutoff
    spend = _count(o["code"], n, before, o["amount"])
    return {"discount_share_of_spend": _share(_count(o["code"], n, before, o["discount"]), spend)}


def relationship_features(prepared: Prepared, cutoff: int) -> Columns:
    """Loyalty membership, region (category codes) and number of channels used before the cutoff.

    Membership and region come from the customer table, a current-state export: they are taken
    as valid at every cutoff (the source has no history of them).
    """
    out: Columns = {}
    n = prepared.n
    if prepared.customers is not None:
        out.update(prepared.customers)
    o = prepared.orders
    if "channel" in o:
        before = (o["ts"] < cutoff) & (o["channel"] >= 0)
        used = np.zeros(n)
        for level in range(len(prepared.channels)):
            used += _count(o["code"], n, before & (o["channel"] == level)) > 0
        out["channels_used"] = used
    return out
