"""Line-level habits and trends (pipeline/features/habits.py and rfm.py) on a hand-made fixture.

Cutoff 2024-04-01 00:00 UTC (a Monday); every order row says why it is there.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.config import FeaturesParams
from pipeline.features.catalog import Catalog
from pipeline.features.prepare import prepare
from pipeline.features.snapshot import build_snapshot

CUTOFF = pd.Timestamp("2024-04-01", tz="UTC")
NEW = [
    "item_price_mean",
    "item_price_ratio_90d",
    "products_per_order_mean",
    "peak_season_order_share",
    "weekday_modal_share",
    "orders_trend_rel_90d",
    "spend_trend_rel_90d",
    "orders_slope_365d",
    "inter_purchase_gap_cv",
]
COLUMNS = ["customer_id", "order_id", "order_ts", "gross_amount", "n_items", "n_distinct_products"]


def _orders(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["customer_id"] = frame["customer_id"].astype("string")
    frame["order_ts"] = pd.to_datetime(frame["order_ts"], utc=True, format="ISO8601").dt.as_unit(
        "us"
    )
    return frame


def make_orders() -> pd.DataFrame:
    return _orders(
        [
            # P: four Wednesday orders, two in the Nov-Dec peak, two in the last 90 days
            # (item prices 10, 15 before; 30, 20 in the last 90 days, from 2024-01-02 on).
            ("P", "p1", "2023-11-15 12:00", 100.0, 10, 3),
            ("P", "p2", "2023-12-20 12:00", 60.0, 4, 2),
            ("P", "p3", "2024-02-14 12:00", 90.0, 3, 1),
            ("P", "p4", "2024-03-20 12:00", 40.0, 2, 2),
            # S: a single order a week ago: no earlier price, gap or weekday habit.
            ("S", "s1", "2024-03-25 12:00", 50.0, 2, 4),
            # Z: three orders in summer 2023 (Thu, Sat, Tue), none in the last 180 days.
            ("Z", "z1", "2023-06-01 12:00", 30.0, 3, 1),
            ("Z", "z2", "2023-07-01 12:00", 30.0, 3, 1),
            ("Z", "z3", "2023-08-01 12:00", 30.0, 3, 1),
        ]
    )


def _snapshot(catalog: Catalog, orders: pd.DataFrame) -> pd.DataFrame:
    params = FeaturesParams(partitions=1, workers=1, active_within_days=None)
    snap = build_snapshot(orders, None, None, None, cutoff=CUTOFF, params=params, catalog=catalog)
    return snap.set_index("customer_id")


def test_price_points_and_basket(catalog: Catalog) -> None:
    snap = _snapshot(catalog, make_orders())
    p, s = snap.loc["P"], snap.loc["S"]
    assert p["item_price_mean"] == pytest.approx((10 + 15 + 30 + 20) / 4)
    assert p["item_price_ratio_90d"] == pytest.approx(25 / 12.5)
    assert p["products_per_order_mean"] == 2.0
    assert s["item_price_mean"] == 25.0
    assert math.isnan(s["item_price_ratio_90d"])  # no order before its last 90 days
    assert math.isnan(snap.loc["Z", "item_price_ratio_90d"])  # no order in the last 90 days


def test_seasonality(catalog: Catalog) -> None:
    snap = _snapshot(catalog, make_orders())
    assert snap.loc["P", "peak_season_order_share"] == 0.5
    assert snap.loc["P", "weekday_modal_share"] == 1.0  # always a Wednesday
    assert snap.loc["Z", "weekday_modal_share"] == pytest.approx(1 / 3)
    assert math.isnan(snap.loc["S", "weekday_modal_share"])  # fewer than three orders
    assert snap.loc["S", "peak_season_order_share"] == 0.0


def test_relative_trends_and_slope(catalog: Catalog) -> None:
    snap = _snapshot(catalog, make_orders())
    p = snap.loc["P"]
    assert p["orders_trend_rel_90d"] == 0.0  # 2 in the last 90 days, 2 in the 90 before
    assert p["spend_trend_rel_90d"] == pytest.approx((130 - 160) / 290)
    # Months ago (30.4-day bins): 0, 1, 3, 4 -> centred weights 5.5, 4.5, 2.5, 1.5 over 143.
    assert p["orders_slope_365d"] == pytest.approx(14 / 143)
    assert snap.loc["S", "orders_trend_rel_90d"] == 1.0  # all its orders are recent
    assert math.isnan(snap.loc["Z", "orders_trend_rel_90d"])  # nothing in 180 days: unknown
    assert snap.loc["Z", "orders_slope_365d"] == pytest.approx(-(4.5 + 3.5 + 2.5) / 143)


def test_gap_coefficient_of_variation(catalog: Catalog) -> None:
    snap = _snapshot(catalog, make_orders())
    # P's gaps: 35, 56, 35 days: mean 42, sample std sqrt(147).
    assert snap.loc["P", "inter_purchase_gap_cv"] == pytest.approx(math.sqrt(147) / 42)
    assert snap.loc["Z", "inter_purchase_gap_cv"] == pytest.approx(np.std([30, 31], ddof=1) / 30.5)
    assert math.isnan(snap.loc["S", "inter_purchase_gap_cv"])  # one order: no gap


def test_orders_at_or_after_the_cutoff_change_nothing(catalog: Catalog) -> None:
    base = make_orders()
    later = _orders(
        [
            ("P", "p5", "2024-04-01 00:00", 1000.0, 1, 9),  # exactly at the cutoff
            ("S", "s2", "2024-06-01 00:00", 5.0, 5, 5),
            ("Z", "z4", "2024-12-24 00:00", 80.0, 1, 1),  # a peak-season order, later
            ("N", "n1", "2024-04-02 00:00", 10.0, 1, 1),  # a customer first seen after it
        ]
    )
    expected = _snapshot(catalog, base)[NEW]
    got = _snapshot(catalog, pd.concat([base, later], ignore_index=True))[NEW]
    pd.testing.assert_frame_equal(got, expected)
    # Negative control: the same order one microsecond earlier is seen.
    just_before = later.iloc[[0]].assign(order_ts=CUTOFF - pd.Timedelta(microseconds=1))
    moved = _snapshot(catalog, pd.concat([base, just_before], ignore_index=True))
    assert moved.loc["P", "products_per_order_mean"] != expected.loc["P", "products_per_order_mean"]


def test_orders_without_item_counts_have_no_item_price(catalog: Catalog) -> None:
    orders = make_orders()
    orders.loc[orders["customer_id"] == "S", "n_items"] = 0
    assert math.isnan(_snapshot(catalog, orders).loc["S", "item_price_mean"])


def test_sources_without_item_columns_lack_those_features(catalog: Catalog) -> None:
    snap = _snapshot(catalog, make_orders().drop(columns=["n_items", "n_distinct_products"]))
    for name in ("item_price_mean", "item_price_ratio_90d", "products_per_order_mean"):
        assert name not in snap.columns
    assert "weekday_modal_share" in snap.columns and "orders_slope_365d" in snap.columns


def test_calendar_arrays_match_pandas() -> None:
    ts = pd.Series(
        pd.to_datetime(
            [
                "1970-01-01",
                "2023-10-31 23:59:59.999999",
                "2023-11-01",
                "2023-12-31 23:59",
                "2024-01-01",
            ],
            utc=True,
            format="ISO8601",
        ).as_unit("us")
    )
    frame = pd.DataFrame(
        {"customer_id": pd.array(["a"] * 5, dtype="string"), "order_ts": ts, "gross_amount": 1.0}
    )
    prepared, _ = prepare(frame, None, None, None)
    assert prepared.orders["weekday"].tolist() == ts.dt.day_of_week.tolist()
    assert prepared.orders["peak"].tolist() == [False, False, True, True, False]
