"""Business rules: band edges, quintile scores on fixed edges, the shipped reference."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.business import (
    QUANTILES,
    Reference,
    churn_risk_band,
    loyalty_tier,
    quintile_score,
    reasons_threshold,
    value_at_risk,
)
from pipeline.config import BusinessParams
from pipeline.errors import ModelError

RULES = BusinessParams()


def test_band_edges_belong_to_the_higher_band() -> None:
    bands = churn_risk_band([0.5, 0.4999, 0.2, 0.19, np.nan], RULES)
    assert bands.tolist()[:4] == ["high", "medium", "medium", "low"] and pd.isna(bands.iloc[4])
    tiers = loyalty_tier([0.70, 0.6999, 0.30, 0.2999], RULES)
    assert tiers.tolist() == ["high", "medium", "medium", "low"]


def test_quintile_scores_on_fixed_edges() -> None:
    edges = [10.0, 20.0, 30.0, 40.0]
    values = [5.0, 10.0, 10.5, 40.0, 41.0, np.nan]
    assert quintile_score(values, edges, True)[:5].tolist() == [1, 1, 2, 4, 5]
    assert quintile_score(values, edges, False)[:5].tolist() == [5, 5, 4, 2, 1]
    assert math.isnan(quintile_score(values, edges, True)[5])


def test_value_at_risk_is_probability_times_expected_value() -> None:
    assert value_at_risk([0.5, 0.1], [200.0, 0.0]).tolist() == [100.0, 0.0]


def test_reference_round_trips_and_reads_quantiles() -> None:
    frame = pd.DataFrame({"x": np.arange(101, dtype=float), "c": pd.Categorical(["a"] * 101)})
    reference = Reference.fit(frame, np.linspace(0, 1, 101), "test cutoff")
    assert set(reference.features) == {"x"}  # categoricals have no quantiles
    again = Reference.from_dict(reference.to_dict(), "model")
    assert again == reference
    assert again.feature_quantile("x", 0.995) == pytest.approx(99.5)
    assert reasons_threshold(again, 0.2) == pytest.approx(0.8)
    assert reasons_threshold(again, 0.0) == math.inf
    assert math.isnan(again.feature_quantile("missing", 0.5))
    assert len(reference.to_dict()["features"]["x"]) == len(QUANTILES)


def test_a_reference_of_other_quantile_levels_is_refused() -> None:
    raw = Reference.fit(pd.DataFrame({"x": [1.0, 2.0]}), [0.1, 0.2], "t").to_dict()
    raw["quantiles"] = raw["quantiles"][:-1]
    with pytest.raises(ModelError, match="quantile levels"):
        Reference.from_dict(raw, "model")
    with pytest.raises(ModelError, match="no reference distribution"):
        Reference.from_dict(None, "model")
