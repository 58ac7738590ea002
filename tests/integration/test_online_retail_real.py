"""The whole pipeline on the real UCI Online Retail II export, through DVC and the real CLI.

A temporary copy of the repository runs ``dvc exp run -S data.source=online_retail
-S data.input=<absolute path>`` (every stage, as the README shows): DVC 3 accepts a
dependency outside the repository given by an absolute path (dvc.lock records its md5), so
the 7 MB export is neither copied nor symlinked.
(Named ``..._real`` because tests/unit/sources/test_online_retail.py already takes the module
name ``test_online_retail`` and the test folders have no ``__init__.py``.)
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

REPO = Path(__file__).resolve().parents[2]
ONLINE_RETAIL_II = (
    REPO.parent / "shared" / "data" / "online_retail_ii" / "online_retail_ii_2009_2010.csv.gz"
)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def repo_with_clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not ONLINE_RETAIL_II.exists():
        pytest.skip(f"real export not available at {ONLINE_RETAIL_II}")
    work = tmp_path_factory.mktemp("repo")
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        # data/*/.gitkeep tracked by git makes DVC refuse the stage outputs ("already tracked
        # by SCM") once the copy is committed, which `dvc exp run` needs: leave them out.
        if name.startswith(("data/", "models/", "reports/")):
            continue
        if (REPO / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, work / name)
    (work / "dvc.lock").unlink(missing_ok=True)
    git = ["git", "-c", "user.email=test@example.com", "-c", "user.name=test"]
    _run(["git", "init", "-q"], work)
    _run([*git, "add", "-A"], work)
    _run([*git, "commit", "-q", "-m", "copy"], work)
    _run(
        [
            "dvc",
            "exp",
            "run",
            "-S",
            "data.source=online_retail",
            "-S",
            f"data.input={ONLINE_RETAIL_II}",
            "-S",
            "clean.as_of=2011-12-31T00:00:00Z",
        ],
        work,
    )
    return work


def test_manifest_reconciles_with_plausible_counts(repo_with_clean: Path) -> None:
    clean = repo_with_clean / "data" / "clean"
    manifest = json.loads((clean / "manifest.json").read_text())
    (entry,) = manifest["inputs"]
    assert entry["rows_read"] == 525_461  # the README's line count, header excluded
    assert entry["rows_read"] == entry["accepted"] + entry["rejected"]
    missing = manifest["rejected_by_reason"]["missing_customer_id"]
    assert 0.15 < missing / entry["rows_read"] < 0.25  # "empty on about a fifth of the lines"
    assert manifest["rejected_by_reason"]["duplicate_row"] > 0
    assert manifest["transactions"]["non_product_by_code"]["POST"] > 0
    orders = pd.read_parquet(clean / "orders.parquet")
    returns = pd.read_parquet(clean / "returns.parquet")
    assert 4_000 < orders["customer_id"].nunique() <= 4_383
    assert 15_000 < len(orders) < 28_816
    assert not orders["order_id"].str.startswith("C").any()
    assert returns["return_id"].str.startswith("C").all()
    assert orders["order_ts"].min() >= pd.Timestamp("2009-12-01", tz="UTC")
    assert orders["order_ts"].max() < pd.Timestamp("2010-12-10", tz="UTC")
    assert not orders["customer_id"].str.contains(r"\.|\s").any()


def test_dvc_records_the_outside_dependency_and_reruns_nothing(repo_with_clean: Path) -> None:
    lock = yaml.safe_load((repo_with_clean / "dvc.lock").read_text())
    deps = {dep["path"] for dep in lock["stages"]["clean"]["deps"]}
    assert any(
        path.endswith("online_retail_ii_2009_2010.csv.gz") and path.startswith("/") for path in deps
    )
    second = _run(["dvc", "repro"], repo_with_clean)
    assert "Running stage" not in second.stdout


def test_every_stage_ran_on_the_real_export(repo_with_clean: Path) -> None:
    summary = json.loads((repo_with_clean / "data/features/summary.json").read_text())
    # No feedback, customer or delivery data in this export: those features are absent.
    absent = set(summary["features"]["absent"])
    assert {"complaints_count_90d", "loyalty_member", "channels_used"} <= absent
    assert "days_since_last_order" in summary["features"]["present"]
    for target in ("churn", "repurchase"):
        metrics = json.loads((repo_with_clean / f"reports/metrics/{target}.json").read_text())
        assert metrics, target
        assert (repo_with_clean / f"models/{target}/model.txt").exists()
    scores = pd.read_parquet(repo_with_clean / "data/scores/scores.parquet")
    assert 3_000 < len(scores) <= 4_383
    assert scores["churn_probability"].between(0, 1).all()
    assert (repo_with_clean / "reports/site/index.html").exists()
