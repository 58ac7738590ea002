"""Defaults that fit the data: each rule on hand-written gaps and spans, and the fitting order.

Frequent buyers (weekly), sparse buyers (every 100 days), short (one year) and long (three
years) spans; the rules are in pipeline/features/defaults.py and population.py.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from feature_tables import make_history
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import FeaturesParams, LabelsParams
from pipeline.errors import DataError
from pipeline.features.catalog import Catalog
from pipeline.features.cutoffs import cutoff_grid, plan_split
from pipeline.features.defaults import binary_horizon, fit_timeline, min_history
from pipeline.features.gaps import Gaps, rung_at_least
from pipeline.features.panel import build_features
from pipeline.features.population import (
    FilterCount,
    active_choice,
    active_window,
    filter_counts,
    recency,
    warn_if_too_many,
)
from pipeline.features.prepare import prepare
from pipeline.features.rfm import rfm_features
from pipeline.features.snapshot import cutoff_us
from tests.support.params import fixed_features, fixed_labels

UTC = "UTC"
NULL_LABELS = LabelsParams()  # churn, repurchase and value, every horizon null


def _orders(rows: list[tuple[str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "order_ts"])
    frame["customer_id"] = frame["customer_id"].astype("string")
    frame["order_ts"] = pd.to_datetime(frame["order_ts"], utc=True).dt.as_unit("us")
    frame["gross_amount"] = 10.0
    return frame


def _regular(customers: int, every: int, start: str = "2023-01-01", days: int = 730) -> list:
    """Each customer orders every ``every`` days from a staggered first day, for ``days``."""
    first = pd.Timestamp(start, tz=UTC)
    return [
        (f"c{c:03d}", str(first + pd.Timedelta(days=d)))
        for c in range(customers)
        for d in range(c % every, days, every)
    ]


def _gaps(rows: list[tuple[str, str]]) -> Gaps:
    prepared, _ = prepare(_orders(rows), None, None, None)
    return Gaps.of(prepared.orders)


WEEKLY = _gaps(_regular(20, 7))  # frequent buyers: every gap is 7 days
SPARSE = _gaps(_regular(40, 100))  # sparse buyers: every gap is 100 days


def test_gaps_count_purchase_days_of_repeat_customers() -> None:
    gaps = _gaps(
        [
            # A: two orders the same UTC day are one purchase; the next comes 10 days later
            # (day numbers, not hours: 09:00 -> 08:00 ten days on is a 10-day gap).
            ("A", "2024-01-01 09:00"),
            ("A", "2024-01-01 17:00"),
            ("A", "2024-01-11 08:00"),
            # B: two minutes apart but on two UTC days: two purchases, a 1-day gap.
            ("B", "2024-01-01 23:59"),
            ("B", "2024-01-02 00:01"),
            # C: a single order: not a repeat customer, no gap.
            ("C", "2024-01-05 12:00"),
        ]
    )
    assert gaps.days.tolist() == [1, 10]
    assert gaps.customers == 2
    assert not gaps.enough  # two gaps: too few for a quantile to mean anything


def test_rung_at_least_rounds_up_to_the_ladder() -> None:
    assert [rung_at_least(d) for d in (0, 30, 30.5, 90, 91, 365, 500)] == [
        30,
        30,
        60,  # just over a rung: the next one up
        90,
        120,
        365,
        365,  # beyond the ladder: its longest rung
    ]


def test_horizons_and_history_follow_the_gaps() -> None:
    # Weekly buyers: every rule lands on the shortest rung.
    assert binary_horizon("churn", "no_order_within", WEEKLY).value == 30
    assert binary_horizon("repurchase", "order_within", WEEKLY).value == 30
    assert min_history(WEEKLY).value == 30
    # Buyers every 100 days: 120 days covers their usual gap, for every rule.
    churn = binary_horizon("churn", "no_order_within", SPARSE)
    assert churn.value == 120 and churn.param == "labels.targets.churn.horizon_days"
    assert "90% of the" in churn.why and "within 100 days" in churn.why
    assert binary_horizon("repurchase", "order_within", SPARSE).value == 120
    assert min_history(SPARSE).value == 120


def test_churn_covers_more_of_the_gaps_than_repurchase() -> None:
    # 80 gaps of 10 days, 20 of 75 days: half of the gaps are 10 days, 90% are under 75.
    gaps = Gaps(np.sort(np.array([10] * 80 + [75] * 20)), customers=20)
    assert binary_horizon("repurchase", "order_within", gaps).value == 30
    assert binary_horizon("churn", "no_order_within", gaps).value == 90
    assert min_history(gaps).value == 30  # 75% of the gaps are 10 days


def test_too_few_repeat_purchases_fall_back_to_standard_values() -> None:
    few = _gaps(_regular(3, 100, days=400))  # 3 customers x 3 gaps
    assert not few.enough
    churn = binary_horizon("churn", "no_order_within", few)
    assert churn.value == 90 and "only 9 repeat purchases" in churn.why
    assert binary_horizon("repurchase", "order_within", few).value == 30
    assert min_history(few).value == 60
    assert active_window(few) == 365


def test_a_long_span_keeps_the_wanted_values() -> None:
    first, end = pd.Timestamp("2023-01-01", tz=UTC), pd.Timestamp("2026-01-01", tz=UTC)
    timeline = fit_timeline(first, end, FeaturesParams(), NULL_LABELS, SPARSE)
    horizons = {n: t.horizon_days for n, t in timeline.labels.targets.items()}
    assert horizons == {"churn": 120, "repurchase": 120, "value": None}  # value: planned later
    assert timeline.params.min_history_days == 120 and timeline.params.step_months == 1
    assert timeline.grid[0] == pd.Timestamp("2023-05-01", tz=UTC)  # 120 days after 2023-01-01
    choices = {c.param: c for c in timeline.choices}
    assert set(choices) == {
        "labels.targets.churn.horizon_days",
        "labels.targets.repurchase.horizon_days",
        "features.min_history_days",
        "features.step_months",
    }
    assert not any("lowered" in c.why for c in timeline.choices)


def test_a_short_span_lowers_history_then_horizons_until_a_split_fits() -> None:
    # One year of buyers every 100 days: 120-day labels need 3 x 120 days plus history; no
    # history, step or grid fits them, so the horizons come down to 90 and the history with it.
    first, end = pd.Timestamp("2023-01-01", tz=UTC), pd.Timestamp("2024-01-01", tz=UTC)
    timeline = fit_timeline(first, end, FeaturesParams(), NULL_LABELS, SPARSE)
    assert timeline.labels.targets["churn"].horizon_days == 90
    assert timeline.labels.targets["repurchase"].horizon_days == 90
    assert timeline.params.min_history_days == 90  # 120 leaves no training cutoff
    assert timeline.params.step_months == 1
    churn = next(c for c in timeline.choices if c.param.endswith("churn.horizon_days"))
    assert "lowered to 90 days" in churn.why and "365-day span" in churn.why
    plan = plan_split(timeline.grid, timeline.labels, 1)
    assert plan.train == (pd.Timestamp("2023-04-01", tz=UTC),)
    # The test cutoff is the same for every binary target: the grid ends at the longest window.
    for target in ("churn", "repurchase"):
        days = timeline.labels.targets[target].horizon_days or 0
        assert plan_split(timeline.grid, pd.Timedelta(days=days), 1).test == plan.test


def test_a_span_too_short_for_a_monthly_grid_steps_in_days() -> None:
    # 90-day churn, 30 days of history, 2023-01-15 .. 2023-11-28. Monthly: test 2023-08-01,
    # valid 2023-05-01, and a training cutoff would have to be 2023-02-01 or earlier, before
    # the first cutoff 2023-03-01. Every 14 days back from 2023-08-30: valid 2023-05-24 and
    # train 2023-02-15 (just after 2023-02-14, the first order + 30 days).
    first, end = pd.Timestamp("2023-01-15", tz=UTC), pd.Timestamp("2023-11-28", tz=UTC)
    params = FeaturesParams(min_history_days=30)
    timeline = fit_timeline(first, end, params, fixed_labels(), Gaps(np.array([]), 0))
    assert timeline.params.step_days == 14 and timeline.params.step_months is None
    assert [c.param for c in timeline.choices] == ["features.step_days"]
    assert "a monthly grid leaves none" in timeline.choices[0].why
    plan = plan_split(timeline.grid, fixed_labels(), 1)
    assert plan.test == pd.Timestamp("2023-08-30", tz=UTC)
    assert plan.train == (pd.Timestamp("2023-02-15", tz=UTC),)


def test_explicit_params_are_kept_exactly() -> None:
    first, end = pd.Timestamp("2023-01-01", tz=UTC), pd.Timestamp("2025-01-01", tz=UTC)
    params, labels = fixed_features(), fixed_labels()
    timeline = fit_timeline(first, end, params, labels, WEEKLY)  # weekly gaps would say 30
    assert timeline.params == params and timeline.labels == labels
    assert timeline.choices == ()
    assert timeline.grid == cutoff_grid(first, end, params, labels)


@settings(max_examples=60, deadline=None)
@given(
    span=st.integers(60, 1500),
    gap=st.integers(1, 400),
    churn=st.sampled_from([None, 30, 90, 180]),
    history=st.sampled_from([None, 0, 60, 200]),
    step=st.sampled_from([None, {"step_months": 2}, {"step_days": 10}]),
)
def test_a_fitted_timeline_always_leaves_a_split_and_keeps_set_values(
    span: int, gap: int, churn: int | None, history: int | None, step: dict[str, int] | None
) -> None:
    first = pd.Timestamp("2022-03-17", tz=UTC)
    end = first + pd.Timedelta(days=span)
    gaps = Gaps(np.full(100, gap), customers=50)
    labels = LabelsParams(
        targets={
            "churn": {"rule": "no_order_within", "horizon_days": churn},
            "repurchase": {"rule": "order_within", "horizon_days": None},
        }
    )
    params = FeaturesParams(min_history_days=history, **(step or {}))
    try:
        timeline = fit_timeline(first, end, params, labels, gaps)
    except DataError:
        return  # too short for any split: refused, never a leaky or empty one
    plan = plan_split(timeline.grid, timeline.labels, 1)  # the split fits
    for name in ("churn", "repurchase"):
        days = timeline.labels.targets[name].horizon_days
        assert days is not None
        assert plan_split(timeline.grid, pd.Timedelta(days=days), 1).test == plan.test
    if churn is not None:
        assert timeline.labels.targets["churn"].horizon_days == churn
    if history is not None:
        assert timeline.params.min_history_days == history
    if step is not None:
        assert {k: getattr(timeline.params, k) for k in step} == step
    chosen = {c.param for c in timeline.choices}
    assert ("labels.targets.churn.horizon_days" in chosen) == (churn is None)
    assert ("features.min_history_days" in chosen) == (history is None)


def test_nothing_fits_is_the_split_error() -> None:
    first, end = pd.Timestamp("2024-01-01", tz=UTC), pd.Timestamp("2024-03-01", tz=UTC)
    with pytest.raises(DataError, match="values chosen from the data lowered"):
        fit_timeline(first, end, FeaturesParams(), NULL_LABELS, WEEKLY)
    with pytest.raises(DataError, match="needed for validation|no cutoff") as explicit:
        fit_timeline(first, end, fixed_features(), fixed_labels(), WEEKLY)
    assert "lowered" not in str(explicit.value)


def test_the_recency_window_is_whole_years_covering_the_gaps() -> None:
    assert active_window(WEEKLY) == 365
    assert active_window(SPARSE) == 365
    long_gaps = Gaps(np.sort(np.array([30] * 90 + [400] * 10)), customers=50)
    assert active_window(long_gaps) == 730  # 99% of gaps under 400 days: two years


@pytest.mark.parametrize(
    ("removed", "history", "value"),
    [
        (25, 400.0, 365),  # a quarter of the customers: a tail, applied
        (60, 400.0, "any"),  # most customers of a short export: not applied
        (60, 800.0, 365),  # most customers of a long export: a dormant tail, applied
    ],
)
def test_the_recency_window_applies_unless_it_cuts_deep_into_a_short_export(
    removed: int, history: float, value: int | str
) -> None:
    at_test = FilterCount("test cutoff 2024-06-01", 100, removed)
    choice = active_choice(365, at_test, history, 0.25, WEEKLY)
    assert choice.value == value and choice.param == "features.active_within_days"
    assert f"{removed} of 100 customers" in choice.why


def test_recency_matches_the_snapshot_features() -> None:
    prepared, _ = prepare(_orders(_regular(10, 45, days=300)), None, None, None)
    cutoff = cutoff_us(pd.Timestamp("2023-06-01", tz=UTC))
    orders, days = recency(prepared, cutoff)
    features = rfm_features(prepared, cutoff, (30,))
    assert np.array_equal(orders, features["lifetime_orders"])
    assert np.array_equal(days, features["days_since_last_order"], equal_nan=True)


def _lapsed_export() -> pd.DataFrame:
    # 8 customers bought only in January 2023; 2 keep buying monthly until mid 2024.
    rows = [(f"old{c}", "2023-01-10") for c in range(8)]
    rows += [(f"new{c}", f"2023-{m:02d}-05") for c in range(2) for m in range(1, 13)]
    rows += [(f"new{c}", f"2024-{m:02d}-05") for c in range(2) for m in range(1, 7)]
    return _orders(rows)


def test_a_filter_removing_too_many_customers_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    prepared, _ = prepare(_lapsed_export(), None, None, None)
    test, scoring = pd.Timestamp("2024-03-01", tz=UTC), pd.Timestamp("2024-07-01", tz=UTC)
    counts = filter_counts(prepared, test, scoring, [test], 365)
    assert (counts["test"].customers, counts["test"].removed) == (10, 8)
    with caplog.at_level(logging.WARNING, logger="pipeline.features.population"):
        warnings = warn_if_too_many(counts, 365, 0.25)
    assert len(warnings) == 2  # at the test cutoff and at the scoring date
    assert "features.active_within_days=365 removes 8 of 10 customers (80%)" in warnings[0]
    assert "features.max_filtered_share" in warnings[0] and "'any'" in warnings[0]
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING"]
    assert warn_if_too_many(counts, 365, 0.9) == []
    everyone = filter_counts(prepared, test, scoring, [test], "any")
    assert everyone["test"].removed == 0 and warn_if_too_many(everyone, "any", 0.0) == []


@pytest.fixture(scope="module")
def history() -> dict[str, pd.DataFrame]:
    return make_history(n_customers=60)


def test_the_stage_records_every_choice_and_what_the_filter_removed(
    catalog: Catalog, history: dict[str, pd.DataFrame]
) -> None:
    params = FeaturesParams(partitions=2, workers=1)
    result = build_features(**history, params=params, label_params=NULL_LABELS, catalog=catalog)
    summary = result.summary
    assert set(summary["derived"]) == {
        "labels.targets.churn.horizon_days",
        "labels.targets.repurchase.horizon_days",
        "labels.targets.value.horizon_days",
        "features.min_history_days",
        "features.step_months",
        "features.active_within_days",
    }
    for param, entry in summary["derived"].items():
        assert entry["why"], param
    labels = summary["labels"]
    assert (
        labels["churn"]["horizon_days"]
        == summary["derived"]["labels.targets.churn.horizon_days"]["value"]
    )
    assert labels["churn"]["horizon_chosen"].startswith("90% of the")
    assert summary["gaps"]["repeat_purchases"] > 30
    # The same test cutoff for every binary target, chosen horizons or not.
    tests = {plan["test"] for plan in summary["target_cutoffs"].values()}
    assert tests == {summary["cutoffs"]["test"]}
    counts = summary["population"]["removed_by"]["features.active_within_days"]
    assert counts["test"]["kept"] == summary["rows"]["test"]
    assert counts["scoring"]["kept"] == summary["rows"]["scoring"]
    assert counts["panel"]["kept"] == summary["rows"]["panel"]
    assert (
        summary["population"]["active_within_days"]
        == summary["derived"]["features.active_within_days"]["value"]
    )


def test_explicit_params_record_no_choice_and_warn_on_a_deep_filter(
    catalog: Catalog, history: dict[str, pd.DataFrame], caplog: pytest.LogCaptureFixture
) -> None:
    # A 20-day recency window on customers who buy every ~90 days removes most of them.
    params = fixed_features(partitions=1, workers=1, active_within_days=20)
    with caplog.at_level(logging.WARNING):
        result = build_features(
            **history, params=params, label_params=fixed_labels(value=90), catalog=catalog
        )
    summary = result.summary
    assert summary["derived"] == {}
    assert summary["labels"]["churn"]["horizon_days"] == 90
    assert summary["grid"] == {
        "step_months": 1,
        "step_days": None,
        "min_history_days": 60,
        "validation_cutoffs": 1,
    }
    warnings = summary["population"]["warnings"]
    assert warnings and "features.active_within_days=20 removes" in warnings[0]
    assert any("active_within_days=20" in r.getMessage() for r in caplog.records)


def test_on_a_short_export_the_chosen_population_keeps_the_early_customers(
    catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    # 17 months: a year of recency would drop 8 of the 10 customers at the test cutoff (they
    # bought only in the export's first month), so the chosen population keeps everyone and
    # nothing warns; set explicitly, the same 365 days warns.
    orders = _lapsed_export()
    with caplog.at_level(logging.WARNING):
        chosen = build_features(
            orders, None, None, None, FeaturesParams(), NULL_LABELS, catalog
        ).summary
    assert chosen["derived"]["features.active_within_days"]["value"] == "any"
    assert "not a dormant tail" in chosen["derived"]["features.active_within_days"]["why"]
    assert chosen["population"]["warnings"] == [] and not caplog.records
    explicit = build_features(
        orders, None, None, None, FeaturesParams(active_within_days=365), NULL_LABELS, catalog
    ).summary
    assert "features.active_within_days" not in explicit["derived"]
    assert (
        explicit["population"]["removed_by"]["features.active_within_days"]["test"]["removed"] == 8
    )
    assert explicit["population"]["warnings"]
