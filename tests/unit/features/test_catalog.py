"""The feature dictionary: complete entries, window expansion, segment grid, config errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from pipeline import io
from pipeline.errors import ConfigError
from pipeline.features.catalog import (
    Catalog,
    check_template,
    parse_catalog,
    template_fields,
    window_of,
)

# Not `from conftest import REPO_ROOT`: with several test folders in one run, "conftest" is
# whichever folder's came first on sys.path.
RAW = io.read_yaml(Path(__file__).resolve().parents[3] / "configs" / "features.yaml")


def test_every_entry_is_complete(catalog: Catalog) -> None:
    for spec in catalog.features:
        assert spec.description and spec.unit and spec.requires, spec.name
    # Silent on purpose: categories with no reference to compare with, and a 0/1 flag that
    # "never gave feedback" (days since last feedback, missing) says better.
    silent = {s.name for s in catalog.features if s.reason is None}
    assert silent == {"nps_group", "has_feedback", "region"}


def test_every_reason_compares_the_customer_with_something(catalog: Catalog) -> None:
    # the value and the comparison that makes it a reason: the reference or their own habit
    comparisons = {"typical", "zero_share", "nonzero_share", "known_share"}
    for spec in catalog.features:
        for key, template in spec.templates().items():
            fields = set(template_fields(template))
            own_habit = fields - comparisons - {"value", "window"}
            assert fields & comparisons or own_habit, (spec.name, key)
            assert spec.description.rstrip(". ") not in template, (spec.name, key)


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


def test_lookup_resolves_exact_and_windowed_names(catalog: Catalog) -> None:
    assert catalog.lookup("days_since_last_order") is catalog.spec("days_since_last_order")
    windowed = catalog.lookup("orders_count_90d")
    assert windowed is not None
    assert (windowed.name, windowed.per_window) == ("orders_count_90d", False)
    assert windowed.description == "Number of orders in the last 90 days."
    assert windowed.reason is not None and "{window}" not in windowed.reason
    # an exact entry wins over a windowed one that would also match it
    assert catalog.lookup("complaints_count_90d") is catalog.spec("complaints_count_90d")


@pytest.mark.parametrize(
    "name",
    [
        "no_such_feature",
        "orders_count_d",  # no window at all
        "orders_count_xd",  # not a number of days
        "orders_count_090d",  # not spelled as a plain day count
        "orders_count_90d_trend",  # a longer name is another column
    ],
)
def test_unknown_names_default_to_none(catalog: Catalog, name: str) -> None:
    assert catalog.lookup(name) is None
    assert catalog.concept_of(name) is None and catalog.direction_of(name) is None


def test_concept_direction_and_label_of_a_column(catalog: Catalog) -> None:
    assert catalog.concept_of("spend_sum_365d") == "monetary"
    assert catalog.direction_of("spend_sum_365d") == "lower_is_riskier"
    assert catalog.direction_of("days_since_last_order") == "higher_is_riskier"
    assert catalog.direction_of("region") is None  # categorical: no sign
    assert catalog.label("service") == "Complaints and service"
    assert catalog.label("other") == "Other"  # not a concept of the file: in words


def test_window_of_is_the_one_matcher() -> None:
    assert window_of("orders_count_{window}d", "orders_count_365d") == 365
    assert window_of("orders_count_{window}d", "orders_count_0d") is None
    assert window_of("lifetime_orders", "lifetime_orders") is None  # not a windowed entry


@pytest.mark.parametrize("field", ["reason", "reason_missing"])
@pytest.mark.parametrize(
    "template",
    [
        "No order for {value:.0f days",  # unbalanced brace
        "No order for {} days",  # positional field: no column to read
        "No order for {0} days",
        "No order for {value.real} days",  # attribute access
        "No order for {value!r} days",  # conversion the renderer would ignore
        "No order for {value:{width}} days",  # nested format spec
    ],
)
def test_a_bad_template_is_refused_at_parse(field: str, template: str) -> None:
    raw = copy.deepcopy(RAW)
    raw["features"][0][field] = template
    with pytest.raises(ConfigError, match=rf"features\.0\.{field}: .*invalid reason template"):
        parse_catalog(raw)


def test_window_and_feature_fields_are_valid_template_fields() -> None:
    assert check_template("Orders in {window} days: {value:.0f} vs {typical:,.1f}") != ""
    assert check_template("every {inter_purchase_gap_days_mean:.0f} days") != ""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reason": "No order for {value:.0f} days; usually {gap_days:.0f}"}, "unknown template"),
        ({"reason_missing": "No order for {days:.0f} days"}, "unknown template field {days}"),
        ({"reason": "Orders in {window} days: {value}"}, "unknown template field {window}"),
        ({"reason": None, "reason_missing": "No order yet"}, "reason_missing without a reason"),
        ({"joins": "recency"}, "own concept"),
    ],
)
def test_a_template_may_only_read_known_fields(change: dict, message: str) -> None:
    raw = copy.deepcopy(RAW)
    assert raw["features"][0]["name"] == "days_since_last_order"
    raw["features"][0].update(change)
    with pytest.raises(ConfigError, match=message):
        parse_catalog(raw)


def test_a_categorical_has_no_reference_to_compare_with() -> None:
    raw = copy.deepcopy(RAW)
    entry = next(f for f in raw["features"] if f["name"] == "region")
    entry["reason"] = "Lives in {value}; typical customer {typical}"
    with pytest.raises(ConfigError, match="categorical"):
        parse_catalog(raw)
    entry["reason"] = "Lives in the {value} region; most orders come from {channels_used:.0f}"
    assert parse_catalog(raw).spec("region").reason is not None  # other features: fine
