"""The simulation's truth: the resumable day loop, the latent state and the expected spend."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DirtyRates, GenerateParams
from pipeline.sources import synthetic
from pipeline.sources.simulation import dynamics
from pipeline.sources.simulation.mechanisms import Effects, dropout_hazard
from pipeline.sources.simulation.truth import expected_future_spend, latent_state

# No dirty rows: the realised spend of the export is then exactly the spend of the true orders,
# which is what the truth is the expectation of.
CLEAN = DirtyRates(**dict.fromkeys(DirtyRates.model_fields, 0.0))
PARAMS = GenerateParams(seed=5, n_customers=2000, dirty=CLEAN)
CUTOFF, HORIZON = dt.date(2024, 7, 1), 180  # the window ends 2024-12-28, inside the extract


def _history_fields(hist: dynamics.History) -> dict[str, object]:
    return {f.name: getattr(hist, f.name) for f in dataclasses.fields(hist)}


def _start(params: GenerateParams) -> tuple[dynamics.World, dynamics.State, np.random.Generator]:
    n_days = (params.end - params.start).days + 1
    rng = np.random.default_rng(params.seed)
    pop = dynamics.draw_population(params.n_customers, params.start, n_days, Effects(), rng)
    world, state = dynamics.begin(pop, params.start, n_days, Effects(), rng)
    return world, state, rng


# --- the resumable day loop ---------------------------------------------------------------


def test_advancing_in_pieces_gives_exactly_the_history_of_one_run() -> None:
    params = GenerateParams(seed=3, n_customers=300)
    n_days = (params.end - params.start).days + 1
    rng = np.random.default_rng(params.seed)
    pop = dynamics.draw_population(params.n_customers, params.start, n_days, Effects(), rng)
    whole = dynamics.simulate(pop, params.start, n_days, Effects(), rng)

    world, state, rng = _start(params)
    # uneven pieces, one of a single day, one of zero days: the cut points must not matter
    chunks = [
        chunk
        for days in (1, 0, 181, 365, n_days - 547)
        for chunk in dynamics.advance(world, state, days, rng)
    ]
    pieces = dynamics.history(params.start, world, state, chunks)
    for name, value in _history_fields(whole).items():
        np.testing.assert_array_equal(_history_fields(pieces)[name], value, err_msg=name)
    with pytest.raises(ValueError, match="past the world"):
        dynamics.advance(world, state, 1, rng)


def test_one_stacked_copy_continues_exactly_like_the_original() -> None:
    world, state, rng = _start(GenerateParams(seed=4, n_customers=300))
    dynamics.advance(world, state, 200, rng)
    every = np.arange(len(world.signup_day))
    stacked_world, stacked = dynamics.repeat(world, state.copy(), every, 1)
    twin_rng = copy.deepcopy(rng)
    original = dynamics.advance(world, state, 100, rng)
    twin = dynamics.advance(stacked_world, stacked, 100, twin_rng)
    for ours, theirs in zip(original, twin, strict=True):
        for key, value in ours.items():
            np.testing.assert_array_equal(theirs[key], value, err_msg=key)
    np.testing.assert_array_equal(stacked.satisfaction, state.satisfaction)


# --- expected future spend ----------------------------------------------------------------


@pytest.fixture(scope="module")
def truth_and_realised() -> pd.DataFrame:
    truth = expected_future_spend(PARAMS, CUTOFF, HORIZON, paths=32, seed=0)
    export = synthetic.generate(PARAMS)
    lines = export.transactions
    ts = pd.to_datetime(lines["invoice_ts"], format="%Y-%m-%d %H:%M:%S")
    start = pd.Timestamp(CUTOFF)
    window = ts.ge(start) & ts.lt(start + pd.Timedelta(days=HORIZON))
    sales = lines[window & ~lines["invoice"].str.startswith("C")]
    # gross amount: quantity x unit price of the sale lines (the clean stage's gross_amount)
    gross = sales["quantity"] * sales["unit_price"]
    spend = gross.groupby(sales["customer_id"].astype(str)).sum()
    dropout = export.ground_truth.set_index("customer_id")["dropout_date"]
    out = truth.set_index("customer_id")
    out["realised_spend"] = spend.reindex(out.index, fill_value=0.0)
    out["dropped_before"] = dropout.reindex(out.index).dt.tz_localize(None).lt(start)
    assert truth["customer_id"].tolist() == export.customers["customer_id"].tolist()
    return out


def test_one_row_per_customer_with_the_documented_columns(
    truth_and_realised: pd.DataFrame,
) -> None:
    frame = truth_and_realised
    assert len(frame) == PARAMS.n_customers and frame.index.is_unique
    assert frame["expected_spend"].ge(0).all() and frame["expected_orders"].ge(0).all()
    assert frame["alive_at_cutoff"].dtype == bool


def test_who_dropped_out_before_the_cutoff_is_expected_to_spend_nothing(
    truth_and_realised: pd.DataFrame,
) -> None:
    frame = truth_and_realised
    # the replayed state is the export's: its dropout flag matches the export's dropout dates
    assert (frame["alive_at_cutoff"] == ~frame["dropped_before"]).all()
    dead = frame[~frame["alive_at_cutoff"]]
    assert len(dead) > 200  # about 30% by mid-2024
    assert (dead["expected_spend"] == 0).all() and (dead["expected_orders"] == 0).all()
    assert (dead["realised_spend"] == 0).all()


def test_mean_expected_spend_matches_the_realised_mean(truth_and_realised: pd.DataFrame) -> None:
    frame = truth_and_realised
    # Customers' futures are independent given the state, so realised - expected has mean 0
    # with standard error sd / sqrt(n) (the realised draw plus the Monte Carlo error of 32
    # paths): 1.7% of the mean here, the gap measured +0.55 standard errors. Tolerance: 4.
    gap = frame["realised_spend"] - frame["expected_spend"]
    standard_error = gap.std() / np.sqrt(len(gap))
    assert abs(gap.mean()) < 4 * standard_error
    assert standard_error < 0.03 * frame["realised_spend"].mean()  # the check has teeth


def test_expected_spend_ranks_the_realised_spend(truth_and_realised: pd.DataFrame) -> None:
    frame = truth_and_realised
    spearman = frame["expected_spend"].corr(frame["realised_spend"], method="spearman")
    assert spearman > 0.8  # measured 0.888 (seed 5, 2,000 customers, 32 paths)
    alive = frame[frame["alive_at_cutoff"]]
    alive_spearman = alive["expected_spend"].corr(alive["realised_spend"], method="spearman")
    assert alive_spearman > 0.65  # measured 0.770: without the dropouts' sure zeros


def test_a_window_past_the_extract_end_and_the_seed() -> None:
    params = GenerateParams(seed=2, n_customers=300)
    late = expected_future_spend(params, dt.date(2024, 12, 1), 90, paths=4, seed=1)
    assert np.isfinite(late["expected_spend"]).all() and late["expected_spend"].gt(0).any()
    again = expected_future_spend(params, dt.date(2024, 12, 1), 90, paths=4, seed=1)
    pd.testing.assert_frame_equal(late, again)
    other = expected_future_spend(params, dt.date(2024, 12, 1), 90, paths=4, seed=2)
    assert not late["expected_orders"].equals(other["expected_orders"])


def test_a_cutoff_outside_the_extract_or_an_empty_window_is_an_error() -> None:
    params = GenerateParams(n_customers=10)
    with pytest.raises(ValueError, match="outside"):
        expected_future_spend(params, dt.date(2022, 12, 31), 30)
    with pytest.raises(ValueError, match="outside"):
        expected_future_spend(params, dt.date(2025, 1, 2), 30)  # end + 1 day is the last one
    with pytest.raises(ValueError, match="at least 1"):
        expected_future_spend(params, dt.date(2024, 1, 1), 0)


# --- latent state -------------------------------------------------------------------------

# A cutoff early in the extract (few dropouts, many not yet signed up), one mid-way, and the day
# after the extract end, where the state is the ground truth's final state.
STATE_CUTOFFS = [dt.date(2024, 7, 1), dt.date(2023, 3, 1), dt.date(2025, 1, 1)]


@pytest.fixture(scope="module")
def state_and_truth() -> tuple[pd.DataFrame, pd.DataFrame]:
    export = synthetic.generate(PARAMS)
    return latent_state(PARAMS, STATE_CUTOFFS), export.ground_truth.set_index("customer_id")


def _at(frame: pd.DataFrame, cutoff: dt.date) -> pd.DataFrame:
    return frame[frame["cutoff"] == pd.Timestamp(cutoff, tz="UTC")].set_index("customer_id")


def test_one_row_per_customer_and_cutoff_keyed_like_the_panel(
    state_and_truth: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    state, truth = state_and_truth
    assert len(state) == len(STATE_CUTOFFS) * PARAMS.n_customers
    assert not state.duplicated(["cutoff", "customer_id"]).any()
    assert str(state["cutoff"].dtype) == "datetime64[us, UTC]"  # the panel's cutoff dtype
    assert state["customer_id"].dtype == "string"
    assert state["cutoff"].is_monotonic_increasing
    assert _at(state, STATE_CUTOFFS[0]).index.tolist() == sorted(truth.index, key=int)


def test_alive_and_signed_up_agree_with_the_ground_truth_dates(
    state_and_truth: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    state, truth = state_and_truth
    for cutoff in STATE_CUTOFFS:
        at = _at(state, cutoff)
        start = pd.Timestamp(cutoff, tz="UTC")
        dropout = truth["dropout_date"].reindex(at.index)
        # dropout_date is the first day without orders: who left on the cutoff day is alive at it
        assert (at["alive_at_cutoff"] == ~dropout.lt(start)).all(), cutoff
        signup = truth["signup_date"].reindex(at.index)
        assert (at["signed_up_at_cutoff"] == signup.lt(start)).all(), cutoff
    assert (~_at(state, STATE_CUTOFFS[-1])["alive_at_cutoff"]).sum() > 400  # the check has teeth


def test_the_state_after_the_extract_is_the_ground_truths_final_state(
    state_and_truth: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    state, truth = state_and_truth
    end = _at(state, STATE_CUTOFFS[-1])
    alive = end[end["alive_at_cutoff"]]
    final = truth["final_satisfaction"].reindex(alive.index)
    np.testing.assert_allclose(alive["satisfaction"], final)
    np.testing.assert_allclose(
        end["satisfaction_baseline"], truth["satisfaction_baseline"].reindex(end.index)
    )
    # an open-complaint load needs an unresolved complaint at some time
    assert truth["n_unresolved"].reindex(end.index)[end["unresolved_load"] > 0].gt(0).all()
    assert (end["unresolved_load"] > 0).sum() > 20


def test_the_hazard_is_the_mechanisms_hazard_of_the_state_and_nan_without_one(
    state_and_truth: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    state, _ = state_and_truth
    live = state["alive_at_cutoff"] & state["signed_up_at_cutoff"]
    assert state.loc[~live, "dropout_hazard"].isna().all()
    rows = state[live]
    expected = dropout_hazard(
        rows["satisfaction"],
        rows["unresolved_load"],
        rows["expected_orders_missed"],
        rows["loyalty_member"],
        Effects(),
    )
    np.testing.assert_allclose(rows["dropout_hazard"], expected)
    assert (
        rows["dropout_hazard"] >= rows["satisfaction_hazard"] * np.exp(Effects().hazard_member)
    ).all()


def test_one_pass_over_several_cutoffs_equals_one_call_per_cutoff_and_repeats() -> None:
    params = GenerateParams(seed=2, n_customers=300)
    cutoffs = [dt.date(2024, 2, 1), dt.date(2023, 9, 1)]
    together = latent_state(params, cutoffs)
    apart = pd.concat([latent_state(params, [c]) for c in sorted(cutoffs)], ignore_index=True)
    pd.testing.assert_frame_equal(together, apart)
    pd.testing.assert_frame_equal(together, latent_state(params, cutoffs))
    spend = expected_future_spend(params, cutoffs[0], 30, paths=2)  # the same replay
    at = together[together["cutoff"] == pd.Timestamp(cutoffs[0], tz="UTC")]
    assert at["alive_at_cutoff"].tolist() == spend["alive_at_cutoff"].tolist()


def test_latent_state_without_a_cutoff_or_outside_the_extract_is_an_error() -> None:
    params = GenerateParams(n_customers=10)
    with pytest.raises(ValueError, match="no cutoff"):
        latent_state(params, [])
    with pytest.raises(ValueError, match="outside"):
        latent_state(params, [dt.date(2024, 1, 1), dt.date(2025, 1, 2)])
