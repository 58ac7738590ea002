import numpy as np
import pandas as pd
import pytest

from pipeline.config import QualityGate, TrainParams, TuningParams
from pipeline.errors import DataError, QualityGateError
from pipeline.modeling.train import (
    check_quality_gate,
    feature_columns,
    lgbm_params,
    sample_weights,
)
from pipeline.targets import get_target
from tests.support.demo_panel import CHANNELS, tiny_catalog, train_demo
from tests.support.params import fixed_labels


def names_only(names: list[str]) -> list[dict]:
    return [{"name": n} for n in names]


def test_same_inputs_give_the_same_model_bytes_and_metrics(small_panel, churn_result):
    again = train_demo(small_panel, "churn", TrainParams())
    assert again.model_text == churn_result.model_text
    assert again.metrics == churn_result.metrics
    assert again.calibration == churn_result.calibration


def test_metrics_cover_model_and_baselines_on_the_test_rows_only(small_panel, churn_result):
    m = churn_result.metrics
    n_test = int((small_panel["split"] == "test").sum())
    assert m["rows"]["test"] == n_test == m["model"]["n_rows"]
    for name in ("recency", "rfm_logistic", "rfm_lgbm"):
        assert m["baselines"][name]["n_rows"] == n_test
    assert {
        "roc_auc",
        "pr_auc",
        "brier",
        "log_loss",
        "ece",
        "lift_top_decile",
        "capture_top_decile",
        "base_rate",
    } <= set(m["model"])
    assert m["test_cutoff"] == "2024-05-01T00:00:00+00:00"
    assert len(churn_result.test_predictions) == n_test
    assert list(churn_result.test_predictions.columns) == [
        "customer_id",
        "cutoff",
        "label",
        "raw_margin",
        "probability",
        "days_since_last_order",
        "score_recency",
        "score_rfm_logistic",
        "score_rfm_lgbm",
    ]


def test_test_labels_never_touch_the_model_or_the_calibration(small_panel, churn_result):
    flipped = small_panel.copy()
    test = flipped["split"] == "test"
    flipped.loc[test, "churn"] = (1 - flipped.loc[test, "churn"]).astype("int8")
    other = train_demo(flipped, "churn", TrainParams())
    assert other.model_text == churn_result.model_text
    assert other.calibration == churn_result.calibration
    assert other.metrics["model"]["roc_auc"] != churn_result.metrics["model"]["roc_auc"]


def test_features_json_records_the_contract(churn_result):
    meta = churn_result.features
    assert [f["name"] for f in meta["features"]] == feature_columns(
        pd.DataFrame(
            columns=[
                "customer_id",
                "cutoff",
                "split",
                "churn",
                "repurchase",
                *[f["name"] for f in meta["features"]],
            ]
        ),
        fixed_labels(),
    )
    channel = next(f for f in meta["features"] if f["name"] == "channel_main")
    assert channel == {
        "name": "channel_main",
        "dtype": "category",
        "levels": ["app", "store", "web"],
    }
    assert meta["cutoffs"]["test"] == ["2024-05-01T00:00:00+00:00"]
    assert len(meta["cutoffs"]["train"]) == 3 and meta["horizon_days"] == 90
    assert meta["lightgbm_version"].startswith("4.")


def test_lgbm_params_are_deterministic_and_balanced_weighting_is_explicit():
    y = np.array([0, 0, 0, 1])
    plain = lgbm_params(TrainParams(), y)
    assert plain["deterministic"] and plain["num_threads"] == 1 and plain["seed"] == 42
    assert "scale_pos_weight" not in plain
    assert lgbm_params(TrainParams(class_weight="balanced"), y)["scale_pos_weight"] == 3.0


def test_platt_calibration_and_tuning_trials(small_panel):
    params = TrainParams(calibration="platt", tuning=TuningParams(enabled=True, n_trials=3))
    result = train_demo(small_panel, "repurchase", params)
    assert result.calibration["method"] == "platt"
    assert len(result.trials) == 3
    assert {"params", "best_iteration", "valid_logloss", "valid_auc"} <= set(result.trials[0])
    best = min(result.trials, key=lambda t: t["valid_logloss"])["params"]
    assert all(result.lgbm_params[k] == v for k, v in best.items())
    again = train_demo(small_panel, "repurchase", params)  # seeded: the same trials and model
    assert again.trials == result.trials and again.model_text == result.model_text


def test_customer_weights_count_each_customer_once_in_total():
    part = pd.DataFrame({"customer_id": ["a", "a", "a", "a", "b", "c"]})
    weights = sample_weights(part, "customer")
    assert weights is not None and weights.sum() == pytest.approx(len(part))
    by_customer = pd.Series(weights).groupby(part["customer_id"]).sum()
    assert by_customer.nunique() == 1  # a (4 rows), b and c weigh the same
    assert sample_weights(part, "none") is None


