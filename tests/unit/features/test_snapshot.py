"""build_snapshot on the hand-written fixture: values, population, time boundary, absent inputs."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from feature_tables import (
    CUTOFF,
    make_customers,
    make_feedback,
    make_history,
    make_orders,
    make_returns,
)

from pipeline.config import FeaturesParams
from pipeline.errors import InputError
from pipeline.features.catalog import Catalog
from pipeline.features.panel import build_scoring_snapshot
from pipeline.features.snapshot import build_snapshot
from tests.support.params import fixed_features


def _snapshot(catalog: Catalog, params: FeaturesParams, **overrides: object) -> pd.DataFrame:
    tables = {
        "orders": make_orders(),
        "returns": make_returns(),
        "feedback": make_feedback(),
        "customers": make_customers(),
    }
    tables.update(overrides)  # type: ignore[arg-type]
    return build_snapshot(**tables, cutoff=CUTOFF, params=params, catalog=catalog)


@pytest.mark.reliability("features: customer first seen after the cutoff")
def test_population_is_customers_active_before_the_cutoff(
    catalog: Catalog, fparams: FeaturesParams
) -> None:
    snap = _snapshot(catalog, fparams)
    # B's only order is 400 days old (> active_within_days=365); D's first order is after it.
    assert snap["customer_id"].tolist() == ["A", "C"]
    everyone = _snapshot(catalog, fparams.model_copy(update={"active_within_days": "any"}))
    assert everyone["customer_id"].tolist() == ["A", "B", "C"]
    # null means "chosen by the features stage": a snapshot without the choice is refused,
    # never silently built on another population
    with pytest.raises(ValueError, match="active_within_days is null"):
        _snapshot(catalog, fparams.model_copy(update={"active_within_days": None}))


def test_rfm_values_of_customer_a(catalog: Catalog, fparams: FeaturesParams) -> None:
    a = _snapshot(catalog, fparams).set_index("customer_id").loc["A"]
    # Orders 2024-01-01 10:00, 01-31 10:00, 03-02 10:00; the order at 04-01 00:00 is not counted.
    assert a["lifetime_orders"] == 3
    assert a["lifetime_spend"] == 300.0
    assert a["days_since_last_order"] == pytest.approx(29 + 14 / 24)
    assert a["orders_count_30d"] == 1  # 03-02 10:00 is within 30 days of 04-01
    assert a["orders_count_90d"] == 2  # 01-01 10:00 is 90 days and 14 h before: out
    assert a["inter_purchase_gap_days_mean"] == pytest.approx(30.5)
    assert a["inter_purchase_gap_days_std"] == pytest.approx(math.sqrt(0.5))
    assert a["overdue_ratio"] == pytest.approx((29 + 14 / 24) / 30.5)
    assert a["orders_trend_90d"] == 1  # 2 in the last 90 days, 1 in the 90 before
    assert a["tenure_days"] == pytest.approx(90 + 14 / 24)
    assert a["avg_order_value"] == 100.0


def test_other_concepts_of_customer_a(catalog: Catalog, fparams: FeaturesParams) -> None:
    a = _snapshot(catalog, fparams).set_index("customer_id").loc["A"]
    assert a["review_count"] == 2  # the review exactly at the cutoff is not counted
    assert a["review_score_last"] == 2.0
    assert a["review_score_trend"] == -3.0
    assert a["review_low_score_share"] == 0.5
    assert a["nps_group"] == "promoter"
    assert a["complaints_count_90d"] == 2
    assert a["complaints_unresolved"] == 1  # raised 03-31, resolved 72 h later: after the cutoff
    assert a["complaint_resolution_hours_mean"] == 48.0
    assert a["returns_count"] == 1  # the return of 04-05 is after the cutoff
    assert a["returned_value_share"] == pytest.approx(25 / 300)
    assert a["late_delivery_share"] == pytest.approx(1 / 3)  # a2: promised 02-02, came 02-05
    assert a["discount_share_of_spend"] == pytest.approx(10 / 300)
    assert a["channels_used"] == 2
    assert a["loyalty_member"] == 1.0
    assert a["region"] == "north"


def test_delivery_after_the_cutoff_is_not_known_at_the_cutoff(
    catalog: Catalog, fparams: FeaturesParams
) -> None:
    c = _snapshot(catalog, fparams).set_index("customer_id").loc["C"]
    # Promised 03-31, delivered 04-10: at the cutoff it is one day late and still undelivered.
    assert c["late_delivery_share"] == 1.0
    assert c["delivery_delay_days_mean"] == 1.0


def test_never_happened_differs_from_unknown(catalog: Catalog, fparams: FeaturesParams) -> None:
    c = _snapshot(catalog, fparams).set_index("customer_id").loc["C"]
    assert c["review_count"] == 0 and math.isnan(c["review_score_mean"])  # never reviewed
    assert pd.isna(c["nps_group"])
    assert c["has_feedback"] == 1.0  # but complained
    assert c["returns_count"] == 0
    assert pd.isna(c["region"])  # 'atlantis' is not a known level: missing, never re-encoded


@pytest.mark.reliability("features: no feedback (features absent, listed)")
def test_absent_tables_drop_their_features(catalog: Catalog, fparams: FeaturesParams) -> None:
    orders = make_orders().drop(
        columns=["discount_amount", "promised_ts", "delivered_ts", "channel"]
    )
    snap = _snapshot(catalog, fparams, orders=orders, feedback=None, customers=None)
    for name in (
        "review_score_mean",
        "complaints_unresolved",
        "late_delivery_share",
        "discount_share_of_spend",
        "loyalty_member",
        "region",
        "channels_used",
    ):
        assert name not in snap.columns
    assert "returns_count" in snap.columns and "orders_count_90d" in snap.columns


def test_dtypes_and_fixed_category_levels(catalog: Catalog, fparams: FeaturesParams) -> None:
    snap = _snapshot(catalog, fparams)
    assert str(snap["customer_id"].dtype) == "string"
    assert str(snap["cutoff"].dtype) == "datetime64[us, UTC]"
    assert list(snap["region"].cat.categories) == ["central", "east", "north", "south", "west"]
    assert list(snap["nps_group"].cat.categories) == ["detractor", "passive", "promoter"]
    numeric = snap.drop(columns=["customer_id", "cutoff", "region", "nps_group"])
    assert set(numeric.dtypes.astype(str)) == {"float64"}
    # RFM quintile scores rank a customer among the batch: they are business labels of scored
    # rows (pipeline.business, with shipped edges), never model inputs.
    assert not [c for c in snap.columns if c.startswith("rfm_")]


def test_every_catalog_feature_is_computed(catalog: Catalog, fparams: FeaturesParams) -> None:
    snap = _snapshot(catalog, fparams)
    specs = catalog.expand(fparams.windows_days).features
    # derived features (BTYD) are computed by the model that uses them, not by the snapshot
    expected = [s.name for s in specs if s.derived is None]
    assert list(snap.columns) == ["customer_id", "cutoff", *expected]
    assert {s.name for s in specs if s.derived} == {"btyd_p_alive", "btyd_expected_orders"}


def test_inputs_are_not_mutated(catalog: Catalog, fparams: FeaturesParams) -> None:
    tables = {
        "orders": make_orders(),
        "returns": make_returns(),
        "feedback": make_feedback(),
        "customers": make_customers(),
    }
    copies = {k: v.copy(deep=True) for k, v in tables.items()}
    build_snapshot(**tables, cutoff=CUTOFF, params=fparams, catalog=catalog)
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, copies[name])


def test_unsorted_input_gives_the_same_snapshot(catalog: Catalog, fparams: FeaturesParams) -> None:
    shuffled = make_orders().sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(
        _snapshot(catalog, fparams, orders=shuffled), _snapshot(catalog, fparams)
    )


def test_missing_required_column_is_one_line_error(
    catalog: Catalog, fparams: FeaturesParams
) -> None:
    with pytest.raises(InputError, match="orders: required column.*gross_amount"):
        _snapshot(catalog, fparams, orders=make_orders().drop(columns=["gross_amount"]))


def test_cutoff_before_any_order_gives_an_empty_table(
    catalog: Catalog, fparams: FeaturesParams
) -> None:
    tables = {"orders": make_orders(), "returns": None, "feedback": None, "customers": None}
    snap = build_snapshot(**tables, cutoff="2020-01-01", params=fparams, catalog=catalog)
    assert len(snap) == 0 and "days_since_last_order" in snap.columns


@pytest.mark.parametrize("partitions,workers", [(3, 1), (4, 2)])
def test_partitioned_scoring_snapshot_equals_build_snapshot(
    catalog: Catalog, partitions: int, workers: int
) -> None:
    tables = make_history(n_customers=30)
    single = fixed_features(partitions=1, workers=1)
    expected = build_snapshot(**tables, cutoff="2024-06-15", params=single, catalog=catalog)
    parted = fixed_features(partitions=partitions, workers=workers)
    got = build_scoring_snapshot(**tables, as_of="2024-06-15", params=parted, catalog=catalog)
    pd.testing.assert_frame_equal(got, expected)


def test_fast_sorted_factorize_equals_pandas_factorize() -> None:
    from pipeline.features.prepare import factorize_ids

    ids = pd.Series(["10", "10", "2", "2", "2", "ä", "z"], dtype="string")  # sorted, non-ASCII
    codes, index = factorize_ids(ids)
    expected_codes, expected = pd.factorize(ids, sort=True)
    assert codes.tolist() == expected_codes.tolist() and list(index) == list(expected)
    shuffled = ids.iloc[[3, 0, 6, 1, 5, 2, 4]]  # unsorted: the pandas fallback
    codes, index = factorize_ids(shuffled)
    assert list(index) == list(expected) and [index[c] for c in codes] == shuffled.tolist()


@pytest.mark.reliability("features: only cancellations")
def test_customer_with_only_cancellations_is_not_in_the_population(
    catalog: Catalog, fparams: FeaturesParams
) -> None:
    only_returns = pd.DataFrame(
        {
            "customer_id": pd.array(["R"], dtype="string"),  # returns, never an order
            "order_id": pd.array(["r1"], dtype="string"),
            "return_ts": pd.to_datetime(["2024-03-01"], utc=True).as_unit("us"),
            "amount": [30.0],
        }
    )
    returns = pd.concat([make_returns(), only_returns], ignore_index=True)
    snap = _snapshot(catalog, fparams, returns=returns)
    assert "R" not in set(snap["customer_id"])
    pd.testing.assert_frame_equal(snap, _snapshot(catalog, fparams))  # and nobody else changes
