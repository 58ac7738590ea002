"""Which instant makes a row `future_date`: params, else the export's own extract time, else now."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.clean import resolve_as_of
from pipeline.errors import InputError
from pipeline.sources.csv_mapping import load_source_config, read_extract_as_of

NOW = pd.Timestamp("2026-11-25 21:00", tz="UTC")
STATED = pd.Timestamp("2024-12-31 23:59:59", tz="UTC")


def test_params_win_over_the_export() -> None:
    assert resolve_as_of("2024-06-01", STATED, NOW) == pd.Timestamp("2024-06-01", tz="UTC")


def test_the_export_statement_wins_over_now() -> None:
    # A simulated export is dated in its own past: "now" would let its 2025 rows through.
    assert resolve_as_of(None, STATED, NOW) == STATED


def test_without_either_it_is_the_next_utc_midnight() -> None:
    assert resolve_as_of(None, None, NOW) == pd.Timestamp("2026-11-26", tz="UTC")


def test_synthetic_config_reads_the_generate_manifest(repo_root: Path, tmp_path: Path) -> None:
    config = load_source_config(repo_root / "configs/sources/synthetic.yaml")
    stated = {"extract_end": "2024-12-31 23:59:59"}
    (tmp_path / "generate_manifest.json").write_text(json.dumps(stated))
    assert read_extract_as_of(config, [tmp_path]) == STATED
    assert read_extract_as_of(config, [tmp_path / "transactions.csv"]) == STATED


def test_no_metadata_file_states_nothing(repo_root: Path, tmp_path: Path) -> None:
    config = load_source_config(repo_root / "configs/sources/synthetic.yaml")
    assert read_extract_as_of(config, [tmp_path]) is None
    online = load_source_config(repo_root / "configs/sources/online_retail.yaml")
    assert read_extract_as_of(online, [tmp_path]) is None


def test_an_unreadable_statement_is_one_line_error(repo_root: Path, tmp_path: Path) -> None:
    config = load_source_config(repo_root / "configs/sources/synthetic.yaml")
    (tmp_path / "generate_manifest.json").write_text(json.dumps({"extract_end": "soon"}))
    with pytest.raises(InputError, match="extract_end is not a timestamp"):
        read_extract_as_of(config, [tmp_path])


def test_a_manifest_without_the_key_is_one_line_error(repo_root: Path, tmp_path: Path) -> None:
    config = load_source_config(repo_root / "configs/sources/synthetic.yaml")
    (tmp_path / "generate_manifest.json").write_text(json.dumps({"n_customers": 10}))
    with pytest.raises(InputError, match="extract_end is missing"):
        read_extract_as_of(config, [tmp_path])