def test_customer_weights_reach_the_booster_but_not_the_test_rows(small_panel):
    train = small_panel["split"] == "train"
    first = small_panel["cutoff"] == small_panel.loc[train, "cutoff"].min()
    half = small_panel["customer_id"].isin(small_panel["customer_id"].unique()[::2])
    panel = small_panel.loc[~(first & half)]  # unequal rows per customer
    plain = train_demo(panel, "churn", TrainParams())
    weighted = train_demo(panel, "churn", TrainParams(sample_weight="customer"))
    assert weighted.model_text != plain.model_text
    assert weighted.metrics["rows"] == plain.metrics["rows"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.iloc[0:0], "no training rows"),
        (lambda p: p[p["split"] != "train"], "no training rows"),
        (lambda p: p[p["split"] != "valid"], "no valid rows"),
        (lambda p: p.drop(columns="split"), "lacks column"),
        (lambda p: p.assign(split=p["split"].replace({"valid": "train"})), "no valid rows"),
    ],
)
def test_unusable_panels_are_data_errors(small_panel, change, message):
    with pytest.raises(DataError, match=message):
        train_demo(change(small_panel), "churn", TrainParams())


def test_splits_that_overlap_in_time_are_refused(small_panel):
    shuffled = small_panel.copy()
    first = shuffled["cutoff"] == shuffled["cutoff"].min()
    shuffled.loc[first, "split"] = "valid"  # a validation cutoff before the training ones
    with pytest.raises(DataError, match="overlap in time"):
        train_demo(shuffled, "churn", TrainParams())


def test_quality_gate_flags_leakage_and_losing_to_recency(churn_result):
    check_quality_gate(churn_result.metrics, TrainParams())
    with pytest.raises(QualityGateError, match="leakage"):
        check_quality_gate(churn_result.metrics, TrainParams(quality_gate=QualityGate(max_auc=0.5)))
    with pytest.raises(QualityGateError, match="below the recency rule"):
        check_quality_gate(
            churn_result.metrics,
            TrainParams(quality_gate=QualityGate(min_auc_margin_over_recency=0.5)),
        )


def test_a_leaked_label_trips_the_gate(small_panel):
    leaky = small_panel.assign(leak=small_panel["churn"].astype("float64"))
    result = train_demo(leaky, "churn", TrainParams(num_boost_round=40))  # never stops early
    with pytest.raises(QualityGateError, match="suspiciously good"):
        check_quality_gate(result.metrics, TrainParams())


def test_monotone_constraints_follow_the_dictionary_direction(small_panel):
    from pipeline.modeling.train import monotone_constraints

    catalog = tiny_catalog(
        {"name": "days_since_last_order"},
        {"name": "complaints_unresolved_365d", "direction": "higher_is_riskier"},
        {
            "name": "review_score_mean_{window}d",
            "direction": "lower_is_riskier",
            "per_window": True,
            "reason": "score {value}",
        },
        {
            "name": "channel_main",
            "direction": "higher_is_riskier",
            "dtype": "category",
            "levels": list(CHANNELS),
        },  # categorical: never bound
    )
    churn, repurchase = (get_target(fixed_labels(), name) for name in ("churn", "repurchase"))
    names = [
        "days_since_last_order",
        "complaints_unresolved_365d",
        "review_score_mean_365d",
        "channel_main",
    ]
    assert monotone_constraints(small_panel, names, churn, catalog) == [0, 1, -1, 0]
    assert monotone_constraints(small_panel, names, repurchase, catalog) == [0, -1, 1, 0]
    assert monotone_constraints(small_panel, names, churn, tiny_catalog(*names_only(names))) is None
    result = train_demo(small_panel, "churn", TrainParams(), catalog=catalog)
    assert result.features["monotone_constraints"] == [0, 0, 0, -1, 1, 0]


def test_a_target_trains_on_its_own_split_column_else_on_the_shared_one(small_panel, churn_result):
    train_cutoffs = sorted(small_panel.loc[small_panel["split"] == "train", "cutoff"].unique())
    own = small_panel["split"].where(small_panel["cutoff"] != train_cutoffs[-1], "valid")
    result = train_demo(small_panel.assign(split_churn=own), "churn", TrainParams())
    assert len(result.features["cutoffs"]["valid"]) == 2
    assert len(result.features["cutoffs"]["train"]) == len(train_cutoffs) - 1
    # Without split_churn (an older panel) the shared split is used.
    assert churn_result.features["cutoffs"]["train"] == [c.isoformat() for c in train_cutoffs]
