import dataclasses
import logging
import socket

import numpy as np
import pytest

from pipeline import tracking
from pipeline.config import MlflowParams, TrainParams
from pipeline.errors import TrackingError
from tests.support.demo_panel import make_demo_panel, save_demo_model, train_demo


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def logged_result(tmp_path_factory):
    panel = make_demo_panel(n_customers=600, n_cutoffs=4, seed=5)
    result = train_demo(panel, "churn", TrainParams())
    return result, save_demo_model(result, tmp_path_factory.mktemp("churn"))


@pytest.mark.slow
def test_registry_aliases_move_only_when_the_champion_is_beaten(
    tmp_path, monkeypatch, logged_result
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for variable in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):  # the main pipeline, not an exp
        monkeypatch.delenv(variable, raising=False)
    result, folder = logged_result
    settings = MlflowParams(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")

    def log(res):
        return tracking.log_training(
            result=res,
            params={"target": "churn"},
            mlflow_params=settings,
            model_dir=folder,
            plots_dir=None,
        )

    trials = [{"params": {"num_leaves": 15}, "best_iteration": 9, "valid_logloss": 0.5}]
    lock = {"stages": {"features": {"outs": [{"path": "data/features", "md5": "abc.dir"}]}}}
    first = tracking.log_training(
        result=dataclasses.replace(result, trials=trials),
        params={"target": "churn", "train": {"seed": 42}},
        mlflow_params=settings,
        model_dir=folder,
        plots_dir=None,
        dvc_lock=lock,
    )
    assert first["version"] == "1" and first["aliases"] == ["challenger", "champion"]
    from mlflow.tracking import MlflowClient  # the test inspects what tracking.py wrote

    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(first["run_id"])
    assert run.data.tags["data.data/features.md5"] == "abc.dir"
    assert run.info.run_name == "train-churn"
    assert run.data.tags["target"] == "churn" and run.data.tags["stage"] == "train"
    assert run.data.tags["git.commit"] == "unknown" and run.data.tags["git.dirty"] == "unknown"
    assert "dvc.experiment" not in run.data.tags  # tmp_path is no git repository, no DVC exp
    assert run.data.tags["promotion.decision"] == "first"
    assert run.data.params["train.seed"] == "42"
    assert run.data.metrics["model.roc_auc"] == result.metrics["model"]["roc_auc"]
    assert "baselines.recency.roc_auc" in run.data.metrics
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert [c.data.params["num_leaves"] for c in children] == ["15"]
    same = log(result)  # equal AUC on the same cutoff does not beat the champion
    assert same["version"] == "2" and same["aliases"] == ["challenger"]
    auc = result.metrics["model"]["roc_auc"]
    # better, but not by more than mlflow.promotion_margin (0.002): noise, the champion stays
    within = log(_with_auc(result, auc + settings.promotion_margin / 2))
    assert within["aliases"] == ["challenger"] and within["promotion"] == "kept"
    kept = client.get_model_version("loyalty-churn", within["version"]).tags
    assert kept["promotion.decision"] == "kept" and kept["promotion.champion_version"] == "1"
    assert float(kept["promotion.gain"]) == pytest.approx(settings.promotion_margin / 2)
    better = log(_with_auc(result, 0.999))
    assert better["version"] == "4" and better["aliases"] == ["challenger", "champion"]
    promoted = client.get_model_version("loyalty-churn", "4").tags
    assert promoted["promoted_by"] == "pipeline" and promoted["promoted_over"] == "1"
    assert promoted["promotion.reason"].startswith("new champion: roc_auc 0.9990 vs ")
    assert promoted["promoted_reason"] == promoted["promotion.reason"]
    # A champion from another test cutoff is re-scored on the new test rows before comparing:
    # the same model scores the same AUC, which does not beat it.
    other_cutoff = {**result.metrics, "test_cutoff": "2099-01-01T00:00:00+00:00"}
    moved = log(dataclasses.replace(result, metrics=other_cutoff))
    assert moved["aliases"] == ["challenger"]

    champion = tracking.load_registered("models:/loyalty-churn@champion", settings)
    prob = champion.predict(result.test_frame)["probability"].to_numpy()
    np.testing.assert_array_equal(prob, result.test_predictions["probability"].to_numpy())
    predictor, name, version = tracking.load_registered_predictor(
        "models:/loyalty-churn@champion", tmp_path / "dl", settings
    )
    assert (name, version) == ("loyalty-churn", "4")
    np.testing.assert_array_equal(predictor.predict_proba(result.test_frame), prob)
    resolved = tracking.resolve_model(
        "models:/loyalty-churn@champion", settings.tracking_uri, tmp_path / "resolved"
    )
    assert resolved.label == "loyalty-churn v4 (champion)"
    assert resolved.run_id == better["run_id"]
    files = sorted(p.name for p in resolved.folder.iterdir())
    assert files == ["calibration.json", "features.json", "model.txt"]
    pinned = tracking.resolve_model("models:/loyalty-churn/1", settings.tracking_uri, tmp_path)
    assert (pinned.label, pinned.alias) == ("loyalty-churn v1", None)
    assert pinned.run_id == first["run_id"]


def _with_auc(result, auc):
    """``result`` as if its model had scored ``auc`` on the test cutoff."""
    return dataclasses.replace(
        result, metrics={**result.metrics, "model": {**result.metrics["model"], "roc_auc": auc}}
    )


@pytest.mark.reliability("alias `champion` missing")
def test_missing_alias_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    empty = MlflowParams(tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(TrackingError, match="^no version of loyalty-churn has alias champion$"):
        tracking.load_registered("models:/loyalty-churn@champion", empty)
    with pytest.raises(TrackingError, match="^no version of loyalty-churn has alias champion$"):
        tracking.load_registered_predictor("models:/loyalty-churn@champion", tmp_path, empty)
    with pytest.raises(TrackingError, match="^no version of loyalty-churn has alias champion$"):
        tracking.resolve_model("models:/loyalty-churn@champion", empty.tracking_uri, tmp_path)


@pytest.mark.reliability("MLflow tracking server unreachable")
def test_unreachable_server_only_warns_when_tracking_is_optional(
    logged_result, caplog, monkeypatch
):
    result, folder = logged_result
    uri = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with caplog.at_level(logging.WARNING):
        out = tracking.log_training(
            result=result,
            params={},
            model_dir=folder,
            plots_dir=None,
            mlflow_params=MlflowParams(required=False),
        )
    assert out is None
    assert f"tracking server unreachable: {uri}" in caplog.text
    with pytest.raises(TrackingError, match="unreachable"):
        tracking.log_training(
            result=result,
            params={},
            model_dir=folder,
            plots_dir=None,
            mlflow_params=MlflowParams(required=True),
        )


def test_model_requirements_name_the_package_pinned_to_its_installed_version(monkeypatch):
    import importlib.metadata

    from pipeline.tracking import pyfunc

    pins = dict(line.split("==") for line in pyfunc.requirements())
    assert pins["loyalty-pipeline"] == importlib.metadata.version("loyalty-pipeline")
    libraries = {"mlflow", "lightgbm", "pandas", "numpy", "scikit-learn"}
    assert set(pins) == {"loyalty-pipeline", *libraries}
    installed = importlib.metadata.version

    def source_tree(name):  # run from a checkout on PYTHONPATH, never installed
        if name == "loyalty-pipeline":
            raise importlib.metadata.PackageNotFoundError(name)
        return installed(name)

    monkeypatch.setattr(importlib.metadata, "version", source_tree)
    assert pyfunc.requirements()[0] == "loyalty-pipeline"
