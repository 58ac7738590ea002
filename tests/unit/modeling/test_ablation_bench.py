"""The group parsing of benchmarks/bench_ablation.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_ablation import Group, concept_group, parse_group
from pipeline.features.catalog import load_catalog

REPO = Path(__file__).resolve().parents[3]


def test_a_group_is_a_name_and_its_features() -> None:
    assert parse_group("trends= a, b ,") == Group("trends", ("a", "b"))


@pytest.mark.parametrize("text", ["trends", "=a,b", "trends="])
def test_a_malformed_group_is_a_one_line_exit(text: str) -> None:
    with pytest.raises(SystemExit, match="expected name=feature"):
        parse_group(text)


def test_a_concept_group_has_its_expanded_features_but_no_derived_ones() -> None:
    catalog = load_catalog(REPO / "configs" / "features.yaml")
    group = concept_group(catalog, "frequency", (30, 90))
    assert "orders_count_30d" in group.features and "orders_count_90d" in group.features
    with pytest.raises(SystemExit, match="no feature of that concept"):
        concept_group(catalog, "buying_pattern", (30,))  # BTYD features are derived by training
