"""The report is attached to the latest training run of each target in MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import MlflowParams
from pipeline.errors import TrackingError


@pytest.mark.slow
def test_report_lands_in_the_training_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from pipeline.tracking import log_report

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    params = MlflowParams(tracking_uri=uri, experiment="report-test")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("report-test")
    with mlflow.start_run(run_name="train-churn", tags={"target": "churn"}) as run:
        pass
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html></html>")
    run_ids = log_report(site, ["churn", "repurchase"], params)
    assert run_ids is not None and run_ids[0] == run.info.run_id
    client = MlflowClient(uri)
    for run_id in run_ids:
        assert [a.path for a in client.list_artifacts(run_id, "report")] == ["report/index.html"]
    # no repurchase training run: a run of its own, named <stage>-<target>
    assert client.get_run(run_ids[1]).info.run_name == "report-repurchase"


def test_unreachable_server_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.tracking import log_report

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = MlflowParams(tracking_uri="http://127.0.0.1:9", required=True)
    with pytest.raises(TrackingError, match="unreachable"):
        log_report(tmp_path, ["churn"], params)
    assert log_report(tmp_path, ["churn"], params.model_copy(update={"required": False})) is None
