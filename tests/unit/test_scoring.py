"""score_customers: columns, business labels, reasons; every row depends on its customer only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.business import QUANTILES, ReasonCuts, Reference
from pipeline.config import BusinessParams
from pipeline.reasons import FeatureDictionary
from pipeline.scoring import (
    ScoringModel,
    ScoringRules,
    output_columns,
    rules_summary,
    score_customers,
)
from pipeline.targets import get_target
from tests.support.demo_panel import tiny_catalog
from tests.support.params import fixed_labels

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")
FEATURES = ["days_since_last_order", "lifetime_orders", "spend_sum_365d", "p_churn", "p_rep", "ev"]


def _reference(scale: float = 1.0) -> Reference:
    """A reference population in which each feature is uniform on a known range."""
    ranges = {
        "days_since_last_order": (0.0, 400.0),
        "lifetime_orders": (1.0, 11.0),
        "spend_sum_365d": (0.0, 1000.0),
    }
    features = {
        name: tuple(lo + q * (hi - lo) for q in QUANTILES) for name, (lo, hi) in ranges.items()
    }
    # uniform predictions: the 0.8 quantile is 0.8 x scale (value model: high value line 800)
    probability = tuple(scale * i / 1000 for i in range(1001))
    # reference customers R0000..R0999 at probabilities 0.000..0.999: the top 20% is >= 0.8
    ids = [f"R{i:04d}" for i in range(1000)]
    cuts = ReasonCuts.fit(np.arange(1000) / 1000, np.arange(1000) / 1000, ids, 1.0)
    return Reference("test cutoff 2024-03-01", 1000, probability, features, cuts=cuts)


class FakeModel:
    """Prediction (and raw margin) = the value of one feature; contributions = the features."""

    def __init__(self, column: str, scale: float = 1.0) -> None:
        self.column = column
        self.feature_names = FEATURES
        self.features = {"reference": _reference(scale).to_dict()}

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.column].to_numpy(dtype="float64")

    def raw_margin(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.column].to_numpy(dtype="float64")

    def derive(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[["days_since_last_order", "spend_sum_365d"]].astype("float64").copy()
        out["spend_sum_365d"] = -out["spend_sum_365d"]  # spending lowers churn risk
        out["base_value"] = 0.0
        return out


def _snapshot() -> pd.DataFrame:
    # c is listed first to check that output is sorted by customer_id
    return pd.DataFrame(
        {
            "customer_id": pd.array(["c", "a", "b", "d"], dtype="string"),
            "days_since_last_order": [200.0, 10.0, 60.0, 400.0],
            "lifetime_orders": [2.0, 11.0, 5.0, 1.0],
            "spend_sum_365d": [100.0, 5000.0, 0.0, np.nan],  # a: a bulk order; d: no spend
            "p_churn": [0.85, 0.1, 0.3, 0.5],  # c high, a low, b medium, d high (at the edge)
            "p_rep": [0.1, 0.9, 0.5, 0.7],  # c low, a high, b medium, d high (at the edge)
            "ev": [100.0, 900.0, 500.0, 0.0],  # expected spend: c low, a high, b medium, d low
        }
    )


def _models(*names: str) -> list[ScoringModel]:
    labels = fixed_labels(value=180)
    made = {
        "churn": ScoringModel(
            get_target(labels, "churn"), "loyalty-churn", "3", FakeModel("p_churn")
        ),
        "repurchase": ScoringModel(
            get_target(labels, "repurchase"), "models/repurchase", "local", FakeModel("p_rep")
        ),
        "value": ScoringModel(
            get_target(labels, "value"), "models/value", "local", FakeModel("ev", 1000.0)
        ),
    }
    return [made[n] for n in (names or made)]


def _dictionary() -> FeatureDictionary:
    return FeatureDictionary(
        tiny_catalog(
            {"name": "days_since_last_order", "reason": "No order for {value:.0f} days"},
            {"name": "spend_sum_365d", "concept": "monetary"},
        )
    )


def _grid() -> tuple[tuple[str, ...], ...]:
    # recency score r (1-5) in rows, frequency f in columns: name = "r<r>f<f>"
    return tuple(tuple(f"r{r}f{f}" for f in range(1, 6)) for r in range(1, 6))


RULES = ScoringRules(BusinessParams(), _grid(), reasons_top_share=0.2, top_reasons=3)


def _score(
    snapshot: pd.DataFrame, models: list[ScoringModel] | None = None, rules: ScoringRules = RULES
) -> pd.DataFrame:
    return score_customers(snapshot, AS_OF, models or _models(), rules, _dictionary())


def test_columns_bands_tiers_and_value() -> None:
    snap = _snapshot()
    before = snap.copy()
    out = _score(snap)
    pd.testing.assert_frame_equal(snap, before)  # input not mutated
    assert tuple(out.columns) == output_columns([m.target for m in _models()], 3)
    assert list(out["customer_id"]) == ["a", "b", "c", "d"]
    assert list(out["loyalty_tier"]) == ["high", "medium", "low", "high"]
    assert list(out["churn_risk_band"]) == ["low", "medium", "high", "high"]
    # expected value: the value model's prediction; tiers on its reference (800 / 500)
    assert out["expected_value"].tolist() == pytest.approx([900.0, 500.0, 100.0, 0.0])
    assert out["value_at_risk"].tolist() == pytest.approx([90.0, 150.0, 85.0, 0.0])
    assert list(out["value_tier"]) == ["high", "medium", "low", "low"]
    assert out["high_value"].tolist() == [True, False, False, False]
    assert set(out["churn_model_version"]) == {"3"}
    assert (out["as_of"] == AS_OF).all()


def test_rfm_segment_uses_the_shipped_quintile_edges() -> None:
    out = _score(_snapshot()).set_index("customer_id")
    # recency edges 80/160/240/320 days (lower is better), frequency edges 3/5/7/9 orders
    assert out.loc["a", "rfm_segment"] == "r5f5"  # 10 days, 11 orders
    assert out.loc["b", "rfm_segment"] == "r5f2"  # 60 days, 5 orders (on the edge: lower)
    assert out.loc["c", "rfm_segment"] == "r3f1"  # 200 days, 2 orders
    assert out.loc["d", "rfm_segment"] == "r1f1"  # 400 days, 1 order


def test_reasons_only_above_the_shipped_cut() -> None:
    out = _score(_snapshot()).set_index("customer_id")
    # reference probabilities uniform: top 20% = churn probability >= 0.8, customer c only
    assert out["reason_1"].notna().tolist() == [False, False, True, False]
    assert out.loc["c", "reason_1"] == "No order for 200 days"
    # only risk-raising contributions become reasons: spend lowers risk, so no reason_2
    assert out["reason_2"].isna().all()
    none = ScoringRules(BusinessParams(), _grid(), reasons_top_share=0.0)
    assert _score(_snapshot(), rules=none)["reason_1"].isna().all()
    summary = rules_summary(_models(), RULES)
    assert summary["reasons_threshold"] == pytest.approx(0.8)
    assert summary["reasons_cut"]["reference_customers"] == 200


def _tied(n: int, seed: int) -> pd.DataFrame:
    """A population whose churn probabilities take 4 values (a calibration with big steps).

    Every customer has days since the last order > 0, so whoever is chosen has a reason.
    """
    rng = np.random.default_rng(seed)
    population = _population(seed, n)
    population["p_churn"] = rng.choice([0.1, 0.3, 0.6, 0.9], size=n, p=[0.4, 0.3, 0.2, 0.1])
    population["days_since_last_order"] += 1.0
    return population


def _tied_models(reference: pd.DataFrame) -> list[ScoringModel]:
    """The models of :func:`_models`, the churn one shipping cuts fitted on ``reference``."""
    models = _models()
    churn = models[0].predictor
    p = reference["p_churn"]  # the fake margin is the probability: ties in both
    raw = {
        **churn.features["reference"],
        "reason_cuts": ReasonCuts.fit(p, p, reference["customer_id"], 1.0).to_dict(),
    }
    churn.features = {"reference": raw}  # type: ignore[misc]
    return models


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 300), step=st.integers(0, 1000))
def test_on_the_reference_exactly_the_share_gets_reasons(seed: int, n: int, step: int) -> None:
    # Massive ties: 4 probabilities, the margin equal to the probability; the customer hash
    # decides inside the tie, so the share is exact on the population the cuts were fitted on.
    population = _tied(n, seed)
    models = _tied_models(population)
    # (the value-at-risk line off: this is the rank rule alone)
    rules = ScoringRules(
        BusinessParams(), _grid(), reasons_top_share=step / 1000, reasons_min_value_at_risk=1e300
    )
    out = _score(population, models, rules)
    has_reasons = out["reason_1"].notna()
    assert has_reasons.sum() == (2 * step * n + 1000) // 2000  # round(share x n), halves up
    # nobody left out is riskier than anyone chosen
    p = out["churn_probability"]
    if has_reasons.any() and not has_reasons.all():
        assert p[has_reasons].min() >= p[~has_reasons].max()
    # deterministic, whatever the row order; and each customer decided alone as in the batch
    again = _score(population.iloc[::-1], models, rules)
    pd.testing.assert_frame_equal(out, again)
    one = population.sample(1, random_state=seed)
    alone = _score(one, models, rules).set_index("customer_id")
    batch = out.set_index("customer_id").loc[alone.index]
    pd.testing.assert_frame_equal(alone, batch)


def test_missing_model_leaves_its_labels_empty() -> None:
    out = _score(_snapshot(), _models("churn"))
    assert "repurchase_probability" not in out.columns
    assert "expected_value" not in out.columns
    assert out["loyalty_tier"].isna().all() and out["value_tier"].isna().all()
    assert out["value_at_risk"].isna().all() and out["high_value"].isna().all()
    assert out["churn_risk_band"].notna().all()


def test_the_manifest_says_what_expected_value_means() -> None:
    summary = rules_summary(_models(), RULES)
    assert summary["expected_value"] == {
        "target": "value",
        "horizon_days": 180,
        "meaning": "expected spend in the next 180 days",
    }
    assert summary["business"]["high_value_line"] == pytest.approx(800.0)
    assert rules_summary(_models("churn"), RULES)["expected_value"] is None


def test_empty_snapshot_gives_empty_output() -> None:
    out = _score(_snapshot().iloc[0:0])
    assert out.empty and tuple(out.columns) == output_columns([m.target for m in _models()], 3)


def test_a_model_without_a_reference_is_refused() -> None:
    model = _models("churn")[0]
    model.predictor.features = {}  # type: ignore[misc]
    with pytest.raises(Exception, match="no reference distribution"):
        _score(_snapshot(), [model])


def _population(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": pd.array([f"C{i:05d}" for i in rng.permutation(n)], dtype="string"),
            "days_since_last_order": rng.integers(0, 500, n).astype(float),
            "lifetime_orders": rng.integers(1, 15, n).astype(float),
            "spend_sum_365d": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(1.0, 300.0, n)),
            "p_churn": rng.random(n),
            "p_rep": rng.random(n),
            "ev": rng.gamma(1.0, 300.0, n),
        }
    )


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 80), data=st.data())
def test_scoring_any_subset_gives_exactly_the_rows_of_scoring_everyone(
    seed: int, n: int, data: st.DataObject
) -> None:
    population = _population(seed, n)
    everyone = _score(population).set_index("customer_id")
    keep = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    subset = population.loc[np.asarray(keep, dtype=bool)]
    part = _score(subset).set_index("customer_id")
    pd.testing.assert_frame_equal(part, everyone.loc[part.index], check_exact=True)


class LeverModel(FakeModel):
    """FakeModel whose ``lifetime_orders`` (a service feature here) adds ``orders - offset``."""

    def __init__(self, column: str, offset: float) -> None:
        super().__init__(column)
        self.offset = offset

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = super().contributions(frame)
        out["lifetime_orders"] = frame["lifetime_orders"].astype("float64") - self.offset
        return out


def _lever_dictionary() -> FeatureDictionary:
    return FeatureDictionary(
        tiny_catalog(
            {"name": "days_since_last_order", "reason": "No order for {value:.0f} days"},
            {"name": "spend_sum_365d", "concept": "monetary"},
            {
                "name": "lifetime_orders",
                "concept": "service",
                "reason": "Unresolved complaints: {value:.0f}",
            },
        )
    )


def _lever_score(offset: float, rules: ScoringRules = RULES) -> pd.DataFrame:
    models = _models()
    models[0] = ScoringModel(models[0].target, "loyalty-churn", "3", LeverModel("p_churn", offset))
    out = score_customers(_snapshot(), AS_OF, models, rules, _lever_dictionary())
    return out.set_index("customer_id")


def test_the_strongest_lever_sets_the_suggested_action() -> None:
    actions = BusinessParams().actions
    out = _lever_score(offset=0.0)
    # c gets reasons (top 20%); its service feature raises its risk: a service call
    assert out.loc["c", "action_concept"] == "service"
    assert out.loc["c", "action_reason"] == "Unresolved complaints: 2"
    assert out.loc["c", "suggested_action"] == actions["service"]
    # recency is a signal, never an action, however strong
    assert out.loc["c", "reason_1"] == "No order for 200 days"
    # nobody else was explained: no action either
    assert out.loc[["a", "b", "d"], ["action_concept", "suggested_action"]].isna().all().all()


def test_no_lever_raising_the_risk_gives_the_fallback_action() -> None:
    out = _lever_score(offset=5.0)  # c: 2 - 5 < 0, service lowers its risk
    assert out.loc["c", "action_concept"] == "none"
    assert pd.isna(out.loc["c", "action_reason"])
    assert out.loc["c", "suggested_action"] == BusinessParams().actions["none"]


def test_customers_with_much_value_at_risk_are_explained_whatever_their_rank() -> None:
    # value at risk: a 90, b 150, c 85, d 0; a line of 100 adds b (churn 0.3, below the cut)
    rules = ScoringRules(BusinessParams(), _grid(), 0.2, 3, reasons_min_value_at_risk=100.0)
    out = _lever_score(offset=0.0, rules=rules)
    assert out["reason_1"].notna().to_dict() == {"a": False, "b": True, "c": True, "d": False}
    assert out.loc["b", "suggested_action"] == BusinessParams().actions["service"]
    # each customer decided on their own row: alone as in the batch
    models = _models()
    models[0] = ScoringModel(models[0].target, "loyalty-churn", "3", LeverModel("p_churn", 0.0))
    one = _snapshot().iloc[[2]]  # b
    alone = score_customers(one, AS_OF, models, rules, _lever_dictionary()).set_index("customer_id")
    pd.testing.assert_frame_equal(alone, out.loc[["b"]])
    # the default line: a high-value customer at the medium risk line (800 x 0.2 = 160)
    assert rules_summary(_models(), RULES)["reasons_min_value_at_risk"] == pytest.approx(160.0)
