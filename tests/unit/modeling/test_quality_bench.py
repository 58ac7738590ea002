"""The helpers of benchmarks/bench_quality.py: params overrides and the paired variant effect."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.bench_quality import paired_effect, with_overrides


def test_overrides_are_parsed_as_yaml_and_leave_the_base_alone() -> None:
    base = {"features": {"step_months": 1}, "train": {"tuning": {"enabled": False}}}
    out = with_overrides(
        base,
        ["features.step_days=14", "train.tuning.enabled=true", "features.last_cutoff=2024-10-01"],
    )
    assert out["features"] == {
        "step_months": 1,
        "step_days": 14,
        "last_cutoff": dt.date(2024, 10, 1),
    }
    assert out["train"]["tuning"]["enabled"] is True
    assert base["train"]["tuning"]["enabled"] is False


def _write(folder: Path, frame: pd.DataFrame) -> None:
    (folder / "models" / "churn").mkdir(parents=True)
    frame.to_parquet(folder / "models" / "churn" / "test_predictions.parquet")


def test_paired_effect_compares_the_shared_test_customers(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "cutoff": pd.Timestamp("2024-10-01", tz="UTC"),
            "label": y,
            "days_since_last_order": rng.integers(0, 90, n).astype("float64"),
        }
    )
    noise = rng.normal(size=n)
    _write(tmp_path / "base", frame.assign(probability=1 / (1 + np.exp(-(y + 2 * noise)))))
    better = frame.assign(probability=1 / (1 + np.exp(-(2 * y + noise))))
    _write(tmp_path / "variant", better.iloc[50:])
    effect = paired_effect(tmp_path / "base", tmp_path / "variant", "churn", 30, 200, 0)
    assert effect["shared_rows"] == n - 50
    low, high = effect["all"]["roc_auc_ci95"]
    assert 0 < low <= effect["all"]["roc_auc"] <= high
    assert effect["early_warning"]["rows"] == int(
        (better.iloc[50:]["days_since_last_order"] <= 30).sum()
    )


def test_paired_effect_without_shared_rows_says_to_pin_the_cutoff(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "cutoff": pd.Timestamp("2024-10-01", tz="UTC"),
            "label": [0, 1],
            "probability": [0.2, 0.8],
            "days_since_last_order": [3.0, 40.0],
        }
    )
    _write(tmp_path / "base", frame)
    _write(tmp_path / "variant", frame.assign(cutoff=pd.Timestamp("2024-10-03", tz="UTC")))
    effect = paired_effect(tmp_path / "base", tmp_path / "variant", "churn", 30, 100, 0)
    assert "pin last_cutoff" in effect["skipped"]
    with pytest.raises(KeyError):
        effect["all"]
