import json
import logging

import numpy as np
import pytest

from pipeline import io
from pipeline.errors import InputError, ModelError
from pipeline.modeling.artifacts import BASE_VALUE, Predictor, load_predictor, snapshot_contract


@pytest.fixture(scope="module")
def model_dir(churn_result, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    io.write_text(folder / "model.txt", churn_result.model_text)
    io.write_json(folder / "calibration.json", churn_result.calibration)
    io.write_json(folder / "features.json", churn_result.features)
    return folder


@pytest.fixture(scope="module")
def test_rows(small_panel):
    return small_panel[small_panel["split"] == "test"].head(200).reset_index(drop=True)


def test_loaded_predictor_reproduces_the_training_predictions(model_dir, churn_result, small_panel):
    test = small_panel[small_panel["split"] == "test"]
    prob = load_predictor(model_dir).predict_proba(test)
    np.testing.assert_array_equal(prob, churn_result.test_predictions["probability"].to_numpy())


@pytest.mark.reliability("scoring input with columns reordered, missing, extra")
def test_reordered_and_extra_columns_give_identical_scores(model_dir, test_rows, caplog):
    predictor = load_predictor(model_dir)
    expected = predictor.predict_proba(test_rows)
    shuffled = test_rows[list(reversed(test_rows.columns))].assign(unrelated=1.0)
    with caplog.at_level(logging.WARNING):
        got = predictor.predict_proba(shuffled)
    np.testing.assert_array_equal(got, expected)
    assert "unrelated" in caplog.text


@pytest.mark.reliability("scoring input with columns reordered, missing, extra")
def test_missing_feature_is_named(model_dir, test_rows):
    with pytest.raises(InputError, match="review_score_mean_365d"):
        load_predictor(model_dir).predict_proba(test_rows.drop(columns="review_score_mean_365d"))


@pytest.mark.reliability("nullable ints / arrow dtypes at scoring")
def test_nullable_and_arrow_dtypes_are_cast_at_the_boundary(model_dir, test_rows):
    predictor = load_predictor(model_dir)
    expected = predictor.predict_proba(test_rows)
    cast = test_rows.assign(
        orders_count_90d=test_rows["orders_count_90d"].astype("Int64"),
        review_score_mean_365d=test_rows["review_score_mean_365d"].astype("Float64"),
        days_since_last_order=test_rows["days_since_last_order"].astype("double[pyarrow]"),
        channel_main=test_rows["channel_main"].astype("string"),
    )
    np.testing.assert_array_equal(predictor.predict_proba(cast), expected)


@pytest.mark.reliability("category unseen in training")
def test_unseen_category_level_is_missing_and_counted(model_dir, test_rows, caplog):
    predictor = load_predictor(model_dir)
    odd = test_rows.assign(channel_main=test_rows["channel_main"].astype("string"))
    odd.loc[:4, "channel_main"] = "kiosk"
    assert predictor.unseen_levels(odd) == {"channel_main": 5}
    as_missing = odd.assign(channel_main=odd["channel_main"].where(odd["channel_main"] != "kiosk"))
    with caplog.at_level(logging.WARNING):
        got = predictor.predict_proba(odd)
    np.testing.assert_array_equal(got, predictor.predict_proba(as_missing))
    assert "5 value(s) with a level unseen" in caplog.text


def test_contributions_add_up_to_the_raw_margin(model_dir, test_rows):
    predictor = load_predictor(model_dir)
    contrib = predictor.contributions(test_rows)
    assert list(contrib.columns) == [*predictor.feature_names, BASE_VALUE]
    np.testing.assert_allclose(contrib.sum(axis=1), predictor.raw_margin(test_rows), atol=1e-9)


@pytest.mark.reliability("a `.pkl` / `.joblib` file offered as a model")
@pytest.mark.parametrize("name", ["model.pkl", "model.joblib"])
def test_pickle_files_are_refused(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x80\x04")
    with pytest.raises(ModelError, match="pickle"):
        load_predictor(tmp_path / name)
    with pytest.raises(ModelError, match="pickle"):
        load_predictor(tmp_path)


@pytest.mark.reliability("model file from another LightGBM major version, or corrupted")
def test_corrupted_model_file_is_one_model_error(model_dir, tmp_path):
    for name in ("calibration.json", "features.json"):
        (tmp_path / name).write_bytes((model_dir / name).read_bytes())
    (tmp_path / "model.txt").write_text((model_dir / "model.txt").read_text()[:5000])
    with pytest.raises(ModelError, match="corrupted model"):
        load_predictor(tmp_path)
    (tmp_path / "model.txt").write_bytes(b"\xff\xfe binary junk")
    with pytest.raises(ModelError, match="corrupted model"):
        load_predictor(tmp_path)


@pytest.mark.reliability("model file from another LightGBM major version, or corrupted")
def test_other_lightgbm_major_version_names_both_versions(churn_result):
    features = json.loads(json.dumps(churn_result.features))
    features["lightgbm_version"] = "3.3.5"
    with pytest.raises(ModelError, match=r"LightGBM 3\.3\.5, installed 4\."):
        Predictor(churn_result.model_text, churn_result.calibration, features)


def test_missing_artefact_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_predictor(tmp_path)


def test_the_population_ships_with_the_model():
    summary = {"windows_days": [30, 90], "population": {"active_within_days": 365, "rule": "..."}}
    assert snapshot_contract(summary) == {
        "windows_days": [30, 90],
        "population": {"active_within_days": 365},
    }
    assert snapshot_contract({"population": {"active_within_days": "any"}})["population"] == {
        "active_within_days": "any"
    }
    # An older features run states no population: the model ships none (the scorer then needs
    # features.active_within_days set).
    assert snapshot_contract({"windows_days": [30]}) == {"windows_days": [30]}
    assert snapshot_contract(None) == {"windows_days": []}
