"""The feature dictionary: complete entries, window expansion, segment grid, config errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from pipeline import io
from pipeline.errors import ConfigError
from pipeline.features.catalog import Catalog, parse_catalog

RAW = io.read_yaml(REPO_ROOT / "configs" / "features.yaml")


def test_every_entry_is_complete(catalog: Catalog) -> None:
    for spec in catalog.features:
        assert spec.description and spec.unit and spec.reason and spec.requires, spec.name
        assert spec.reason.count("{") == spec.reason.count("}"), spec.name


def test_windows_are_expanded_and_spelled_out(catalog: Catalog) -> None:
    names = [s.name for s in catalog.expand((30, 90)).features]
    assert "orders_count_30d" in names and "spend_sum_90d" in names
    assert not any("{window}" in n for n in names)
    assert (
        catalog.expand((30, 90)).spec("orders_count_30d").description
        == "Number of orders in the last 30 days."
    )


def test_segment_grid_names_the_corners(catalog: Catalog) -> None:
    grid = catalog.segment_grid()
    assert grid[4][4] == "Champions"  # most recent, most frequent
    assert grid[0][0] == "Lost"  # least recent, least frequent
    assert grid[0][4] == "Cannot lose"  # frequent buyers who have gone quiet
    assert grid[4][0] == "New"


def test_a_hole_in_the_segment_grid_is_a_config_error() -> None:
    raw = copy.deepcopy(RAW)
    raw["rfm_segments"] = [s for s in raw["rfm_segments"] if s["name"] != "Lost"]
    with pytest.raises(ConfigError, match="rfm_segments"):
        parse_catalog(raw)


def test_unsorted_levels_are_a_config_error() -> None:
    raw = copy.deepcopy(RAW)
    entry = next(f for f in raw["features"] if f["name"] == "region")
    entry["levels"] = ["west", "east"]
    with pytest.raises(ConfigError, match="sorted"):
        parse_catalog(raw)


def test_unknown_concept_is_a_config_error() -> None:
    raw = copy.deepcopy(RAW)
    raw["features"][0]["concept"] = "vibes"
    with pytest.raises(ConfigError, match=r"features\.0\.concept"):
        parse_catalog(raw)


def test_dictionary_is_read_with_safe_load_only(tmp_path: Path) -> None:
    evil = tmp_path / "features.yaml"
    evil.write_text("version: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        from pipeline.features.catalog import load_catalog

        load_catalog(evil)
