"""BTYD features of a model: fitted per cutoff on its rows, the test cutoff's fit shipped and
derived per customer at scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import io
from pipeline.config import TrainParams
from pipeline.modeling import artifacts, btyd_features
from tests.support.demo_panel import make_demo_panel, train_demo, with_btyd_inputs

FAST = TrainParams(num_boost_round=200, early_stopping_rounds=20, btyd_features=("churn",))


def _panel(seed: int = 0) -> pd.DataFrame:
    """The demo panel with the snapshot columns BTYD reads."""
    return with_btyd_inputs(make_demo_panel(n_customers=1500, n_cutoffs=6, seed=seed), seed)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return _panel()


@pytest.fixture(scope="module")
def result(panel: pd.DataFrame):  # noqa: ANN201 - a TrainResult
    return train_demo(panel, "churn", FAST)


def test_the_model_gets_the_features_and_ships_their_parameters(result) -> None:  # noqa: ANN001
    names = [f["name"] for f in result.features["features"]]
    assert names[-2:] == list(btyd_features.NAMES)
    derived = result.features["derived"]
    assert derived["horizon_days"] == 90 and derived["bgnbd"]["converged"]
    assert set(btyd_features.NAMES) <= set(result.features["reference"]["features"])


def test_only_the_listed_targets_get_them(panel: pd.DataFrame) -> None:
    other = train_demo(panel, "repurchase", FAST)
    assert "derived" not in other.features
    assert not set(btyd_features.NAMES) & {f["name"] for f in other.features["features"]}


def test_each_cutoff_is_fitted_on_its_own_rows_without_labels(result, panel) -> None:  # noqa: ANN001
    cutoffs = sorted(panel["cutoff"].unique())
    assert len(result.features["derived_fits"]) == len(cutoffs)
    flipped = panel.assign(churn=1 - panel["churn"], repurchase=1 - panel["repurchase"])
    assert train_demo(flipped, "churn", FAST).features["derived"] == result.features["derived"]
    # changing the first cutoff's histories changes that cutoff's fit, not the shipped one
    first = panel["cutoff"] == cutoffs[0]
    changed = panel.copy()
    changed.loc[first, "lifetime_orders"] = changed.loc[first, "lifetime_orders"] * 3
    again = train_demo(changed, "churn", FAST)
    assert again.features["derived"] == result.features["derived"]
    day = pd.Timestamp(cutoffs[0]).date().isoformat()
    assert again.features["derived_fits"][day] != result.features["derived_fits"][day]


def test_a_customers_features_depend_on_that_customer_only(result, panel: pd.DataFrame) -> None:  # noqa: ANN001
    derived = btyd_features.BtydFeatures.from_dict(result.features["derived"])
    test = panel[panel["split"] == "test"].reset_index(drop=True)
    everyone = derived.add(test)
    some = derived.add(test.iloc[::7].reset_index(drop=True))
    pd.testing.assert_frame_equal(some, everyone.iloc[::7].reset_index(drop=True))
    assert everyone[btyd_features.P_ALIVE].between(0, 1).all()
    assert (everyone[btyd_features.EXPECTED_ORDERS] >= 0).all()


def test_saved_model_derives_them_and_scores_as_trained(result, panel, tmp_path: Path) -> None:  # noqa: ANN001
    io.write_text(tmp_path / artifacts.MODEL_FILE, result.model_text)
    io.write_json(tmp_path / artifacts.CALIBRATION_FILE, result.calibration)
    io.write_json(tmp_path / artifacts.FEATURES_FILE, result.features)
    predictor = artifacts.load_predictor(tmp_path)
    test = panel[panel["split"] == "test"]  # a snapshot: no derived columns
    assert not set(btyd_features.NAMES) & set(test.columns)
    np.testing.assert_array_equal(
        predictor.predict_proba(test), result.test_predictions["probability"].to_numpy()
    )
    contributions = predictor.contributions(test)
    assert set(btyd_features.NAMES) <= set(contributions.columns)


def test_without_the_inputs_the_model_trains_without_them() -> None:
    plain = train_demo(make_demo_panel(n_customers=800, n_cutoffs=4), "churn", FAST)
    assert "derived" not in plain.features


def test_a_failed_fit_is_recorded_as_strict_json() -> None:
    import json

    from pipeline.modeling import btyd
    from pipeline.modeling.baselines import fit_record

    failed = btyd.fit_bgnbd(np.zeros(5), np.zeros(5), np.full(5, 30.0))  # five one-off buyers
    assert not failed.converged and "\n" not in failed.message
    record = fit_record(failed)
    assert json.loads(json.dumps(record, allow_nan=False))["message"] == failed.message
