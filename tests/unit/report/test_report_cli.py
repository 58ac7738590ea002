"""The report command's failures are one line and a non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.cli import main


def _args(tmp_path: Path) -> list[str]:
    return [
        "report",
        "--params",
        str(tmp_path / "none.yaml"),
        "--models",
        str(tmp_path / "m"),
        "--explain",
        str(tmp_path / "e"),
        "--scores",
        str(tmp_path / "s" / "scores.parquet"),
        "--features",
        str(tmp_path / "f"),
        "--metrics",
        str(tmp_path / "r"),
        "--out",
        str(tmp_path / "site"),
        "--no-track",
    ]


def test_missing_panel_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args(tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "panel.parquet: file not found" in err
    assert "Traceback" not in err and not (tmp_path / "site").exists()


def test_no_explain_output_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").mkdir()
    pd.DataFrame(
        {"customer_id": ["a"], "cutoff": [pd.Timestamp("2024-01-01", tz="UTC")], "split": ["test"]}
    ).to_parquet(tmp_path / "f" / "panel.parquet")
    assert main(_args(tmp_path)) == 2
    assert "no explain output for any target" in capsys.readouterr().err
