"""Reason codes: ranking, sentences with the customer's own values, edge cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.features.catalog import parse_catalog
from pipeline.reasons import (
    FeatureDictionary,
    FeatureInfo,
    load_dictionary,
    reason_codes,
    reference_values,
    render_reason,
)

# One segment covering the whole (r, f) grid: these tests are about features, not segments.
SEGMENTS = [{"name": "All", "r": [1, 5], "f": [1, 5]}]


def dictionary_of(*features: dict, concepts: dict | None = None) -> FeatureDictionary:
    """A valid catalog of ``features`` (inputs and unit filled in when a test does not care)."""
    entries = [{"requires": ["orders.order_ts"], "unit": "", **f} for f in features]
    raw = {"version": 1, "concepts": concepts or {}, "features": entries, "rfm_segments": SEGMENTS}
    return FeatureDictionary(parse_catalog(raw, "test"))


DICTIONARY = dictionary_of(
    {
        "name": "days_since_last_order",
        "concept": "recency",
        "unit": "days",
        "description": "Days since the last order",
        "reason": "No order for {value:.0f} days; usually orders every {gap_mean_days:.0f} days",
    },
    {
        "name": "complaints_unresolved_365d",
        "concept": "service",
        "description": "Unresolved complaints in the last 365 days",
        "reason": "{value:.0f} unresolved complaints",
    },
    {
        "name": "review_score_last",
        "concept": "satisfaction",
        "description": "Score of the last review (1-5)",
        "reason": "Last review {value:.0f} of 5",
        "reason_missing": "Has never left a review",
    },
    {
        "name": "gap_mean_days",
        "concept": "frequency",
        "unit": "days",
        "description": "Usual days between orders",
        # every catalog entry has a reason; this one reads like the no-template default
        "reason": "Usual days between orders: {value:.0f} days",
    },
    concepts={"recency": "Recency", "service": "Service"},
)

# Three customers, each with a reason to exist:
#   a: recency and complaints raise risk, the review lowers it -> two reasons, third empty;
#   b: a missing review raises risk -> the "missing" sentence, never "nan of 5";
#   c: nothing raises risk -> no reasons at all.
FEATURES = pd.DataFrame(
    {
        "days_since_last_order": [143.0, 20.0, 5.0],
        "complaints_unresolved_365d": [2.0, 0.0, 0.0],
        "review_score_last": [5.0, np.nan, 5.0],
        "gap_mean_days": [35.2, 30.0, 10.0],
    },
    index=pd.Index([10, 11, 12]),
)
SHAP = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c"],
        "days_since_last_order": [0.9, -0.1, -0.5],
        "complaints_unresolved_365d": [0.4, 0.0, -0.2],
        "review_score_last": [-0.3, 0.6, -0.1],
        "gap_mean_days": [0.0, 0.05, -0.1],
        "base_value": [-1.0, -1.0, -1.0],
    }
)


def test_sentences_use_the_customers_own_values() -> None:
    out = reason_codes(FEATURES, SHAP, DICTIONARY, top_k=3, with_features=True)
    assert out.index.tolist() == [10, 11, 12]
    assert out.loc[10, "reason_1"] == "No order for 143 days; usually orders every 35 days"
    assert out.loc[10, "reason_2"] == "2 unresolved complaints"
    assert pd.isna(out.loc[10, "reason_3"])
    assert out.loc[11, "reason_1"] == "Has never left a review"
    assert out.loc[11, "reason_feature_1"] == "review_score_last"
    assert out.loc[11, "reason_2"] == "Usual days between orders: 30 days"
    assert out.loc[12, ["reason_1", "reason_2", "reason_3"]].isna().all()


def test_direction_minus_one_explains_low_repurchase() -> None:
    out = reason_codes(FEATURES, SHAP, DICTIONARY, top_k=1, direction=-1.0)
    assert list(out.columns) == ["reason_1"]
    assert out.loc[12, "reason_1"].startswith("No order for 5 days")
    assert out.loc[10, "reason_1"] == "Last review 5 of 5"


def test_typical_and_unknown_feature_defaults() -> None:
    dictionary = dictionary_of(
        {
            "name": "days_since_last_order",
            "concept": "recency",
            "description": "Days since the last order",
            "reason": "{value:.0f} days vs {typical:.0f} typical",
        }
    )
    refs = reference_values(FEATURES, ["days_since_last_order"])
    out = reason_codes(FEATURES, SHAP, dictionary, top_k=2, references=refs)
    assert out.loc[10, "reason_1"] == "143 days vs 20 typical"
    assert out.loc[10, "reason_2"] == "complaints unresolved 365d: 2"  # not in the dictionary


def test_input_is_not_mutated_and_lengths_must_match() -> None:
    before = SHAP.copy()
    reason_codes(FEATURES, SHAP, DICTIONARY)
    pd.testing.assert_frame_equal(SHAP, before)
    with pytest.raises(ValueError, match="rows"):
        reason_codes(FEATURES.iloc[:2], SHAP, DICTIONARY)


def test_unlisted_columns_get_their_name_in_words() -> None:
    info = DICTIONARY.info("tenure_days")
    assert (info.description, info.concept, info.reason) == ("tenure days", "other", None)
    assert DICTIONARY.label("service") == "Service"
    assert DICTIONARY.label("product_quality") == "Product quality"  # no label: in words


def test_descriptions_with_braces_are_not_templates() -> None:
    # Only unlisted columns lack a template; their default sentence never reads braces as fields.
    info = FeatureInfo("x", description="Share {of} spend")
    assert render_reason(info, pd.DataFrame({"x": [0.25]})) == ["Share {of} spend: 0.2"]


@given(
    st.lists(st.lists(st.floats(-5, 5), min_size=4, max_size=4), min_size=0, max_size=30),
    st.integers(1, 5),
)
@settings(max_examples=50, deadline=None)
def test_reasons_follow_the_contribution_order(rows: list[list[float]], top_k: int) -> None:
    names = [
        "days_since_last_order",
        "complaints_unresolved_365d",
        "review_score_last",
        "gap_mean_days",
    ]
    contrib = pd.DataFrame(rows, columns=names, dtype="float64")
    features = pd.DataFrame(np.ones((len(rows), 4)), columns=names)
    out = reason_codes(features, contrib, DICTIONARY, top_k=top_k, with_features=True)
    assert len(out) == len(rows)
    for i, values in enumerate(rows):
        positive = sorted((v, -j) for j, v in enumerate(values) if v > 0)[::-1]
        expected = [names[-j] for _v, j in positive][:top_k]
        got = [out.iloc[i][f"reason_feature_{r + 1}"] for r in range(top_k)]
        assert [g for g in got if not pd.isna(g)] == expected


def test_window_entries_match_every_window() -> None:
    dictionary = dictionary_of(
        {
            "name": "orders_count_{window}d",
            "per_window": True,
            "concept": "frequency",
            "description": "Orders in the last {window} days",
            "reason": "Only {value:.0f} orders in {window} days",
        }
    )
    info = dictionary.info("orders_count_90d")
    assert (info.concept, info.description) == ("frequency", "Orders in the last 90 days")
    assert dictionary.concepts(["orders_count_30d", "other_x"]) == {
        "orders_count_30d": "frequency",
        "other_x": "other",
    }
    out = reason_codes(
        pd.DataFrame({"orders_count_90d": [1.0]}),
        pd.DataFrame({"orders_count_90d": [0.3]}),
        dictionary,
        top_k=1,
    )
    assert out.loc[0, "reason_1"] == "Only 1 orders in 90 days"


def test_reason_missing_is_itself_a_template() -> None:
    dictionary = dictionary_of(
        {
            "name": "days_since_last_order",
            "concept": "recency",
            "description": "Days since the last order",
            "reason": "No order for {value:.0f} days; usually orders every {gap:.0f} days",
            "reason_missing": "No order for {value:.0f} days",
        }
    )
    # one-order customer: no usual gap yet; second row: no value at all -> the description
    features = pd.DataFrame({"days_since_last_order": [40.0, np.nan], "gap": [np.nan, np.nan]})
    out = reason_codes(features, pd.DataFrame({"days_since_last_order": [0.2, 0.1]}), dictionary, 1)
    expected = ["No order for 40 days", "Days since the last order (no data yet)"]
    assert out["reason_1"].tolist() == expected


def test_the_project_dictionary_parses(repo_root: Path) -> None:
    path = repo_root / "configs" / "features.yaml"
    if not path.exists():
        pytest.skip("configs/features.yaml not written yet")
    dictionary = load_dictionary(path)
    assert dictionary.info("orders_count_90d").concept == "frequency"
    assert dictionary.info("orders_count_90d").description.startswith(
        "Number of orders in the last 90"
    )
    assert dictionary.label("service") != "service"
