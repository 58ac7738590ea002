"""Cutoff grid, time split (no training label window reaches validation or test), panel build."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from feature_tables import make_history
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import FeaturesParams
from pipeline.errors import DataError
from pipeline.features.catalog import Catalog
from pipeline.features.cutoffs import (
    cutoff_grid,
    label_horizon,
    observed_end,
    plan_split,
)
from pipeline.features.panel import build_features
from pipeline.features.snapshot import build_snapshot
from pipeline.targets import non_feature_columns
from tests.support.params import fixed_features, fixed_labels
from tests.support.targets import churn_and_repurchase

UTC = "UTC"


def test_default_grid_is_monthly_from_min_history_to_last_complete_window() -> None:
    first = pd.Timestamp("2023-01-01 07:15", tz=UTC)
    end = pd.Timestamp("2025-01-01", tz=UTC)
    grid = cutoff_grid(first, end, fixed_features(min_history_days=180), fixed_labels())
    assert grid[0] == pd.Timestamp(
        "2023-07-01", tz=UTC
    )  # first order + 180 days -> next month start
    assert grid[-1] == pd.Timestamp("2024-10-01", tz=UTC)  # 2024-10-01 + 90 days <= 2025-01-01
    assert all(b - a <= pd.Timedelta(days=31) for a, b in zip(grid, grid[1:], strict=False))


def test_explicit_grid_is_capped_at_the_last_complete_window() -> None:
    params = FeaturesParams(first_cutoff="2024-01-15", last_cutoff="2030-01-01", step_months=2)
    grid = cutoff_grid(
        pd.Timestamp("2023-01-01", tz=UTC),
        pd.Timestamp("2025-01-01", tz=UTC),
        params,
        fixed_labels(),
    )
    assert [c.strftime("%Y-%m-%d") for c in grid] == [
        "2024-01-15",
        "2024-03-15",
        "2024-05-15",
        "2024-07-15",
        "2024-09-15",
    ]


def test_step_days_grid_steps_back_from_the_last_complete_window() -> None:
    first = pd.Timestamp("2023-01-01 07:15", tz=UTC)
    end = pd.Timestamp("2025-01-01", tz=UTC)
    params = FeaturesParams(min_history_days=60, step_days=14)
    grid = cutoff_grid(first, end, params, fixed_labels())
    assert grid[-1] == pd.Timestamp("2024-10-03", tz=UTC)  # + 90 days = 2025-01-01
    assert grid[0] >= pd.Timestamp("2023-03-02", tz=UTC) > grid[0] - pd.Timedelta(days=14)
    assert {b - a for a, b in zip(grid, grid[1:], strict=False)} == {pd.Timedelta(days=14)}
    plan = plan_split(grid, fixed_labels(), validation_cutoffs=1)
    # No label window of a split reaches the next split's first cutoff.
    assert plan.valid[0] + label_horizon(fixed_labels()) <= plan.test
    assert plan.train[-1] + label_horizon(fixed_labels()) <= plan.valid[0]
    assert plan.test - plan.valid[0] == pd.Timedelta(days=98)  # 7 steps of 14 >= 90 days


def test_step_days_grid_with_a_span_shorter_than_one_window_is_empty() -> None:
    grid = cutoff_grid(
        pd.Timestamp("2024-12-01", tz=UTC),
        pd.Timestamp("2025-01-01", tz=UTC),
        FeaturesParams(min_history_days=0, step_days=7),
        fixed_labels(),
    )
    assert grid == []


def test_split_of_the_default_synthetic_span() -> None:
    grid = cutoff_grid(
        pd.Timestamp("2023-01-01", tz=UTC),
        pd.Timestamp("2025-01-01", tz=UTC),
        fixed_features(),
        fixed_labels(),
    )
    plan = plan_split(grid, fixed_labels(), validation_cutoffs=2)
    assert plan.test == pd.Timestamp("2024-10-01", tz=UTC)
    assert plan.valid == (pd.Timestamp("2024-06-01", tz=UTC), pd.Timestamp("2024-07-01", tz=UTC))
    assert plan.train[-1] == pd.Timestamp("2024-03-01", tz=UTC)
    assert [c.month for c in plan.embargo] == [4, 5, 8, 9]


@settings(max_examples=60, deadline=None)
@given(
    months=st.integers(1, 40),
    step=st.integers(1, 3),
    churn=st.integers(1, 200),
    repurchase=st.integers(1, 200),
    n_valid=st.integers(1, 4),
)
def test_no_label_window_reaches_a_later_split(
    months: int, step: int, churn: int, repurchase: int, n_valid: int
) -> None:
    start = pd.Timestamp("2022-01-01", tz=UTC)
    grid = [start + pd.DateOffset(months=k * step) for k in range(months)]
    labels = churn_and_repurchase(churn, repurchase)
    try:
        plan = plan_split(grid, labels, n_valid)
    except DataError:
        return  # too few cutoffs for the horizons: refused, never a leaky split
    horizon = label_horizon(labels)
    assert len(plan.valid) == n_valid
    assert all(c + horizon <= plan.valid[0] for c in plan.train)  # train windows end before valid
    assert all(c + horizon <= plan.test for c in plan.valid)  # valid windows end before test
    assert max(plan.train) < min(plan.valid) and max(plan.valid) < plan.test
    assert sorted(plan.train + plan.valid + plan.embargo + (plan.test,)) == sorted(grid)


def test_too_short_data_is_a_clear_error() -> None:
    grid = [pd.Timestamp("2024-01-01", tz=UTC), pd.Timestamp("2024-02-01", tz=UTC)]
    with pytest.raises(DataError, match="needed for validation"):
        plan_split(grid, fixed_labels(), validation_cutoffs=1)


def test_stray_future_dated_orders_do_not_extend_the_observed_period() -> None:
    day = 86_400_000_000
    busy = np.repeat(np.arange(19_000, 19_700) * day, 50)  # 700 days, 50 orders a day
    stray = np.array([19_800, 19_950, 20_100]) * day  # three orders long after the extract
    end, n_stray = observed_end(np.concatenate([busy, stray]))
    assert end == pd.Timestamp(19_700 * day * 1000, tz=UTC)
    assert n_stray == 3
    assert observed_end(busy) == (end, 0)


@pytest.fixture(scope="module")
def built(catalog: Catalog) -> tuple[dict[str, pd.DataFrame], object]:
    tables = make_history(n_customers=40)
    params = fixed_features(partitions=3, workers=1, validation_cutoffs=1)
    return tables, build_features(
        **tables, params=params, label_params=fixed_labels(), catalog=catalog
    )


def test_panel_layout_and_summary(built: tuple[dict[str, pd.DataFrame], object]) -> None:
    _, result = built
    panel, summary = result.panel, result.summary
    keys = [
        "customer_id",
        "cutoff",
        "split",
        "split_churn",
        "split_repurchase",
        "split_value",
        "churn",
        "repurchase",
        "value",
    ]
    assert list(panel.columns[: len(keys)]) == keys
    assert panel["churn"].dtype == np.int8 and panel["repurchase"].dtype == np.int8
    assert panel["value"].dtype == np.float64
    assert not panel.duplicated(["customer_id", "cutoff"]).any()
    assert panel.equals(panel.sort_values(["cutoff", "customer_id"], ignore_index=True))
    # "none": a cutoff only the value target uses (an embargo cutoff of the shared split)
    assert {"train", "valid", "test"} <= set(panel["split"]) <= {"train", "valid", "test", "none"}
    assert {"train", "valid", "test"} <= set(panel["split_value"])
    # Each binary target on its own window: the same test cutoff, churn's split is the shared
    # one (the longest window), repurchase (30 days) validates and trains closer to the test.
    cutoffs = {
        column: {
            name: sorted(panel.loc[panel[column] == name, "cutoff"].unique())
            for name in ("train", "valid", "test")
        }
        for column in ("split", "split_churn", "split_repurchase")
    }
    assert cutoffs["split_churn"] == cutoffs["split"]
    assert cutoffs["split_repurchase"]["test"] == cutoffs["split"]["test"]
    assert cutoffs["split_repurchase"]["valid"][0] > cutoffs["split"]["valid"][0]
    assert len(cutoffs["split_repurchase"]["train"]) > len(cutoffs["split"]["train"])
    test, valid = cutoffs["split_repurchase"]["test"][0], cutoffs["split_repurchase"]["valid"][-1]
    assert valid + pd.Timedelta(days=30) <= test  # the label window ends by the test cutoff
    assert summary["target_cutoffs"]["repurchase"]["valid"] == [valid.isoformat()]
    assert summary["rows"]["panel"] == len(panel)
    assert summary["features"]["absent"] == {}
    assert list(result.scoring.columns) == [
        "customer_id",
        "cutoff",
        *summary["features"]["present"],
    ]


def test_panel_rows_equal_build_snapshot_at_each_cutoff(
    catalog: Catalog, built: tuple[dict[str, pd.DataFrame], object]
) -> None:
    tables, result = built
    params = fixed_features(partitions=1, workers=1)
    for cutoff, rows in result.panel.groupby("cutoff"):
        expected = build_snapshot(**tables, cutoff=cutoff, params=params, catalog=catalog)
        got = rows.drop(columns=list(non_feature_columns(fixed_labels()))).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected)


def _ordered_within(orders: pd.Series, cutoff: pd.Timestamp, days: int) -> int:
    return int(((orders >= cutoff) & (orders < cutoff + pd.Timedelta(days=days))).any())


def test_labels_match_a_brute_force_count(built: tuple[dict[str, pd.DataFrame], object]) -> None:
    tables, result = built
    orders = tables["orders"]
    sample = result.panel.iloc[:: max(len(result.panel) // 25, 1)]
    for row in sample.itertuples():
        mine = orders.loc[orders["customer_id"] == row.customer_id, "order_ts"]
        assert row.churn == 1 - _ordered_within(mine, row.cutoff, 90)
        assert row.repurchase == _ordered_within(mine, row.cutoff, 30)
