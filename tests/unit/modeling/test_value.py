"""The customer-value model: designs compared on validation, artefacts that score as trained,
capped labels, metrics of a spend forecast, and the value target's own cutoffs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import io
from pipeline.config import TrainParams
from pipeline.errors import DataError
from pipeline.features.cutoffs import HORIZON_LADDER, cutoff_grid, plan_value_split
from pipeline.modeling import artifacts, value_metrics
from pipeline.modeling.value import GINI_TIE, choose_design, train_value
from tests.support.demo_panel import demo_catalog, make_demo_panel, with_btyd_inputs
from tests.support.params import fixed_features, fixed_labels

UTC = "UTC"
LABELS = fixed_labels(value=180)
FAST = TrainParams(num_boost_round=200, early_stopping_rounds=20)


def _value_panel(seed: int = 0) -> pd.DataFrame:
    """The demo panel plus a spend label: churners spend nothing; the others spend more the
    more they ordered and the better their reviews, with a heavy tail and a few absurd lines."""
    panel = make_demo_panel(n_customers=1500, n_cutoffs=6, seed=seed)
    rng = np.random.default_rng(seed + 1)
    review = np.nan_to_num(panel["review_score_mean_365d"].to_numpy(), nan=3.8)
    mean = 40.0 * (1 + panel["orders_count_90d"].to_numpy()) * np.exp(0.4 * (review - 3.8))
    spend = np.where(panel["churn"] == 1, 0.0, rng.gamma(1.5, mean / 1.5))
    spend[rng.random(len(panel)) < 0.002] = 1e6  # mistyped quantities
    return with_btyd_inputs(panel.assign(value=spend, split_value=panel["split"]), seed)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return _value_panel()


@pytest.fixture(scope="module")
def result(panel: pd.DataFrame):  # noqa: ANN201 - a TrainResult
    return train_value(panel, "value", FAST, LABELS, demo_catalog())


def test_every_design_is_compared_on_validation_and_the_best_is_kept(result) -> None:  # noqa: ANN001
    metrics = result.metrics
    assert set(metrics["selection"]) == {"tweedie", "tweedie_run_rate", "tweedie_btyd", "two_part"}
    ginis = {d: s["validation"]["normalized_gini"] for d, s in metrics["selection"].items()}
    assert metrics["model_design"] == result.features["value_model"]
    assert ginis[metrics["model_design"]] >= max(ginis.values()) - GINI_TIE
    assert metrics["horizon_days"] == 180 and result.features["horizon_days"] == 180


def test_the_model_ranks_spend_better_than_last_years_spend(result) -> None:  # noqa: ANN001
    model = result.metrics["model"]
    baseline = result.metrics["baselines"]["last_year_spend"]
    assert model["normalized_gini"] > baseline["normalized_gini"] + 0.05
    assert model["decile_mape"] < baseline["decile_mape"]
    assert "btyd" in result.metrics["baselines"]
    assert result.metrics["btyd"]["bgnbd"]["converged"]


def test_without_btyd_inputs_the_btyd_design_and_baseline_are_left_out(panel) -> None:  # noqa: ANN001
    plain = panel.drop(columns=["lifetime_orders", "tenure_days", "avg_order_value"])
    result = train_value(plain, "value", FAST, LABELS, demo_catalog())
    assert "skipped" in result.metrics["selection"]["tweedie_btyd"]
    assert "btyd" not in result.metrics["baselines"]
    assert "lifetime_orders" in result.metrics["btyd"]["failure"]


def test_labels_are_capped_for_fitting_and_metrics(result, panel: pd.DataFrame) -> None:  # noqa: ANN001
    cap = result.metrics["value_cap"]
    train = panel.loc[panel["split_value"] == "train", "value"]
    assert cap["value"] == pytest.approx(np.quantile(train[train > 0], 0.99))
    assert result.test_predictions["label"].max() <= cap["value"]
    assert cap["customers_capped"]["test"] == int(
        (panel.loc[panel["split_value"] == "test", "value"] > cap["value"]).sum()
    )


@pytest.mark.parametrize("design", ["tweedie", "tweedie_run_rate", "tweedie_btyd", "two_part"])
def test_saved_artefacts_score_exactly_as_trained(
    design: str, panel: pd.DataFrame, tmp_path: Path
) -> None:
    params = FAST.model_copy(update={"value_models": (design,)})
    result = train_value(panel, "value", params, LABELS, demo_catalog())
    io.write_text(tmp_path / artifacts.MODEL_FILE, result.model_text)
    for name, text in result.extra_models.items():
        io.write_text(tmp_path / f"{name}.txt", text)
    io.write_json(tmp_path / artifacts.CALIBRATION_FILE, result.calibration)
    io.write_json(tmp_path / artifacts.FEATURES_FILE, result.features)
    predictor = artifacts.load_predictor(tmp_path)
    test = panel.loc[panel["split_value"] == "test"]
    np.testing.assert_array_equal(
        predictor.predict(test), result.test_predictions["prediction"].to_numpy()
    )
    assert (tmp_path / artifacts.BUY_MODEL_FILE).exists() == (design == "two_part")
    assert ("value_offset" in result.features) == design.startswith("tweedie_")
    assert (predictor.predict(test) >= 0).all()


def test_a_two_part_model_without_its_buy_part_is_refused(panel: pd.DataFrame) -> None:
    params = FAST.model_copy(update={"value_models": ("two_part",)})
    result = train_value(panel, "value", params, LABELS, demo_catalog())
    with pytest.raises(Exception, match="corrupted model buy_model.txt: a two-part value model"):
        artifacts.Predictor(result.model_text, result.calibration, result.features)


def test_a_tie_goes_to_the_design_listed_first() -> None:
    close = {"tweedie": {"normalized_gini": 0.700}, "two_part": {"normalized_gini": 0.701}}
    assert choose_design(close) == "tweedie"
    clear = {"tweedie": {"normalized_gini": 0.70}, "two_part": {"normalized_gini": 0.75}}
    assert choose_design(clear) == "two_part"


def test_value_metrics_of_known_forecasts() -> None:
    rng = np.random.default_rng(0)
    spend = np.where(rng.random(1000) < 0.5, 0.0, rng.gamma(1.0, 100.0, 1000))
    perfect = value_metrics.value_metrics(spend, spend)
    assert perfect["normalized_gini"] == pytest.approx(1.0)
    assert perfect["decile_mape"] == pytest.approx(0.0) and perfect["total_error_pct"] == 0.0
    assert value_metrics.normalized_gini(spend, -spend) < -0.9
    assert abs(value_metrics.normalized_gini(spend, rng.random(1000))) < 0.1
    # the top 10% of a perfect ranking hold the largest 100 spends
    top = np.sort(spend)[::-1][:100].sum() / spend.sum()
    assert perfect["top_decile_capture"] == pytest.approx(top)
    double = value_metrics.value_metrics(spend, 2 * spend)
    assert double["total_error_pct"] == pytest.approx(100.0)
    assert double["decile_mape"] == pytest.approx(100.0)
    curves = value_metrics.value_curves(spend, spend)
    assert curves["gain"]["share_of_spend"].iloc[-1] == pytest.approx(1.0)
    assert curves["deciles"]["n_rows"].sum() == 1000


def test_no_spend_at_all_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="no realised spend"):
        value_metrics.value_metrics(np.zeros(50), np.ones(50))


def _grid(first: str, end: str, **features: int) -> tuple[list[pd.Timestamp], pd.Timestamp]:
    data_end = pd.Timestamp(end, tz=UTC)
    params = fixed_features(**features)
    grid = cutoff_grid(pd.Timestamp(first, tz=UTC), data_end, params, fixed_labels())
    return grid, data_end


def test_the_value_horizon_is_the_longest_that_leaves_a_split() -> None:
    # the default two-year simulation: 365 and 270 days leave no validation cutoff
    grid, end = _grid("2023-01-01", "2025-01-01")
    days, plan = plan_value_split(grid, end, None, validation_cutoffs=1)
    assert days == 180
    assert plan.test == pd.Timestamp("2024-07-01", tz=UTC)
    assert all(c + pd.Timedelta(days=180) <= plan.valid[0] for c in plan.train)
    assert plan.test + pd.Timedelta(days=180) <= end
    # a one-year export (Online Retail II's span)
    grid, end = _grid("2009-12-01", "2010-12-10")
    assert plan_value_split(grid, end, None, validation_cutoffs=1)[0] == 90
    # a horizon set in params is kept (or refused with the usual hint)
    assert plan_value_split(grid, end, 30, validation_cutoffs=1)[0] == 30
    with pytest.raises(DataError, match="needed for validation|no training cutoff"):
        plan_value_split(grid, end, 180, validation_cutoffs=1)


def test_too_short_data_names_the_horizons_tried() -> None:
    grid, end = _grid("2024-01-01", "2024-04-15")
    with pytest.raises(DataError, match=str(list(HORIZON_LADDER)).replace("[", r"\[")):
        plan_value_split(grid, end, None, validation_cutoffs=1)
