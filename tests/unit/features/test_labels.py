"""Labels: orders in [cutoff, cutoff + horizon); an order exactly at the cutoff is a label event."""

from __future__ import annotations

import pandas as pd
import pytest
from feature_tables import CUTOFF, make_orders

from pipeline.config import LabelsParams
from pipeline.features.labels import label_arrays
from pipeline.features.prepare import prepare
from pipeline.features.snapshot import cutoff_us
from tests.support.targets import churn_and_repurchase


def _labels(orders: pd.DataFrame, params: LabelsParams) -> pd.DataFrame:
    prepared, ids = prepare(orders, None, None, None)
    out = label_arrays(prepared, cutoff_us(CUTOFF), params)
    return pd.DataFrame(out, index=ids)


def _orders(*rows: tuple[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "order_ts"])
    frame["customer_id"] = frame["customer_id"].astype("string")
    frame["order_ts"] = pd.to_datetime(frame["order_ts"], utc=True, format="ISO8601").dt.as_unit(
        "us"
    )
    frame["gross_amount"] = 10.0
    return frame


@pytest.mark.reliability("features: event exactly at the cutoff")
def test_order_exactly_at_the_cutoff_is_in_the_label_window() -> None:
    labels = _labels(make_orders(), churn_and_repurchase())
    # A ordered at 2024-04-01 00:00:00 exactly: repurchased within 30 days, not churned.
    assert labels.loc["A"].tolist() == [0, 1]
    # C ordered at 2024-04-30 23:59:59.999999, the last microsecond of the 30-day window.
    assert labels.loc["C"].tolist() == [0, 1]
    # B has no order after the cutoff: churned, not repurchased.
    assert labels.loc["B"].tolist() == [1, 0]


def test_order_exactly_at_the_window_end_is_outside() -> None:
    orders = _orders(
        ("E", "2024-01-01"),  # history
        ("E", "2024-05-01 00:00:00"),  # cutoff + 30 days exactly: outside [cutoff, cutoff + 30d)
        ("F", "2024-01-01"),
        ("F", "2024-06-30 00:00:00"),  # cutoff + 90 days exactly: outside the churn window
        ("G", "2024-01-01"),
        ("G", "2024-06-29 23:59:59"),  # one second inside the churn window
    )
    labels = _labels(orders, churn_and_repurchase(90, 30))
    assert labels.loc["E"].tolist() == [0, 0]
    assert labels.loc["F"].tolist() == [1, 0]
    assert labels.loc["G"].tolist() == [0, 0]


def test_orders_before_the_cutoff_never_count_in_labels() -> None:
    orders = _orders(("H", "2024-03-31 23:59:59.999999"))  # one microsecond before the cutoff
    assert _labels(orders, churn_and_repurchase()).loc["H"].tolist() == [1, 0]
