"""`dvc exp run` never moves `champion`; `loyalty promote` does, and says who did and why."""

from __future__ import annotations

import dataclasses
import logging
import socket
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline import tracking
from pipeline.cli import main
from pipeline.config import MlflowParams, TrainParams
from tests.support.demo_panel import make_demo_panel, save_demo_model, train_demo
from tests.support.sqlite_lock import locked

pytestmark = pytest.mark.integration

NAME = "loyalty-churn"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    panel = make_demo_panel(n_customers=600, n_cutoffs=4, seed=5)
    result = train_demo(panel, "churn", TrainParams())
    return result, save_demo_model(result, tmp_path_factory.mktemp("churn"))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty SQLite store in a folder that is the CLI's working directory, no DVC variables."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for variable in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV", "DVC_STAGE"):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "params.yaml").write_text("mlflow:\n  lock_timeout_s: 1\n")
    return uri


def _log(trained, auc: float | None = None, settings: MlflowParams | None = None) -> dict:
    result, folder = trained
    if auc is not None:
        model = {**result.metrics["model"], "roc_auc": auc}
        result = dataclasses.replace(result, metrics={**result.metrics, "model": model})
    logged = tracking.log_training(
        result=result,
        params={"target": "churn"},
        mlflow_params=settings or MlflowParams(),
        model_dir=folder,
        plots_dir=None,
    )
    assert logged is not None
    return logged


def _champion(uri: str) -> str:
    return str(MlflowClient(uri).get_model_version_by_alias(NAME, "champion").version)


def test_an_experiment_registers_a_challenger_that_only_loyalty_promote_makes_champion(
    trained, store: str, monkeypatch: pytest.MonkeyPatch, capsys, caplog
) -> None:
    assert _log(trained)["aliases"] == ["challenger", "champion"]
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1a2b3")  # what `dvc exp run` sets for each stage
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "0123456789abcdef")
    monkeypatch.setenv("DVC_STAGE", "train@churn")
    with caplog.at_level(logging.INFO, logger="pipeline.tracking.registry"):
        exp = _log(trained, auc=0.999)  # far better, and still not promoted
    assert exp["aliases"] == ["challenger"] and exp["promotion"] == "experiment"
    assert _champion(store) == "1"
    [line] = [r.getMessage() for r in caplog.records if r.name == "pipeline.tracking.registry"]
    assert line.startswith(
        f"{NAME} v2: DVC experiment exp-1a2b3: registered as challenger, champion not touched "
        "(roc_auc 0.9990 vs "
    )
    client = MlflowClient(store)
    run = client.get_run(exp["run_id"])
    assert run.info.run_name == "train-churn"
    assert run.data.tags["dvc.experiment"] == "exp-1a2b3"
    assert run.data.tags["dvc.baseline_rev"] == "0123456789abcdef"
    assert run.data.tags["dvc.stage"] == "train@churn"
    assert run.data.tags["promotion.decision"] == "experiment"
    version = client.get_model_version(NAME, "2").tags
    assert version["dvc.experiment"] == "exp-1a2b3"
    assert version["promotion.decision"] == "experiment"

    reason = "exp-1a2b3: +0.01 AUC, checked by hand"
    assert main(["promote", "--target", "churn", "--reason", reason]) == 0
    assert capsys.readouterr().out == f"{NAME} v2 is champion (was v1)\n"
    assert _champion(store) == "2"
    tags = client.get_model_version(NAME, "2").tags
    assert tags["promoted_by"] == "manual" and tags["promoted_reason"] == reason
    assert tags["promoted_over"] == "1" and tags["promoted_at"] and tags["promoted_by_user"]
    assert tags["promotion.decision"] == "experiment"  # what was decided at registration stays

    assert main(["promote", "--target", "churn", "--alias", "challenger"]) == 0
    assert capsys.readouterr().out == f"{NAME} v2 already is champion; nothing changed\n"
    assert main(["promote", "--target", "churn", "--version", "1"]) == 0  # back, by number
    assert capsys.readouterr().out == f"{NAME} v1 is champion (was v2)\n"
    back = client.get_model_version(NAME, "1").tags
    assert back["promoted_reason"] == "no reason given" and back["promoted_over"] == "2"
    assert back["promoted_by"] == "manual"  # the pipeline first, then by hand: the last says


def test_the_main_pipeline_without_auto_promotion_leaves_champion_alone(
    trained, store: str
) -> None:
    assert _log(trained)["aliases"] == ["challenger", "champion"]
    logged = _log(trained, auc=0.999, settings=MlflowParams(auto_promote=False))
    assert logged["aliases"] == ["challenger"] and logged["promotion"] == "manual_only"
    assert _champion(store) == "1"


def _error_lines(err: str) -> list[str]:
    """The error lines of stderr, checked to be its last line and free of any traceback."""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors and errors[-1] == err.splitlines()[-1], err
    return errors


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.reliability("cli: promote a model, version or alias that does not exist")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], f"no registered model {NAME}: train its target first"),
        (["--version", "9"], f"{NAME} has no version 9"),
        (["--alias", "best"], f"no version of {NAME} has alias best"),
    ],
)
def test_a_missing_model_version_or_alias_is_one_line_and_exit_7(
    trained, store: str, args: list[str], message: str, capsys
) -> None:
    if args:
        _log(trained)
    assert main(["promote", "--target", "churn", *args]) == 7
    assert _error_lines(capsys.readouterr().err) == [f"error: {message}"]


@pytest.mark.reliability("cli: usage errors")
def test_promote_usage_errors_are_one_line(store: str, capsys) -> None:
    assert main(["promote", "--target", "churn", "--version", "1", "--alias", "x"]) == 2
    err = capsys.readouterr().err
    assert "give --version or --alias, not both" in err and "Traceback" not in err
    assert main(["promote", "--target", "churn", "--version", "0"]) == 2
    assert "Invalid value for '--version'" in capsys.readouterr().err
    assert main(["promote", "--target", "../x"]) == 3
    [line] = _error_lines(capsys.readouterr().err)
    assert line.startswith("error: --target '../x': not a valid name")


@pytest.mark.reliability("MLflow tracking server unreachable")
def test_an_unreachable_server_is_one_line(
    store: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["promote", "--target", "churn"]) == 7
    assert _error_lines(capsys.readouterr().err) == [f"error: tracking server unreachable: {uri}"]


@pytest.mark.reliability("infrastructure: SQLite store locked by another writer")
def test_a_locked_store_is_one_line_that_says_locked_and_moves_nothing(
    trained, store: str, capsys
) -> None:
    _log(trained)
    _log(trained)  # v2 is the challenger, v1 the champion
    db = Path(store.removeprefix("sqlite:///"))
    with locked(db):
        assert main(["promote", "--target", "churn"]) == 7
    [line] = _error_lines(capsys.readouterr().err)
    assert line.startswith(f"error: tracking store {store} is locked by another writer (waited 1 s")
    assert _champion(store) == "1"
