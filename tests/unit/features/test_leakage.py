"""Leakage by construction: events at or after the cutoff change no feature cell of that cutoff.

Hypothesis adds, changes and deletes orders, returns and feedback dated at or after the cutoff
(including new customers, new channels and events exactly at the cutoff) and checks that the
snapshot's Parquet bytes are identical, and those of the BTYD features derived from it.
"""

from __future__ import annotations

import io

import pandas as pd
import pytest
from feature_tables import CUTOFF, make_customers, make_feedback, make_orders, make_returns
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.features.catalog import Catalog
from pipeline.features.snapshot import build_snapshot
from pipeline.modeling.btyd import BgNbd
from pipeline.modeling.btyd_features import BtydFeatures
from tests.support.params import fixed_features

US_PER_DAY = 86_400_000_000
at_or_after = st.integers(0, 400 * US_PER_DAY).map(
    lambda us: CUTOFF + pd.Timedelta(microseconds=us)
)
ids = st.sampled_from(["A", "B", "C", "D", "Z-new"])
BTYD = BtydFeatures(
    BgNbd(
        r=0.5,
        alpha=10.0,
        a=0.8,
        b=2.5,
        converged=True,
        message="",
        log_likelihood=0.0,
        n_customers=0,
    ),
    horizon_days=90,
)


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _base() -> dict[str, pd.DataFrame]:
    return {
        "orders": make_orders(),
        "returns": make_returns(),
        "feedback": make_feedback(),
        "customers": make_customers(),
    }


order_rows = st.fixed_dictionaries(
    {
        "customer_id": ids,
        "order_ts": at_or_after,
        "gross_amount": st.floats(0.01, 1e6),
        "discount_amount": st.floats(0, 100),
        "channel": st.sampled_from(["web", "store", "app", "kiosk"]),
        "late_days": st.integers(-3, 30),
    }
)
return_rows = st.fixed_dictionaries(
    {"customer_id": ids, "return_ts": at_or_after, "amount": st.floats(0.01, 1e5)}
)
feedback_rows = st.fixed_dictionaries(
    {
        "customer_id": ids,
        "feedback_ts": at_or_after,
        "kind": st.sampled_from(["review", "survey", "nps", "complaint"]),
        "score": st.integers(0, 10),
        "resolved": st.booleans(),
        "resolution_hours": st.floats(0, 500),
    }
)


def _add_orders(orders: pd.DataFrame, rows: list[dict[str, object]]) -> pd.DataFrame:
    if not rows:
        return orders
    new = pd.DataFrame(rows)
    new["order_id"] = [f"new{i}" for i in range(len(new))]
    new["n_items"] = 1
    new["n_distinct_products"] = 1
    new["promised_ts"] = new["order_ts"].dt.floor("D") + pd.Timedelta(days=2)
    new["delivered_ts"] = new["promised_ts"] + pd.to_timedelta(new.pop("late_days"), unit="D")
    return pd.concat(
        [orders, new[orders.columns].astype(orders.dtypes.to_dict())], ignore_index=True
    )


def _add(frame: pd.DataFrame, rows: list[dict[str, object]]) -> pd.DataFrame:
    if not rows:
        return frame
    new = pd.DataFrame(rows).reindex(columns=frame.columns)
    return pd.concat([frame, new.astype(frame.dtypes.to_dict())], ignore_index=True)


@pytest.mark.reliability("features: events at or after the cutoff exist")
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    new_orders=st.lists(order_rows, max_size=6),
    new_returns=st.lists(return_rows, max_size=4),
    new_feedback=st.lists(feedback_rows, max_size=6),
    drop_future=st.booleans(),
    scale_future=st.floats(0.1, 10.0),
    shuffle_seed=st.integers(0, 1000),
)
def test_events_at_or_after_the_cutoff_change_no_feature_cell(
    catalog: Catalog,
    new_orders: list[dict[str, object]],
    new_returns: list[dict[str, object]],
    new_feedback: list[dict[str, object]],
    drop_future: bool,
    scale_future: float,
    shuffle_seed: int,
) -> None:
    params = fixed_features(partitions=1, workers=1)
    base = _base()
    expected = _parquet(build_snapshot(**base, cutoff=CUTOFF, params=params, catalog=catalog))

    changed = _base()
    orders, returns, feedback = changed["orders"], changed["returns"], changed["feedback"]
    future = orders["order_ts"] >= CUTOFF
    orders.loc[future, "gross_amount"] = orders.loc[future, "gross_amount"] * scale_future  # change
    orders.loc[future, "channel"] = "kiosk"
    feedback.loc[feedback["feedback_ts"] >= CUTOFF, "score"] = 5.0
    if drop_future:  # delete
        orders = orders[~future]
        returns = returns[returns["return_ts"] < CUTOFF]
        feedback = feedback[feedback["feedback_ts"] < CUTOFF]
    orders = _add_orders(orders, new_orders)  # add
    returns = _add(returns, new_returns)
    feedback = _add(feedback, new_feedback)
    changed.update(
        orders=orders.sample(frac=1.0, random_state=shuffle_seed),  # input order must not matter
        returns=returns,
        feedback=feedback,
    )
    snapshot = build_snapshot(**changed, cutoff=CUTOFF, params=params, catalog=catalog)
    assert _parquet(snapshot) == expected
    # the BTYD features a model derives from the snapshot (with its shipped parameters) too
    before = BTYD.add(build_snapshot(**base, cutoff=CUTOFF, params=params, catalog=catalog))
    assert _parquet(BTYD.add(snapshot)) == _parquet(before)


def test_an_event_just_before_the_cutoff_does_change_the_snapshot(catalog: Catalog) -> None:
    """Negative control: the byte comparison above is able to see a change."""
    params = fixed_features(partitions=1, workers=1)
    base = _base()
    expected = _parquet(build_snapshot(**base, cutoff=CUTOFF, params=params, catalog=catalog))
    just_before = CUTOFF - pd.Timedelta(microseconds=1)
    row = {"customer_id": "A", "return_ts": just_before, "amount": 1.0}
    changed = dict(base, returns=_add(base["returns"], [row]))
    assert (
        _parquet(build_snapshot(**changed, cutoff=CUTOFF, params=params, catalog=catalog))
        != expected
    )
