"""The real `loyalty train` command on a small synthetic panel, in a temporary folder."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from pathlib import Path

import pytest
import yaml

from pipeline import io
from pipeline.cli import main
from pipeline.features.catalog import load_catalog
from tests.support.demo_panel import make_demo_panel
from tests.support.faults import assert_disk_full_keeps_old_set, snapshot
from tests.support.params import fixed_labels
from tests.support.sqlite_lock import locked

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

#: What `loyalty train` writes in a binary model's folder.
MODEL_FILES = [
    "calibration.json",
    "features.json",
    "metrics.json",
    "model.txt",
    "test_predictions.parquet",
]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    io.write_parquet(
        tmp_path / "features" / "panel.parquet",
        make_demo_panel(n_customers=600, n_cutoffs=4, seed=7),
    )
    return tmp_path


def _train(target: str = "churn", out: str = "models/churn", *extra: str) -> int:
    return main(
        [
            "train",
            "--params",
            "params.yaml",
            "--target",
            target,
            "--features",
            "features",
            "--out",
            out,
            "--metrics",
            f"reports/metrics/{target}.json",
            "--plots",
            f"reports/plots/{target}",
            "--dictionary",
            str(REPO / "configs" / "features.yaml"),
            *extra,
        ]
    )


@pytest.mark.reliability("infrastructure: disk full while a stage writes its folder (train)")
def test_disk_full_leaves_the_previous_model_metrics_and_curves(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = [
        workdir / "models/churn",
        workdir / "reports/plots/churn",
        workdir / "reports/metrics/churn.json",
    ]
    assert _train() == 0
    (workdir / "params.yaml").write_text("train:\n  calibration: platt\n")  # another model

    def rerun() -> tuple[int, str]:
        capsys.readouterr()
        return _train(), capsys.readouterr().err

    # the model, its metrics and curves are the old set together: written whole, then swapped
    disk = assert_disk_full_keeps_old_set(
        monkeypatch,
        rerun,
        outputs,
        at="test_predictions.parquet",
        written_first="model.txt",
        named=outputs[0] / "test_predictions.parquet",
    )
    disk.clear()
    before = snapshot(outputs[0])
    assert rerun()[0] == 0  # a rerun succeeds, with a new model
    assert snapshot(outputs[0]) != before


@pytest.mark.reliability("security: --out inside an input folder")
def test_outputs_inside_the_feature_folder_are_refused(workdir: Path, capsys) -> None:
    assert _train("churn", "features/model") == 2
    assert "inside input folder" in capsys.readouterr().err
    assert sorted(p.name for p in (workdir / "features").iterdir()) == ["panel.parquet"]


def test_train_writes_every_artefact_and_is_reproducible(workdir: Path):
    assert _train() == 0
    model = workdir / "models" / "churn"
    assert sorted(p.name for p in model.iterdir()) == MODEL_FILES
    assert sorted(p.name for p in (workdir / "reports/plots/churn").iterdir()) == [
        "calibration.csv",
        "lift.csv",
        "pr.csv",
        "roc.csv",
    ]
    metrics = json.loads((workdir / "reports/metrics/churn.json").read_text())
    assert metrics["model"]["roc_auc"] > metrics["baselines"]["recency"]["roc_auc"]
    assert _train("churn", "models/again") == 0
    assert (workdir / "models/again/model.txt").read_bytes() == (model / "model.txt").read_bytes()
    assert json.loads((workdir / "models/again/metrics.json").read_text()) == metrics


@pytest.mark.reliability("MLflow tracking server unreachable")
def test_evaluate_scores_the_trained_model_against_every_baseline(workdir: Path, capsys):
    assert _train() == 0
    predictions = io.read_parquet(workdir / "models/churn/test_predictions.parquet")
    assert {"days_since_last_order", "score_recency", "score_rfm_logistic"} <= set(
        predictions.columns
    )
    params = io.read_yaml(REPO / "params.yaml")
    params["train"]["targets"] = ["churn"]
    params["train"]["value_target"] = None
    params["evaluate"]["bootstrap"] = 100
    (workdir / "eval.yaml").write_text(yaml.safe_dump(params))
    capsys.readouterr()
    argv = ["evaluate", "--params", "eval.yaml", "--models", "models", "--out", "q.json"]
    assert main([*argv, "--markdown", "q.md", "--summary", "summary.json"]) == 0
    trained = json.loads((workdir / "models/churn/metrics.json").read_text())["model"]
    # the headline the summary keeps for `dvc exp show`: one figure per trained target
    assert json.loads((workdir / "summary.json").read_text()) == {
        "churn_roc_auc": trained["roc_auc"]
    }
    board = json.loads((workdir / "q.json").read_text())["churn"]["populations"]
    assert {"all", "early_warning"} <= set(board)
    assert "rfm_lgbm" in board["all"]["model_minus"]
    assert "| rfm_lgbm |" in capsys.readouterr().out
    assert (workdir / "q.md").read_text().startswith("**churn, all**")
    params["train"]["targets"] = ["churn", "repurchase"]
    (workdir / "eval.yaml").write_text(yaml.safe_dump(params))
    assert main(argv) == 4  # a data error
    assert "train the repurchase model first" in capsys.readouterr().err


def test_unreachable_server_fails_fast_after_writing_local_outputs(workdir, monkeypatch, capsys):
    uri = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert _train() == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: tracking server unreachable: {uri}"
    assert "Traceback" not in "\n".join(err)
    assert (workdir / "models/churn/model.txt").exists()
    assert (workdir / "reports/metrics/churn.json").exists()


@pytest.mark.reliability("MLflow tracking server unreachable")
def test_unreachable_server_only_warns_when_not_required(workdir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_closed_port()}")
    (workdir / "params.yaml").write_text("mlflow:\n  required: false\n")
    assert _train() == 0


@pytest.mark.reliability("infrastructure: SQLite store locked by another writer")
@pytest.mark.parametrize("required", [True, False], ids=["required", "optional"])
def test_locked_store_waits_its_timeout_then_says_locked(workdir, capsys, caplog, required):
    db = workdir / "mlflow.db"
    (workdir / "params.yaml").write_text(
        f"mlflow:\n  lock_timeout_s: 1\n  required: {str(required).lower()}\n"
    )
    with locked(db):
        started = time.perf_counter()
        code = _train()
        elapsed = time.perf_counter() - started
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert elapsed < 60  # a sanity bound: the wait is 1 s, not MLflow's 20 s and retries
    model = workdir / "models" / "churn"
    assert sorted(p.name for p in model.iterdir()) == MODEL_FILES
    assert (workdir / "reports/metrics/churn.json").exists()
    message = f"tracking store sqlite:///{db} is locked by another writer (waited 1 s; "
    if required:
        assert code == 7
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert errors == [err.strip().splitlines()[-1]]
        assert errors[0].startswith(f"error: {message}")
    else:
        assert code == 0
        assert message in caplog.text and "continuing without tracking" in caplog.text
    # nothing was logged: no run, no version, no alias half-moved
    with sqlite3.connect(db) as con:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master")}
        if "runs" in tables:
            assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
            assert con.execute("SELECT count(*) FROM registered_model_aliases").fetchone()[0] == 0
    con.close()


def test_quality_gate_failure_is_one_line_and_saves_no_model(workdir, capsys):
    panel = io.read_parquet(workdir / "features/panel.parquet")
    io.write_parquet(
        workdir / "features/panel.parquet", panel.assign(leak=panel["churn"].astype("float64"))
    )
    # A perfect feature never stops early: cap the rounds to keep the test fast.
    (workdir / "params.yaml").write_text("train:\n  num_boost_round: 40\n")
    assert _train() == 6
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: churn: test AUC") and "leakage" in err[-1]
    assert not (workdir / "models/churn/model.txt").exists()
    assert (workdir / "reports/metrics/churn.json").exists()  # kept to show why


@pytest.mark.reliability("0-byte file; header only")
def test_header_only_panel_says_no_training_rows(workdir, capsys):
    panel = io.read_parquet(workdir / "features/panel.parquet")
    io.write_parquet(workdir / "features/panel.parquet", panel.iloc[0:0])
    assert _train() == 4
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: no training rows: the feature panel is empty"
    )


def test_missing_panel_is_one_line(workdir, capsys):
    assert _train("churn", "models/churn", "--features", "nowhere") in (2, 4)
    assert "nowhere/panel.parquet: file not found" in capsys.readouterr().err


# --- model behaviour on the real simulation (generate -> clean -> features) -------------------


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory):
    import yaml

    from pipeline.config import TrainParams
    from pipeline.modeling.train import train_target

    tmp = tmp_path_factory.mktemp("simulated")
    params = tmp / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {"generate": {"n_customers": 4000}, "clean": {"as_of": "2025-01-01T00:00:00Z"}}
        )
    )
    dictionary = REPO / "configs" / "features.yaml"
    for command in (
        ["generate", "--out", str(tmp / "raw")],
        ["clean", "--input", str(tmp / "raw"), "--out", str(tmp / "clean")],
        [
            "features",
            "--clean",
            str(tmp / "clean"),
            "--dictionary",
            str(dictionary),
            "--out",
            str(tmp / "features"),
        ],
    ):
        assert main([command[0], "--params", str(params), *command[1:]]) == 0
    panel = io.read_parquet(tmp / "features" / "panel.parquet")
    result = train_target(panel, "churn", TrainParams(), fixed_labels(), load_catalog(dictionary))
    test = panel[panel["split"] == "test"].reset_index(drop=True)
    return result, result.predictor(), test


@pytest.mark.slow
def test_simulated_churn_auc_is_clearly_above_the_recency_rule(simulated):
    result, _, _ = simulated
    m = result.metrics
    assert m["model"]["roc_auc"] > m["baselines"]["recency"]["roc_auc"] + 0.01


@pytest.mark.slow
@pytest.mark.parametrize(
    "change",
    [
        {"complaints_unresolved": lambda s: s + 1, "complaints_unresolved_90d": lambda s: s + 1},
        {
            c: (lambda s: (s - 1).clip(lower=1))
            for c in ("review_score_mean", "review_score_last", "review_score_min")
        },
    ],
    ids=["more_unresolved_complaints", "lower_review_scores"],
)
def test_simulated_more_complaints_or_lower_reviews_never_lower_churn(simulated, change):
    _, predictor, test = simulated
    changed = test.assign(**{c: f(test[c]) for c, f in change.items()})
    before, after = predictor.predict_proba(test), predictor.predict_proba(changed)
    assert (after >= before).all()
    assert (after > before).mean() > 0.2


@pytest.mark.slow
def test_simulated_shuffled_columns_give_identical_predictions(simulated):
    _, predictor, test = simulated
    shuffled = test[list(reversed(test.columns))]
    assert (predictor.predict_proba(shuffled) == predictor.predict_proba(test)).all()
