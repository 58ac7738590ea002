"""Reason codes: one sentence per concept, one fact once, every sentence a true comparison."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.business import QUANTILES, Reference
from pipeline.features.catalog import parse_catalog
from pipeline.reasons import FeatureDictionary, load_dictionary, reason_codes
from pipeline.sentences import Comparison, comparisons

# One segment covering the whole (r, f) grid: these tests are about features, not segments.
SEGMENTS = [{"name": "All", "r": [1, 5], "f": [1, 5]}]
REPO = Path(__file__).resolve().parents[2]


def dictionary_of(*features: dict, concepts: dict | None = None) -> FeatureDictionary:
    """A valid catalog of ``features`` (inputs and unit filled in when a test does not care)."""
    entries = [{"requires": ["orders.order_ts"], "unit": "", **f} for f in features]
    raw = {"version": 1, "concepts": concepts or {}, "features": entries, "rfm_segments": SEGMENTS}
    return FeatureDictionary(parse_catalog(raw, "test"))


DICTIONARY = dictionary_of(
    {
        "name": "days_since_last_order",
        "concept": "recency",
        "description": "Days since the last order",
        "direction": "higher_is_riskier",
        "reason": "No order for {value:.0f} days; usually orders every {gap_days:.0f} days",
        "reason_missing": "No order for {value:.0f} days; typical customer {typical:.0f} days",
    },
    {
        "name": "orders_count_{window}d",
        "per_window": True,
        "concept": "frequency",
        "description": "Orders in the last {window} days",
        "direction": "lower_is_riskier",
        "reason": "Orders in the last {window} days: {value:.0f}; typical customer {typical:.0f}",
        "joins": "recency",
        "joins_when": "zero",
    },
    {
        "name": "gap_days",
        "concept": "frequency",
        "description": "Usual days between orders (empty with a single order)",
        "direction": "higher_is_riskier",
        "reason": "Orders every {value:.0f} days; typical customer every {typical:.0f} days",
    },
    {
        "name": "lifetime_orders",
        "concept": "frequency",
        "description": "Orders since the first one",
        "direction": "lower_is_riskier",
        "reason": "Orders in total: {value:.0f}; typical customer {typical:.0f}",
    },
    {
        "name": "spend_sum_90d",
        "concept": "monetary",
        "description": "Spend in the last 90 days",
        "direction": "lower_is_riskier",
        "reason": "Spent {value:,.0f} in the last 90 days; typical customer {typical:,.0f}",
        "joins": "recency",
        "joins_when": "zero",
    },
    {
        "name": "complaints_unresolved",
        "concept": "service",
        "description": "Complaints still unresolved",
        "direction": "higher_is_riskier",
        "reason": "Unresolved complaints: {value:.0f}; {zero_share:.0%} of customers have none",
    },
    {
        "name": "review_score_mean",
        "concept": "satisfaction",
        "description": "Average review score (1-5)",
        "direction": "lower_is_riskier",
        "reason": "Average review {value:.1f} of 5; typical reviewer {typical:.1f}",
        "reason_missing": "No review yet; {known_share:.0%} of customers have written one",
    },
    {
        "name": "review_score_last",
        "concept": "satisfaction",
        "description": "Score of the last review (1-5)",
        "direction": "lower_is_riskier",
        "reason": "Last review {value:.0f} of 5; typical reviewer {typical:.0f}",
    },
    {
        "name": "region",
        "concept": "relationship",
        "description": "Region of the customer",
        "dtype": "category",
        "levels": ["north", "south"],
        # no reason: never a reason sentence
    },
    concepts={"recency": "Recency", "service": "Service"},
)

REFERENCES = {
    "days_since_last_order": Comparison(typical=48.0),
    "orders_count_90d": Comparison(typical=1.0),
    "gap_days": Comparison(typical=34.0),
    "lifetime_orders": Comparison(typical=7.0),
    "spend_sum_90d": Comparison(typical=44.0),
    "complaints_unresolved": Comparison(typical=0.0, zero_share=0.93),
    "review_score_mean": Comparison(typical=3.5, known_share=0.62),
    "review_score_last": Comparison(typical=4.0, known_share=0.62),
}
NAMES = list(REFERENCES) + ["region"]

# Four customers, each with a reason to exist:
#   a: no order for 182 days; 0 orders and 0 spend in 90 days say the same -> recency once;
#      frequency is told by its next feature; 2 unresolved complaints; a review that lowers risk;
#   b: no review yet raises risk -> the catalog's missing sentence; one order so no usual gap;
#   c: the review raises risk but 3.5 is the typical score -> not a reason; nothing else;
#   d: a frequent buyer with a recent order: 0 in the 90-day window is not recency's voice when
#      days since last order does not raise risk -> the zero feature speaks itself.
FEATURES = pd.DataFrame(
    {
        "days_since_last_order": [182.0, 20.0, 5.0, 100.0],
        "orders_count_90d": [0.0, 1.0, 2.0, 0.0],
        "gap_days": [40.0, np.nan, 10.0, 120.0],
        "lifetime_orders": [3.0, 1.0, 9.0, 8.0],
        "spend_sum_90d": [0.0, 30.0, 80.0, 0.0],
        "complaints_unresolved": [2.0, 0.0, 0.0, 0.0],
        "review_score_mean": [5.0, np.nan, 3.5, 4.0],
        "review_score_last": [5.0, np.nan, 4.0, 4.0],
        "region": pd.Categorical(["north", "south", "north", "south"]),
    },
    index=pd.Index([10, 11, 12, 13]),
)
SHAP = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c", "d"],
        "days_since_last_order": [0.9, -0.1, -0.5, -0.2],
        "orders_count_90d": [1.2, 0.0, -0.1, 0.5],
        "gap_days": [0.3, 0.2, -0.1, 0.1],
        "lifetime_orders": [0.2, 0.3, -0.2, -0.1],
        "spend_sum_90d": [0.7, 0.0, -0.1, 0.4],
        "complaints_unresolved": [0.4, 0.0, -0.2, 0.0],
        "review_score_mean": [-0.3, 0.6, 0.2, 0.0],
        "review_score_last": [-0.2, 0.1, 0.1, 0.0],
        "region": [0.5, 0.5, 0.5, 0.5],  # raises risk, but has no sentence
        "base_value": [-1.0, -1.0, -1.0, -1.0],
    }
)


def _codes(**kwargs: object) -> pd.DataFrame:
    args = {"top_k": 3, "references": REFERENCES, "with_features": True, **kwargs}
    return reason_codes(FEATURES, SHAP, DICTIONARY, **args)  # type: ignore[arg-type]


def _reasons(out: pd.DataFrame, row: int, column: str = "reason") -> list[str]:
    return [
        out.loc[row, f"{column}_{k}"]
        for k in range(1, 4)
        if f"{column}_{k}" in out and not pd.isna(out.loc[row, f"{column}_{k}"])
    ]


def test_one_fact_once_one_sentence_per_concept() -> None:
    out = _codes()
    assert out.index.tolist() == [10, 11, 12, 13]
    # recency is the strongest concept (its joined zero orders weigh 1.2) and speaks in its
    # own words; the zero orders and zero spend of the 90-day window are not repeated;
    # frequency is told by lifetime_orders: gap_days is quoted by the recency sentence.
    assert _reasons(out, 10) == [
        "No order for 182 days; usually orders every 40 days",
        "Unresolved complaints: 2; 93% of customers have none",
        "Orders in total: 3; typical customer 7",
    ]
    assert _reasons(out, 10, "reason_concept") == ["recency", "service", "frequency"]
    assert _reasons(out, 10, "reason_feature")[0] == "days_since_last_order"


def test_a_missing_value_speaks_only_through_the_catalogs_sentence() -> None:
    out = _codes()
    # the review is missing: "No review yet" (its reason_missing), never "nan of 5"; the last
    # review has no reason_missing, and the empty gap has none: both silent
    assert _reasons(out, 11) == [
        "No review yet; 62% of customers have written one",
        "Orders in total: 1; typical customer 7",
    ]


def test_a_typical_value_is_no_reason() -> None:
    out = _codes()
    # average review 3.5 against a typical 3.5, last review 4 against 4: both silent
    assert _reasons(out, 12) == []


def test_a_joined_zero_speaks_when_the_concepts_own_feature_cannot() -> None:
    out = _codes()
    # days since last order lowers risk: the 90-day zeros tell recency's fact themselves,
    # once (the stronger of the two), and frequency is told by another feature
    assert _reasons(out, 13) == [
        "Orders in the last 90 days: 0; typical customer 1",
        "Orders every 120 days; typical customer every 34 days",
    ]
    assert _reasons(out, 13, "reason_concept") == ["recency", "frequency"]


def test_without_references_comparisons_are_silent_not_invented() -> None:
    out = reason_codes(FEATURES, SHAP, DICTIONARY, top_k=3)
    # only the recency sentence compares with the customer's own habit
    assert _reasons(out, 10) == ["No order for 182 days; usually orders every 40 days"]
    assert out.loc[11].isna().all()  # "No review yet; {known_share}" cannot be filled


def test_direction_minus_one_explains_low_repurchase() -> None:
    # For repurchase a negative contribution is the risk (of not buying again).
    features = FEATURES.iloc[[0, 1]].assign(review_score_mean=[2.0, 5.0])
    contributions = pd.DataFrame({"review_score_mean": [-0.5, -0.5], "gap_days": [0.9, 0.9]})
    out = reason_codes(features, contributions, DICTIONARY, 1, -1.0, REFERENCES)
    assert list(out.columns) == ["reason_1"]
    assert out.loc[10, "reason_1"] == "Average review 2.0 of 5; typical reviewer 3.5"
    # 5 of 5 is not below the typical 3.5: whatever the model says, it does not read as one
    assert pd.isna(out.loc[11, "reason_1"])


def test_unlisted_and_silent_features_never_speak() -> None:
    info = DICTIONARY.info("tenure_days")
    assert (info.description, info.concept, info.reason) == ("tenure days", "other", None)
    assert DICTIONARY.info("region").reason is None
    assert DICTIONARY.label("service") == "Service"
    assert DICTIONARY.label("product_quality") == "Product quality"  # no label: in words
    features = FEATURES.assign(tenure_days=5.0)
    contributions = SHAP.assign(tenure_days=9.0)  # the strongest of all, but unlisted
    out = reason_codes(features, contributions, DICTIONARY, 3, references=REFERENCES)
    assert not out.stack().str.contains("tenure|region|north|south").any()


def test_input_is_not_mutated_and_lengths_must_match() -> None:
    before = SHAP.copy()
    reason_codes(FEATURES, SHAP, DICTIONARY, references=REFERENCES)
    pd.testing.assert_frame_equal(SHAP, before)
    with pytest.raises(ValueError, match="rows"):
        reason_codes(FEATURES.iloc[:2], SHAP, DICTIONARY)
    with pytest.raises(ValueError, match="top_k"):
        reason_codes(FEATURES, SHAP, DICTIONARY, top_k=0)


def test_window_entries_match_every_window() -> None:
    info = DICTIONARY.info("orders_count_30d")
    assert (info.concept, info.description) == ("frequency", "Orders in the last 30 days")
    assert DICTIONARY.concepts(["orders_count_30d", "other_x"]) == {
        "orders_count_30d": "frequency",
        "other_x": "other",
    }
    out = reason_codes(
        pd.DataFrame({"orders_count_30d": [1.0]}),
        pd.DataFrame({"orders_count_30d": [0.3]}),
        DICTIONARY,
        top_k=1,
        references={"orders_count_30d": Comparison(typical=3.0)},
    )
    assert out.loc[0, "reason_1"] == "Orders in the last 30 days: 1; typical customer 3"


# --- the project's catalog, on random customers --------------------------------------------


def _project() -> tuple[FeatureDictionary, list[str], dict[str, Comparison]]:
    dictionary = load_dictionary(REPO / "configs" / "features.yaml")
    catalog = dictionary.catalog.expand((30, 90, 180, 365))
    names = [spec.name for spec in catalog.features]
    numeric = [s.name for s in catalog.features if s.dtype != "category"]
    # A reference population in which each numeric feature is spread over 0 .. 10.
    reference = Reference(
        "test cutoff",
        1000,
        (),
        {name: tuple(10.0 * q for q in QUANTILES) for name in numeric},
        zero_share={name: 0.4 for name in numeric},
        known_share={name: 0.7 for name in names},
    )
    return dictionary, names, comparisons(reference)


PROJECT, PROJECT_NAMES, PROJECT_REFERENCES = _project()
DESCRIPTIONS = [
    spec.description.rstrip(". ") for spec in PROJECT.catalog.expand((30, 90, 180, 365)).features
]
# Words of an unfilled or failed field ("complainant" is a word, not a NaN).
UNFILLED = re.compile(r"\b(nan|NaN|None|inf)\b|<NA>|no data yet")
value = st.one_of(
    st.just(0.0),
    st.just(math.nan),
    st.floats(-3, 400, allow_nan=False).map(lambda v: round(v, 2)),
    st.sampled_from([1.0, 5.0, 10.0]),
)


@given(
    st.integers(1, 8).flatmap(
        lambda n: st.tuples(
            st.lists(
                st.lists(value, min_size=len(PROJECT_NAMES), max_size=len(PROJECT_NAMES)),
                min_size=n,
                max_size=n,
            ),
            st.lists(
                st.lists(
                    st.floats(-2, 2), min_size=len(PROJECT_NAMES), max_size=len(PROJECT_NAMES)
                ),
                min_size=n,
                max_size=n,
            ),
        )
    ),
    st.integers(1, 5),
)
@settings(max_examples=60, deadline=None)
def test_any_customer_gets_distinct_concepts_in_filled_sentences(
    data: tuple[list[list[float]], list[list[float]]], top_k: int
) -> None:
    values, contributions = data
    features = pd.DataFrame(values, columns=PROJECT_NAMES)
    categories = {"nps_group": ["detractor", "passive", "promoter"], "region": ["north", "south"]}
    for name, levels in categories.items():
        codes = [
            int(abs(v)) % (len(levels) + 1) if not math.isnan(v) else 0 for v in features[name]
        ]
        features[name] = pd.Categorical([None if c == 0 else levels[c - 1] for c in codes])
    shap_values = pd.DataFrame(contributions, columns=PROJECT_NAMES)
    out = reason_codes(features, shap_values, PROJECT, top_k, 1.0, PROJECT_REFERENCES, True)
    assert len(out) == len(features)
    for i in range(len(out)):
        row = out.iloc[i]
        sentences = [
            row[f"reason_{k}"] for k in range(1, top_k + 1) if not pd.isna(row[f"reason_{k}"])
        ]
        concepts = [
            row[f"reason_concept_{k}"]
            for k in range(1, top_k + 1)
            if not pd.isna(row[f"reason_concept_{k}"])
        ]
        told = [
            row[f"reason_feature_{k}"]
            for k in range(1, top_k + 1)
            if not pd.isna(row[f"reason_feature_{k}"])
        ]
        assert len(sentences) == len(concepts) == len(told) <= top_k
        assert len(set(concepts)) == len(concepts)  # one sentence per concept
        # given reasons come first: no gap before a later one
        given_flags = [not pd.isna(row[f"reason_{k}"]) for k in range(1, top_k + 1)]
        assert given_flags == sorted(given_flags, reverse=True)
        for sentence, feature in zip(sentences, told, strict=True):
            assert "{" not in sentence and "}" not in sentence
            assert not UNFILLED.search(sentence), sentence
            assert not any(text in sentence for text in DESCRIPTIONS)
            # a told feature raised this customer's risk
            assert shap_values.iloc[i][feature] > 0


def test_the_project_dictionary_parses() -> None:
    dictionary = load_dictionary(REPO / "configs" / "features.yaml")
    assert dictionary.info("orders_count_90d").concept == "frequency"
    assert dictionary.info("orders_count_90d").joins == "recency"
    assert dictionary.info("orders_count_90d").description.startswith(
        "Number of orders in the last 90"
    )
    assert dictionary.label("service") != "service"
