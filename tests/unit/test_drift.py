"""Drift: PSI of a model input or score between its reference population and a snapshot.

The reference is fitted with :meth:`pipeline.business.Reference.fit`, as ``train`` ships it, on
one sample; a snapshot is another sample. Shapes cover what the features look like: a
continuous value, a count (point masses at 0, 1, 2, ...), a zero-inflated spend, a flag, and
missing values.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.business import QUANTILES, Reference
from pipeline.drift import (
    EPSILON,
    SCORE,
    Bins,
    ModelBins,
    ModelDrift,
    add_counts,
    bins_from_quantiles,
    drift_block,
    merge_small,
    partition_counts,
    psi,
    share_below,
    shift,
    warning_line,
)

SHAPES = ("continuous", "count", "zero_inflated", "flag", "with_missing")


def draw(shape: str, n: int, rng: np.random.Generator, shift_by: float = 0.0) -> np.ndarray:
    """A sample of ``shape``; ``shift_by`` moves its location (a drifted population)."""
    if shape == "continuous":
        return rng.normal(50.0 + 10.0 * shift_by, 10.0, n)
    if shape == "count":
        return rng.poisson(0.8 * (1.0 + shift_by), n).astype("float64")
    if shape == "zero_inflated":
        spend = rng.lognormal(4.0 + shift_by, 1.0, n)
        return np.where(rng.random(n) < 0.6 - 0.3 * min(shift_by, 1.0), 0.0, spend)
    if shape == "flag":
        return (rng.random(n) < 0.15 * (1.0 + 2.0 * shift_by)).astype("float64")
    values = rng.gamma(2.0, 3.0 + 3.0 * shift_by, n)
    return np.where(rng.random(n) < 0.2, np.nan, values)


def model_bins(reference_sample: np.ndarray, score: np.ndarray) -> ModelBins:
    reference = Reference.fit(pd.DataFrame({"x": reference_sample}), score, "test cutoff")
    return ModelBins.of(reference, ["x"])


def feature_psi(bins: ModelBins, sample: np.ndarray) -> float:
    counts = partition_counts(pd.DataFrame({"x": sample}), np.zeros(len(sample)), bins)
    value = psi(counts["x"], bins.features["x"].expected)
    assert value is not None
    return value


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(SHAPES), st.integers(0, 2**32 - 1))
def test_a_sample_drawn_like_its_reference_has_a_psi_near_zero(shape: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    bins = model_bins(draw(shape, 8000, rng), rng.random(8000))
    assert feature_psi(bins, draw(shape, 8000, rng)) < 0.02


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(SHAPES), st.integers(0, 2**32 - 1))
def test_a_shifted_population_has_a_large_psi(shape: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    bins = model_bins(draw(shape, 8000, rng), rng.random(8000))
    assert feature_psi(bins, draw(shape, 8000, rng, shift_by=1.0)) > 0.25


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(SHAPES),
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(0, 600), min_size=1, max_size=6),
)
def test_the_counts_of_a_split_add_up_to_the_counts_of_the_whole(
    shape: str, seed: int, sizes: list[int]
) -> None:
    rng = np.random.default_rng(seed)
    bins = model_bins(draw(shape, 3000, rng), rng.random(3000))
    whole = draw(shape, sum(sizes), rng)
    scores = rng.random(len(whole))
    edges = np.cumsum([0, *sizes])
    parts = [
        partition_counts(pd.DataFrame({"x": whole[a:b]}), scores[a:b], bins)
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    assert add_counts(parts) == partition_counts(pd.DataFrame({"x": whole}), scores, bins)


def test_the_reference_shares_of_a_count_are_its_point_masses() -> None:
    # 0 x 500, 1 x 300, 2 x 150, 5 x 50: deciles 0,0,0,0,0(.5),1,1,1,2 -> cuts at the masses
    values = np.repeat([0.0, 1.0, 2.0, 5.0], [500, 300, 150, 50])
    bins = model_bins(values, np.linspace(0, 1, len(values))).features["x"]
    counts = bins.counts(values)
    assert sum(counts) == len(values)
    assert np.allclose(bins.expected, np.asarray(counts) / len(values), atol=0.011)
    # zero is a bin of its own, with the exact zero share
    assert bins.counts([0.0]) != bins.counts([1.0]) and bins.expected[0] == pytest.approx(0.5)


def test_missing_values_are_a_bin_of_their_own_with_the_reference_missing_share() -> None:
    values = np.r_[np.arange(80.0), [np.nan] * 20]
    bins = model_bins(values, np.linspace(0, 1, len(values))).features["x"]
    assert bins.expected[-1] == pytest.approx(0.2)
    assert sum(bins.expected) == pytest.approx(1.0)
    assert bins.counts([np.nan, 3.0]) == [*bins.counts([3.0])[:-1], 1]
    # all missing now, 20% then: a large shift
    assert (psi(bins.counts([np.nan] * 50), bins.expected) or 0) > 0.25


def test_a_categorical_input_is_binned_known_or_missing() -> None:
    frame = pd.DataFrame({"region": pd.Categorical(["north", None, "south", "north"])})
    reference = Reference.fit(frame, [0.1, 0.2, 0.3, 0.4], "test cutoff")
    bins = ModelBins.of(reference, ["region"])
    assert bins.features["region"].expected == pytest.approx((0.75, 0.25))
    counts = partition_counts(frame, [0.1, 0.2, 0.3, 0.4], bins)
    assert (
        counts["region"] == [3, 1] and psi(counts["region"], bins.features["region"].expected) == 0
    )


def test_share_below_reads_the_quantile_table_between_and_at_levels() -> None:
    levels, values = (0.0, 0.5, 1.0), (0.0, 10.0, 20.0)
    assert share_below(levels, values, -1.0) == 0.0
    assert share_below(levels, values, 0.0) == 0.0
    assert share_below(levels, values, 5.0) == pytest.approx(0.25)
    assert share_below(levels, values, 10.0) == pytest.approx(0.5)
    assert share_below(levels, values, 21.0) == 1.0


def test_a_bin_smaller_than_the_table_step_is_merged_into_the_next() -> None:
    assert merge_small([1.0, 2.0, 3.0], [0.5, 0.004, 0.3, 0.196], 0.01) == (
        [1.0, 3.0],
        [0.5, 0.304, 0.196],
    )
    assert merge_small([1.0], [0.995, 0.005], 0.01) == ([], [1.0])  # the last into the one before


def test_psi_is_the_documented_formula_with_the_epsilon_floor() -> None:
    a, e = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.75, 0.0])
    expected = float(np.sum((a - e) * np.log(np.maximum(a, EPSILON) / np.maximum(e, EPSILON))))
    assert psi([50, 50, 0], e) == pytest.approx(expected)
    # an empty bin the reference fills: large but finite
    value = psi([100, 0], [0.5, 0.5])
    assert value is not None and math.isfinite(value) and value > 1
    assert psi([0, 0], [0.5, 0.5]) is None


def test_bins_of_a_reference_without_quantiles_are_known_or_missing() -> None:
    bins = bins_from_quantiles(QUANTILES, (), known_share=0.0)
    assert bins == Bins((), (0.0, 1.0))


def test_shift_words_follow_the_customary_lines_and_the_warn_line() -> None:
    assert [shift(v, 0.25) for v in (0.05, 0.1, 0.24, 0.25, None)] == [
        "stable",
        "moderate",
        "moderate",
        "large",
        "unknown",
    ]
    assert shift(0.06, 0.05) == "large"


def _spec(target: str, bins: ModelBins) -> ModelDrift:
    return ModelDrift(target, f"{target}_probability", "2024-10-01", "test cutoff", bins)


def test_the_drift_block_reduces_partitions_and_names_what_passed_the_line() -> None:
    rng = np.random.default_rng(7)
    bins = model_bins(draw("continuous", 4000, rng), rng.random(4000))
    stable = draw("continuous", 2000, rng)
    moved = draw("continuous", 2000, rng, shift_by=2.0)
    parts = [
        {"churn": partition_counts(pd.DataFrame({"x": half}), rng.random(1000), bins)}
        for half in (moved[:1000], moved[1000:])
    ]
    block = drift_block([_spec("churn", bins)], parts, "2025-01-01", 0.25)
    churn = block["models"]["churn"]
    assert churn["reference"] == "2024-10-01" and block["snapshot"] == "2025-01-01"
    assert churn["features"]["x"] > 1 and churn["score_psi"] < 0.05
    assert block["above_warn_psi"] == [
        {"model": "churn", "name": "x", "psi": churn["features"]["x"]}
    ]
    line = warning_line(block)
    assert line is not None and "churn x" in line and "score.drift_warn_psi=0.25" in line
    whole = partition_counts(pd.DataFrame({"x": moved}), np.zeros(2000), bins)
    assert churn["features"]["x"] == round(psi(whole["x"], bins.features["x"].expected) or 0, 4)
    calm = [{"churn": partition_counts(pd.DataFrame({"x": stable}), rng.random(2000), bins)}]
    assert warning_line(drift_block([_spec("churn", bins)], calm, None, 0.25)) is None


def test_a_model_no_partition_saw_has_no_psi() -> None:
    rng = np.random.default_rng(3)
    bins = model_bins(draw("count", 500, rng), rng.random(500))
    block = drift_block([_spec("churn", bins)], [{}, {}], "2025-01-01", 0.25)
    assert block["models"]["churn"]["score_psi"] is None
    assert block["models"]["churn"]["features"] == {} and block["above_warn_psi"] == []
    assert SCORE == "score"
