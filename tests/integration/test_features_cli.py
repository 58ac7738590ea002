"""`loyalty features` through the real CLI on real `generate` + `clean` outputs.

A small simulation (1,500 customers) is generated and cleaned once per module; the tests then
run the features command on it (and on copies without the optional tables). The slow test
checks, without a model, that the synthetic churn labels move with satisfaction and unresolved
complaints the way the simulation says they should.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.cli import main
from tests.support.faults import assert_disk_full_keeps_old_set, snapshot

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DICTIONARY = REPO / "configs" / "features.yaml"
# The simulated extract ends 2024-12-31; clean quarantines later (future-dated) rows.
CLEAN_AS_OF = "2025-01-01T00:00:00Z"


def _clean_export(tmp: Path, n_customers: int) -> Path:
    params = tmp / "params.yaml"
    params.write_text(
        yaml.safe_dump({"generate": {"n_customers": n_customers}, "clean": {"as_of": CLEAN_AS_OF}})
    )
    assert main(["generate", "--params", str(params), "--out", str(tmp / "raw")]) == 0
    clean = tmp / "clean"
    assert (
        main(["clean", "--params", str(params), "--input", str(tmp / "raw"), "--out", str(clean)])
        == 0
    )
    return clean


def _features(clean: Path, out: Path, *extra: str, params: Path | None = None) -> int:
    args = [
        "features",
        "--clean",
        str(clean),
        "--out",
        str(out),
        "--dictionary",
        str(DICTIONARY),
        *extra,
    ]
    if params is not None:
        args += ["--params", str(params)]
    else:
        args += ["--params", str(out.parent / "missing-params.yaml")]  # defaults
    return main(args)


@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _clean_export(tmp_path_factory.mktemp("synthetic"), 1500)


@pytest.fixture(scope="module")
def features_dir(clean_dir: Path) -> Path:
    out = clean_dir.parent / "features"
    assert _features(clean_dir, out) == 0
    return out


def test_writes_panel_scoring_and_summary(features_dir: Path) -> None:
    panel = pd.read_parquet(features_dir / "panel.parquet")
    scoring = pd.read_parquet(features_dir / "scoring.parquet")
    summary = json.loads((features_dir / "summary.json").read_text())
    keys = [
        "customer_id",
        "cutoff",
        "split",
        "split_churn",
        "split_repurchase",
        "split_value",
        "churn",
        "repurchase",
        "value",
    ]
    assert list(panel.columns[: len(keys)]) == keys
    assert str(panel["cutoff"].dtype) == "datetime64[us, UTC]"
    assert list(scoring.columns) == ["customer_id", "cutoff", *summary["features"]["present"]]
    assert list(panel.columns[len(keys) :]) == summary["features"]["present"]
    # the value target: horizon chosen from the two-year span, its own split, labels inside it
    assert summary["labels"]["value"]["horizon_days"] == 180
    assert summary["value_cutoffs"]["value"]["test"] == "2024-07-01T00:00:00+00:00"
    used = panel["split_value"] != "none"
    assert panel.loc[used, "value"].notna().all() and (panel.loc[used, "value"] >= 0).all()
    assert summary["features"]["absent"] == {}
    assert summary["rows"]["panel"] == len(panel) and summary["rows"]["scoring"] == len(scoring)
    assert summary["data"]["data_end"] == "2025-01-01T00:00:00+00:00"
    assert scoring["cutoff"].iloc[0] == pd.Timestamp("2025-01-01", tz="UTC")
    assert panel["region"].dtype == "category"


def test_no_training_label_window_reaches_validation_or_test(features_dir: Path) -> None:
    panel = pd.read_parquet(features_dir / "panel.parquet", columns=["cutoff", "split"])
    horizon = pd.Timedelta(days=90)
    cutoffs = {
        s: sorted(panel.loc[panel["split"] == s, "cutoff"].unique())
        for s in ("train", "valid", "test")
    }
    assert len(cutoffs["test"]) == 1
    assert max(cutoffs["train"]) + horizon <= min(cutoffs["valid"])
    assert max(cutoffs["valid"]) + horizon <= cutoffs["test"][0]


def test_same_inputs_give_byte_identical_files(clean_dir: Path, features_dir: Path) -> None:
    again = clean_dir.parent / "features-again"
    assert _features(clean_dir, again) == 0
    for name in ("panel.parquet", "scoring.parquet", "summary.json"):
        assert (again / name).read_bytes() == (features_dir / name).read_bytes(), name


def test_partitions_and_workers_do_not_change_the_bytes(
    clean_dir: Path, features_dir: Path
) -> None:
    params = clean_dir.parent / "one-worker.yaml"
    params.write_text(yaml.safe_dump({"features": {"partitions": 1, "workers": 1}}))
    single = clean_dir.parent / "features-single"
    assert _features(clean_dir, single, params=params) == 0
    for name in ("panel.parquet", "scoring.parquet"):
        assert (single / name).read_bytes() == (features_dir / name).read_bytes(), name


def test_source_without_feedback_and_customers_lists_absent_features(
    clean_dir: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "clean"
    shutil.copytree(clean_dir, bare)
    (bare / "feedback.parquet").unlink()
    (bare / "customers.parquet").unlink()
    out = tmp_path / "features"
    assert _features(bare, out) == 0
    summary = json.loads((out / "summary.json").read_text())
    absent = summary["features"]["absent"]
    assert absent["review_score_mean"] == "the source has no feedback table"
    assert absent["region"] == "the source has no customers table"
    panel = pd.read_parquet(out / "panel.parquet")
    assert not set(absent) & set(panel.columns)


def test_explicit_as_of_sets_the_scoring_date(clean_dir: Path, tmp_path: Path) -> None:
    assert _features(clean_dir, tmp_path / "f", "--as-of", "2024-07-01") == 0
    scoring = pd.read_parquet(tmp_path / "f" / "scoring.parquet")
    assert (scoring["cutoff"] == pd.Timestamp("2024-07-01", tz="UTC")).all()


@pytest.mark.reliability("features: missing input table")
def test_missing_orders_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "clean").mkdir()
    assert _features(tmp_path / "clean", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'clean' / 'orders.parquet'}: file not found"]
    assert not (tmp_path / "out" / "panel.parquet").exists()


@pytest.mark.reliability("infrastructure: disk full while a stage writes its folder (features)")
def test_disk_full_leaves_the_previous_complete_set(
    clean_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "features"
    assert _features(clean_dir, out, "--as-of", "2024-07-01") == 0

    def rerun() -> tuple[int, str]:
        capsys.readouterr()
        return _features(clean_dir, out, "--as-of", "2024-10-01"), capsys.readouterr().err

    # panel and scoring written, then the disk fills
    disk = assert_disk_full_keeps_old_set(
        monkeypatch,
        rerun,
        [out],
        at="summary.json",
        written_first="scoring.parquet",
        named=out / "summary.json",
    )
    disk.clear()
    before = snapshot(out)
    assert rerun()[0] == 0
    assert snapshot(out) != before


@pytest.mark.reliability("security: --out inside an input folder")
def test_output_inside_the_clean_folder_is_refused(
    clean_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.name for p in clean_dir.iterdir())
    assert _features(clean_dir, clean_dir / "features") == 2
    assert "inside input folder" in capsys.readouterr().err
    assert sorted(p.name for p in clean_dir.iterdir()) == before


def test_bad_as_of_is_refused(clean_dir: Path, tmp_path: Path) -> None:
    assert _features(clean_dir, tmp_path / "f", "--as-of", "someday") != 0
    assert not (tmp_path / "f").exists()


@pytest.mark.slow
def test_synthetic_churn_follows_satisfaction_and_unresolved_complaints(tmp_path: Path) -> None:
    """Model-free check on 6,000 simulated customers (DESIGN.md 1; docs/simulation.md).

    Churn rate falls from each review-score bin to the next. Complaints come from orders, so
    complainers are active customers; comparing customers who complained in the last 90 days,
    the churn rate rises with how many of those complaints are still unresolved.
    """
    clean = _clean_export(tmp_path, 6000)
    assert _features(clean, tmp_path / "features") == 0
    panel = pd.read_parquet(tmp_path / "features" / "panel.parquet")
    bins = pd.cut(panel["review_score_mean"], [1, 2, 3, 4, 5.01], right=False)
    by_review = panel.groupby(bins, observed=True)["churn"].mean()
    assert len(by_review) == 4 and by_review.is_monotonic_decreasing, by_review
    recent = panel[panel["complaints_count_90d"] > 0]
    by_open = recent.groupby(recent["complaints_unresolved_90d"].clip(upper=1))["churn"].mean()
    assert by_open.is_monotonic_increasing and by_open.iloc[-1] > by_open.iloc[0] + 0.05, by_open
