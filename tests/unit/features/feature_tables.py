"""Tiny hand-written clean tables for the feature tests; every row has a reason to exist.

Cutoff used by the tests: 2024-04-01 00:00 UTC.
"""

from __future__ import annotations

import pandas as pd

CUTOFF = pd.Timestamp("2024-04-01", tz="UTC")


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC").as_unit("us")


def _frame(rows: list[tuple], columns: list[str], times: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    frame["customer_id"] = frame["customer_id"].astype("string")
    for column in times:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601").dt.as_unit("us")
    return frame


def make_orders() -> pd.DataFrame:
    cols = [
        "customer_id",
        "order_id",
        "order_ts",
        "gross_amount",
        "n_items",
        "n_distinct_products",
        "discount_amount",
        "promised_ts",
        "delivered_ts",
        "channel",
    ]
    rows = [
        # A: regular buyer, three orders before the cutoff (gaps 30 and 31 days), one after.
        ("A", "a1", "2024-01-01 10:00", 100.0, 2, 2, 10.0, "2024-01-03", "2024-01-03", "web"),
        ("A", "a2", "2024-01-31 10:00", 50.0, 1, 1, 0.0, "2024-02-02", "2024-02-05", "store"),
        ("A", "a3", "2024-03-02 10:00", 150.0, 3, 2, 0.0, "2024-03-04", "2024-03-04", "web"),
        # A's order exactly at the cutoff: in the labels (repurchased, not churned), not features.
        ("A", "a4", "2024-04-01 00:00", 80.0, 1, 1, 0.0, "2024-04-03", "2024-04-03", "web"),
        # B: one order long ago (400 days before the cutoff): outside active_within_days=365.
        ("B", "b1", "2023-02-26 12:00", 20.0, 1, 1, 0.0, "2023-03-01", "2023-03-01", "app"),
        # C: one order the day before the cutoff, promised before the cutoff, delivered after it.
        ("C", "c1", "2024-03-30 09:00", 40.0, 1, 1, 4.0, "2024-03-31", "2024-04-10", "app"),
        # D: first order after the cutoff: not in the population at the cutoff.
        ("D", "d1", "2024-05-01 09:00", 60.0, 1, 1, 0.0, "2024-05-03", "2024-05-03", "web"),
        # C again, one microsecond before the end of its 30-day repurchase window.
        (
            "C",
            "c2",
            "2024-04-30 23:59:59.999999",
            10.0,
            1,
            1,
            0.0,
            "2024-05-02",
            "2024-05-02",
            "web",
        ),
    ]
    return _frame(rows, cols, ("order_ts", "promised_ts", "delivered_ts")).sort_values(
        ["customer_id", "order_ts"], ignore_index=True
    )


def make_returns() -> pd.DataFrame:
    rows = [
        ("A", "a2", "2024-02-10 08:00", 25.0),  # before the cutoff: counted
        ("A", "a4", "2024-04-05 08:00", 80.0),  # after the cutoff: ignored
    ]
    return _frame(rows, ["customer_id", "order_id", "return_ts", "amount"], ("return_ts",))


def make_feedback() -> pd.DataFrame:
    cols = ["customer_id", "feedback_ts", "kind", "score", "resolved", "resolution_hours"]
    rows = [
        ("A", "2024-01-05", "review", 5.0, None, None),
        ("A", "2024-02-07", "review", 2.0, None, None),  # last review before the cutoff
        ("A", "2024-02-08", "nps", 9.0, None, None),  # promoter
        ("A", "2024-02-08", "survey", 4.0, None, None),
        # complaint raised before the cutoff, resolved 48 h later: resolved at the cutoff.
        ("A", "2024-02-09", "complaint", None, True, 48.0),
        # complaint raised before the cutoff but resolved after it: unresolved at the cutoff.
        ("A", "2024-03-31", "complaint", None, True, 72.0),
        ("A", "2024-04-01", "review", 1.0, None, None),  # exactly at the cutoff: ignored
        ("C", "2024-03-30", "complaint", None, False, None),  # never resolved
    ]
    frame = _frame(rows, cols, ("feedback_ts",))
    frame["kind"] = frame["kind"].astype("string")
    frame["resolved"] = frame["resolved"].astype("boolean")
    frame["resolution_hours"] = frame["resolution_hours"].astype("float64")
    return frame


def make_customers() -> pd.DataFrame:
    rows = [
        ("A", "2023-12-01", True, "north"),
        ("B", "2023-01-01", False, "south"),
        ("C", "2024-03-01", False, "atlantis"),  # a region outside the fixed levels
        ("D", "2024-04-20", False, "west"),
    ]
    frame = _frame(rows, ["customer_id", "signup_ts", "loyalty_member", "region"], ("signup_ts",))
    frame["loyalty_member"] = frame["loyalty_member"].astype("boolean")
    frame["region"] = frame["region"].astype("string")
    return frame


def make_history(n_customers: int = 40, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Two years of random events for a few customers: for panel and split tests only."""
    import numpy as np

    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-01", tz="UTC").as_unit("us")
    span_us = 730 * 86_400_000_000
    n_orders = n_customers * 8
    cust = rng.integers(0, n_customers, n_orders)
    order_ts = start + pd.to_timedelta(rng.integers(0, span_us, n_orders), unit="us")
    ids = pd.array([f"c{c:03d}" for c in cust], dtype="string")
    orders = pd.DataFrame(
        {
            "customer_id": ids,
            "order_id": pd.array([f"o{i}" for i in range(n_orders)], dtype="string"),
            "order_ts": order_ts,
            "gross_amount": rng.gamma(2.0, 30.0, n_orders) + 1.0,
            "n_items": rng.integers(1, 5, n_orders),
            "n_distinct_products": 1,
            "discount_amount": rng.choice([0.0, 5.0], n_orders),
            "promised_ts": order_ts.floor("D") + pd.Timedelta(days=3),
            "delivered_ts": order_ts.floor("D")
            + pd.to_timedelta(rng.integers(1, 7, n_orders), unit="D"),
            "channel": pd.array(rng.choice(["web", "store", "app"], n_orders), dtype="string"),
        }
    ).sort_values(["customer_id", "order_ts"], ignore_index=True)
    n_fb = n_customers * 4
    fb_ts = start + pd.to_timedelta(rng.integers(0, span_us, n_fb), unit="us")
    kinds = rng.choice(["review", "survey", "nps", "complaint"], n_fb)
    score = np.where(kinds == "nps", rng.integers(0, 11, n_fb), rng.integers(1, 6, n_fb)).astype(
        float
    )
    feedback = pd.DataFrame(
        {
            "customer_id": pd.array(
                [f"c{c:03d}" for c in rng.integers(0, n_customers, n_fb)], dtype="string"
            ),
            "feedback_ts": fb_ts,
            "kind": pd.array(kinds, dtype="string"),
            "score": np.where(kinds == "complaint", np.nan, score),
            "resolved": pd.array(
                np.where(kinds == "complaint", rng.random(n_fb) < 0.7, pd.NA), dtype="boolean"
            ),
            "resolution_hours": np.where(kinds == "complaint", rng.gamma(2.0, 20.0, n_fb), np.nan),
        }
    )
    n_ret = n_customers
    returns = pd.DataFrame(
        {
            "customer_id": orders["customer_id"]
            .iloc[rng.integers(0, len(orders), n_ret)]
            .to_numpy(),
            "order_id": pd.array([None] * n_ret, dtype="string"),
            "return_ts": start + pd.to_timedelta(rng.integers(0, span_us, n_ret), unit="us"),
            "amount": rng.gamma(2.0, 10.0, n_ret) + 1.0,
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": pd.array([f"c{c:03d}" for c in range(n_customers)], dtype="string"),
            "signup_ts": start,
            "loyalty_member": pd.array(rng.random(n_customers) < 0.4, dtype="boolean"),
            "region": pd.array(rng.choice(["north", "south", "east"], n_customers), dtype="string"),
        }
    )
    return {"orders": orders, "returns": returns, "feedback": feedback, "customers": customers}
