"""Business rules: band edges, quintile scores on fixed edges, the shipped reference and cuts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.business import (
    QUANTILES,
    ReasonCuts,
    Reference,
    churn_risk_band,
    loyalty_tier,
    quintile_score,
    reasons_cut,
    value_at_risk,
)
from pipeline.config import BusinessParams, share_step
from pipeline.errors import ModelError
from pipeline.features.partition import customer_hash

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
    frame = pd.DataFrame(
        {
            "x": np.arange(101, dtype=float),
            "c": pd.Categorical(["a"] * 100 + [None]),
            "z": np.where(np.arange(101) < 30, 0.0, np.nan),
        }
    )
    p = np.linspace(0, 1, 101)
    cuts = ReasonCuts.fit(p, p, [f"C{i}" for i in range(101)], 1.0)
    reference = Reference.fit(frame, p, "test cutoff", cuts)
    assert set(reference.features) == {"x", "z"}  # categoricals have no quantiles
    # zeros among the customers with a value; the share with a value at all, categoricals too
    assert reference.zero_share == {"x": pytest.approx(1 / 101), "z": 1.0}
    assert reference.known_share == pytest.approx({"x": 1.0, "c": 100 / 101, "z": 30 / 101})
    again = Reference.from_dict(reference.to_dict(), "model")
    assert again == reference
    assert again.feature_quantile("x", 0.995) == pytest.approx(99.5)
    assert math.isnan(again.feature_quantile("missing", 0.5))
    assert len(reference.to_dict()["features"]["x"]) == len(QUANTILES)
    cut = reasons_cut(again, 0.2)
    assert cut is not None and cut.reference_customers == 20  # round(0.2 x 101)
    assert reasons_cut(again, 0.0) is None


def test_a_reference_of_other_quantile_levels_is_refused() -> None:
    raw = Reference.fit(pd.DataFrame({"x": [1.0, 2.0]}), [0.1, 0.2], "t").to_dict()
    raw["quantiles"] = raw["quantiles"][:-1]
    with pytest.raises(ModelError, match="quantile levels"):
        Reference.from_dict(raw, "model")
    with pytest.raises(ModelError, match="no reference distribution"):
        Reference.from_dict(None, "model")


# --- who gets reason codes: the shipped cuts ---------------------------------------------------


def _tied_population(n: int, seed: int = 0) -> pd.DataFrame:
    """Calibrated probabilities on 6 isotonic steps, margins tied in pairs: massive ties."""
    rng = np.random.default_rng(seed)
    margin = np.round(rng.normal(0, 1, n), 1)
    steps = np.array([-1.0, -0.3, 0.2, 0.6, 1.1])
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in rng.permutation(n)],
            "raw_margin": margin,
            "probability": np.array([0.05, 0.12, 0.2, 0.35, 0.5, 0.7])[
                np.searchsorted(steps, margin)
            ],
        }
    )


def _selected(cuts: ReasonCuts, share: float, rows: pd.DataFrame) -> np.ndarray:
    cut = cuts.cut(share)
    if cut is None:
        return np.zeros(len(rows), dtype=bool)
    return cut.selects(rows["probability"], rows["raw_margin"], customer_hash(rows["customer_id"]))


@pytest.mark.parametrize("direction", [1.0, -1.0])
@pytest.mark.parametrize("n", [1, 7, 999, 2_803])
def test_exactly_the_share_of_the_reference_gets_reasons_despite_ties(
    n: int, direction: float
) -> None:
    population = _tied_population(n)
    assert population["probability"].nunique() <= 6  # the 80% quantile falls inside a step
    cuts = ReasonCuts.fit(
        population["probability"], population["raw_margin"], population["customer_id"], direction
    )
    for share in (0.001, 0.05, 0.2, 0.333, 0.5, 0.999, 1.0):
        chosen = _selected(cuts, share, population)
        # round(share x n), halves up
        assert chosen.sum() == math.floor(share * n + 0.5), share
        risk = direction * population["probability"]
        if chosen.any() and not chosen.all():
            # nobody left out is riskier than anyone chosen
            assert risk[chosen].min() >= risk[~chosen].max()
    assert not _selected(cuts, 0.0, population).any()


def test_the_decision_is_deterministic_and_the_customers_own() -> None:
    population = _tied_population(500, seed=3)
    cuts = ReasonCuts.fit(
        population["probability"], population["raw_margin"], population["customer_id"], 1.0
    )
    everyone = _selected(cuts, 0.2, population)
    # refitting, reordering the reference, or deciding one customer at a time changes nothing
    shuffled = population.sample(frac=1.0, random_state=1)
    again = ReasonCuts.fit(
        shuffled["probability"], shuffled["raw_margin"], shuffled["customer_id"], 1.0
    )
    assert again == cuts
    alone = [bool(_selected(cuts, 0.2, population.iloc[[i]])[0]) for i in range(len(population))]
    assert alone == everyone.tolist()
    # a batch of other customers (a tenth of them, or copies) decides each alike
    part = population.iloc[::10]
    assert _selected(cuts, 0.2, part).tolist() == everyone[::10].tolist()


def test_cuts_round_trip_and_refuse_a_share_off_the_grid() -> None:
    population = _tied_population(50)
    cuts = ReasonCuts.fit(
        population["probability"], population["raw_margin"], population["customer_id"], -1.0
    )
    assert ReasonCuts.from_dict(cuts.to_dict(), "model") == cuts
    assert share_step(0.2) == 200 and share_step(1.0) == 1000
    for share in (0.2005, -0.1, 1.5):
        with pytest.raises(ValueError, match="multiple of 0.001"):
            share_step(share)
    # too small a share for one customer of 50: nobody
    assert cuts.cut(0.005) is None
    broken = cuts.to_dict()
    broken["customers"] = broken["customers"][:-1]
    with pytest.raises(ModelError, match="one cut per 0.001"):
        ReasonCuts.from_dict(broken, "model")


def test_a_reference_without_cuts_is_refused_for_reasons() -> None:
    reference = Reference.fit(pd.DataFrame({"x": [1.0, 2.0]}), [0.1, 0.2], "t")
    assert reasons_cut(reference, 0.0) is None
    with pytest.raises(ModelError, match="retrain"):
        reasons_cut(reference, 0.2)
