"""The whole pipeline through DVC, as a newcomer runs it: a clean copy of the repo, `dvc repro`.

Small simulation (a few thousand customers) so the run takes about a minute; the default size is
what `make run` uses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL = {"generate": {"n_customers": 3000}}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _copy_repo(repo_root: Path, dest: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=repo_root, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        source = repo_root / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _override(params_file: Path, overrides: dict[str, dict[str, object]]) -> None:
    params = yaml.safe_load(params_file.read_text())
    for section, values in overrides.items():
        params[section].update(values)
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo_root = Path(__file__).resolve().parents[2]
    work = tmp_path_factory.mktemp("repo")
    _copy_repo(repo_root, work)
    for leftover in ("dvc.lock",):
        (work / leftover).unlink(missing_ok=True)
    _override(work / "params.yaml", SMALL)
    # A committed clone, as a newcomer has it: DVC refuses outputs that git already tracks.
    _run(["git", "init", "-q"], work)
    _run(["git", "add", "-A"], work)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "clone"], work)
    _run(["dvc", "repro"], work)
    return work


def test_repro_builds_every_output(pipeline_run: Path) -> None:
    for relative in (
        "data/clean/orders.parquet",
        "data/clean/manifest.json",
        "data/features/panel.parquet",
        "models/churn/model.txt",
        "models/repurchase/model.txt",
        "reports/metrics/churn.json",
        "data/scores/scores.parquet",
    ):
        assert (pipeline_run / relative).exists(), relative
    assert list((pipeline_run / "reports").rglob("index.html")), "no report index.html"


@pytest.mark.reliability("infrastructure: fresh clone, no DVC remote")
def test_second_repro_runs_nothing_and_status_is_clean(pipeline_run: Path) -> None:
    second = _run(["dvc", "repro"], pipeline_run)
    assert "Running stage" not in second.stdout
    status = _run(["dvc", "status", "--json"], pipeline_run)
    assert json.loads(status.stdout) == {}


def test_metrics_show_reads_both_targets(pipeline_run: Path) -> None:
    shown = _run(["dvc", "metrics", "show", "--json"], pipeline_run)
    text = shown.stdout
    assert "churn.json" in text and "repurchase.json" in text


def test_a_third_target_needs_params_alone(
    pipeline_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Targets are data: `churn_180d` through params.yaml only, then train -> explain -> score
    -> report run for it (DVC's foreach over train.targets; the score stage scores models/)."""
    work = tmp_path_factory.mktemp("third") / "repo"
    shutil.copytree(pipeline_run, work, symlinks=True)
    params_file = work / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["labels"]["targets"]["churn_180d"] = {"rule": "no_order_within", "horizon_days": 180}
    params["train"]["targets"].append("churn_180d")
    params["train"]["quality_gate"]["min_auc_margin_over_recency"] = -1.0  # plumbing, not quality
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["dvc", "repro"], work)
    features = json.loads((work / "models" / "churn_180d" / "features.json").read_text())
    assert (features["target"], features["rule"], features["horizon_days"]) == (
        "churn_180d",
        "no_order_within",
        180,
    )
    assert (work / "reports" / "explain" / "churn_180d" / "shap.parquet").exists()
    scores = pd.read_parquet(work / "data" / "scores" / "scores.parquet")
    assert {
        "churn_probability",
        "repurchase_probability",
        "churn_180d_probability",
        "churn_180d_model",
    } <= set(scores.columns)
    assert scores["churn_180d_probability"].between(0, 1).all()
    page = (work / "reports" / "site" / "churn_180d.html").read_text()
    assert "Churn 180d (no order in the next 180 days)" in page
