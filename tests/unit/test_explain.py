"""SHAP table: exactness (equal to shap.TreeExplainer), additivity, sampling, concept groups."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import shap
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.business import ReasonCuts, Reference
from pipeline.cli import main
from pipeline.errors import DataError, ModelError
from pipeline.explain import (
    BASE,
    additivity_error,
    check_additivity,
    concept_importance,
    explain_frame,
    feature_importance,
    sample_rows,
    shap_table,
)

FEATURES = [
    "days_since_last_order",
    "complaints_unresolved_365d",
    "review_score_last",
    "region_code",
]
CONCEPTS = {
    "days_since_last_order": "recency",
    "complaints_unresolved_365d": "service",
    "review_score_last": "satisfaction",
    "region_code": "relationship",
}


class BoosterModel:
    """The two methods explain needs, straight from a LightGBM booster."""

    def __init__(self, booster: lgb.Booster) -> None:
        self.booster = booster

    def raw_margin(self, frame: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(frame, raw_score=True)

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(frame, pred_contrib=True)


@pytest.fixture(scope="module")
def snapshot() -> pd.DataFrame:
    # 400 customers: churn rises with recency and unresolved complaints, falls with the last
    # review score; region_code is noise (the model should give it little weight).
    rng = np.random.default_rng(7)
    n = 400
    frame = pd.DataFrame(
        {
            "customer_id": pd.array([f"c{i:04d}" for i in range(n)], dtype="string"),
            "cutoff": pd.Timestamp("2024-06-01", tz="UTC"),
            "days_since_last_order": rng.integers(1, 300, n).astype(float),
            "complaints_unresolved_365d": rng.poisson(0.5, n).astype(float),
            "review_score_last": rng.integers(1, 6, n).astype(float),
            "region_code": rng.integers(0, 4, n).astype(float),
        }
    )
    frame.loc[::10, "review_score_last"] = np.nan  # no review yet: missing, not zero
    logit = (
        0.015 * (frame["days_since_last_order"] - 120)
        + 0.8 * frame["complaints_unresolved_365d"]
        - 0.5 * (frame["review_score_last"].fillna(3) - 3)
    )
    frame["churn"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int8")
    return frame


@pytest.fixture(scope="module")
def booster(snapshot: pd.DataFrame) -> lgb.Booster:
    data = lgb.Dataset(snapshot[FEATURES], snapshot["churn"])
    params = {
        "objective": "binary",
        "num_leaves": 7,
        "min_data_in_leaf": 10,
        "verbose": -1,
        "deterministic": True,
        "seed": 1,
        "num_threads": 1,
    }
    return lgb.train(params, data, num_boost_round=30)


def test_pred_contrib_equals_shap_tree_explainer(
    booster: lgb.Booster, snapshot: pd.DataFrame
) -> None:
    x = snapshot[FEATURES].iloc[:50]
    ours = booster.predict(x, pred_contrib=True)
    explainer = shap.TreeExplainer(booster)
    theirs = explainer.shap_values(x)
    np.testing.assert_allclose(ours[:, :-1], theirs, atol=1e-6)
    np.testing.assert_allclose(ours[:, -1], explainer.expected_value, atol=1e-6)


def test_explain_frame_builds_an_additive_table(
    booster: lgb.Booster, snapshot: pd.DataFrame
) -> None:
    table, summary = explain_frame(BoosterModel(booster), snapshot, FEATURES, max_rows=1000)
    assert list(table.columns) == ["customer_id", "cutoff", *FEATURES, BASE]
    assert len(table) == len(snapshot)
    assert summary["additivity_max_abs_error"] <= 1e-6
    margin = booster.predict(snapshot[FEATURES], raw_score=True)
    assert additivity_error(table, margin) <= 1e-6


@pytest.mark.reliability("features and models: SHAP on a large batch (rows capped)")
def test_explain_caps_rows_deterministically(booster: lgb.Booster, snapshot: pd.DataFrame) -> None:
    first, summary = explain_frame(BoosterModel(booster), snapshot, FEATURES, max_rows=100)
    shuffled = snapshot.sample(frac=1.0, random_state=3)
    second, _ = explain_frame(BoosterModel(booster), shuffled, FEATURES, max_rows=100)
    assert summary == {**summary, "rows_in": 400, "rows_explained": 100}
    assert set(first["customer_id"]) == set(second["customer_id"])


@pytest.mark.reliability("features and models: SHAP on a large batch (additivity asserted)")
def test_broken_additivity_is_a_model_error(booster: lgb.Booster, snapshot: pd.DataFrame) -> None:
    table, _ = explain_frame(BoosterModel(booster), snapshot, FEATURES, max_rows=20)
    margin = booster.predict(
        snapshot.loc[snapshot["customer_id"].isin(table["customer_id"]), FEATURES], raw_score=True
    )
    with pytest.raises(ModelError, match="additivity"):
        check_additivity(table, margin + 1e-3)


def test_missing_feature_column_is_a_data_error(
    booster: lgb.Booster, snapshot: pd.DataFrame
) -> None:
    with pytest.raises(DataError, match="review_score_last"):
        explain_frame(
            BoosterModel(booster), snapshot.drop(columns="review_score_last"), FEATURES, 10
        )


def test_wrong_contribution_shape_is_a_model_error() -> None:
    keys = pd.DataFrame({"customer_id": ["a"], "cutoff": [pd.Timestamp("2024-01-01", tz="UTC")]})
    with pytest.raises(ModelError, match="shape"):
        shap_table(keys, np.zeros((1, 2)), ["x", "y"])


def test_noise_feature_ranks_last(booster: lgb.Booster, snapshot: pd.DataFrame) -> None:
    table, _ = explain_frame(BoosterModel(booster), snapshot, FEATURES, max_rows=1000)
    by_feature = feature_importance(table, CONCEPTS)
    assert by_feature["feature"].iloc[-1] == "region_code"
    by_concept = concept_importance(table, CONCEPTS)
    assert by_concept["concept"].iloc[0] in {"recency", "service"}
    assert by_concept.set_index("concept").loc["relationship", "rank"] == 4


def test_concepts_sum_before_absolute_value() -> None:
    # One customer whose two recency features cancel out: recency explains nothing for them.
    table = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "cutoff": pd.Timestamp("2024-01-01", tz="UTC"),
            "r1": [0.5, 0.2],
            "r2": [-0.5, 0.2],
            "s": [0.1, -0.1],
            BASE: [-1.0, -1.0],
        }
    )
    out = concept_importance(table, {"r1": "recency", "r2": "recency", "s": "satisfaction"})
    recency = out.set_index("concept").loc["recency"]
    assert recency["mean_abs_shap"] == pytest.approx(0.2)
    assert recency["n_features"] == 2


@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=80))
@settings(max_examples=40, deadline=None)
def test_sample_rows_is_a_subset_of_the_right_size(max_rows: int, n: int) -> None:
    frame = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(n)], "cutoff": pd.Timestamp("2024-01-01", tz="UTC")}
    )
    out = sample_rows(frame, max_rows)
    assert len(out) == min(n, max_rows)
    assert out.index.is_monotonic_increasing and out.index.isin(frame.index).all()


def _model_folder(folder: Path, booster: lgb.Booster, reference: pd.DataFrame) -> Path:
    """The model folder contract (model.txt, features.json, calibration.json), written by hand.

    The reference population is ``reference`` (train's test cutoff), with its reason cuts.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.txt").write_text(booster.model_to_string())
    margin = booster.predict(reference[FEATURES], raw_score=True)
    probability = 1.0 / (1.0 + np.exp(-margin))  # the Platt map below, a = 1 and b = 0
    cuts = ReasonCuts.fit(probability, margin, reference["customer_id"], 1.0)
    shipped = Reference.fit(reference[FEATURES], probability, "test cutoff", cuts)
    spec = {
        "features": [{"name": n, "dtype": "float64"} for n in FEATURES],
        "lightgbm_version": lgb.__version__,
        "reference": shipped.to_dict(),
    }
    (folder / "features.json").write_text(json.dumps(spec))
    (folder / "calibration.json").write_text(json.dumps({"method": "platt", "a": 1.0, "b": 0.0}))
    return folder


DICTIONARY_YAML = """
version: 1
concepts: {recency: Recency, service: Customer service}
rfm_segments: [{name: All, r: [1, 5], f: [1, 5]}]
features:
  - {name: days_since_last_order, concept: recency, unit: days, description: Days since last order,
     requires: [orders.order_ts], reason: "No order for {value:.0f} days"}
  - {name: complaints_unresolved_365d, concept: service, description: Unresolved complaints,
     unit: count, requires: [feedback.kind], reason: "{value:.0f} unresolved complaints"}
  - {name: review_score_last, concept: satisfaction, description: Last review score,
     unit: score, requires: [feedback.score], reason: "Last review {value:.0f} of 5",
     reason_missing: "No review yet"}
  - {name: region_code, concept: relationship, description: Region, unit: code,
     requires: [customers.region], reason: "Region {value}"}
"""


def test_explain_cli_writes_the_tables(
    tmp_path: Path, booster: lgb.Booster, snapshot: pd.DataFrame
) -> None:
    panel = snapshot.assign(split=np.where(np.arange(len(snapshot)) < 300, "train", "test"))
    model = _model_folder(tmp_path / "models" / "churn", booster, panel.iloc[300:])
    features = tmp_path / "features"
    features.mkdir()
    panel.to_parquet(features / "panel.parquet")
    (tmp_path / "features.yaml").write_text(DICTIONARY_YAML)
    out = tmp_path / "explain" / "churn"
    code = main(
        [
            "explain",
            "--params",
            str(tmp_path / "none.yaml"),
            "--target",
            "churn",
            "--model",
            str(model),
            "--features",
            str(features),
            "--dictionary",
            str(tmp_path / "features.yaml"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    shap_values = pd.read_parquet(out / "shap.parquet")
    assert len(shap_values) == 100 and BASE in shap_values.columns
    reasons = pd.read_parquet(out / "reasons.parquet")
    assert reasons["customer_id"].tolist() == shap_values["customer_id"].tolist()
    # the scorer's rule: the test rows are the reference, so exactly 20% of them get reasons,
    # the riskiest ones (score.reasons_top_share 0.2, round(0.2 x 100))
    assert reasons["reason_1"].notna().sum() == 20
    assert reasons["reason_1"].dropna().str.contains("days|complaints|review|Region").all()
    assert set(reasons.columns) >= {"reason_feature_1", "reason_concept_1"}
    # explain describes the model; customers are scored by `loyalty score` alone
    assert not (out / "current.parquet").exists()
    summary = json.loads((out / "concepts.json").read_text())
    assert summary["summary"]["additivity_max_abs_error"] <= 1e-6
    assert summary["labels"]["service"] == "Customer service"


@pytest.mark.reliability("security: a .pkl / .joblib file offered as a model")
def test_explain_cli_refuses_a_pickle_model(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04")
    (tmp_path / "features").mkdir()
    code = main(
        [
            "explain",
            "--target",
            "churn",
            "--model",
            str(tmp_path / "model.pkl"),
            "--features",
            str(tmp_path / "features"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 5
