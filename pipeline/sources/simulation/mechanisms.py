"""The true mechanisms of the simulation: every coefficient, and the functions that use them.

These numbers are the ground truth later tests check models against, so they live in one frozen
object, are copied into ``generate_manifest.json`` and are tabled in ``docs/simulation.md``
(a unit test keeps that table in step with this file).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class Effects:
    """Coefficients of the simulated retailer (units in the field comments)."""

    # --- population -------------------------------------------------------------------------
    existing_share: float = 0.35  # customers who signed up before the extract starts
    existing_signup_years: float = 3.0  # their signup dates spread over this many years before
    member_share: float = 0.30  # loyalty members (independent of everything else)
    rate_shape: float = 2.0  # base orders/year ~ Gamma(shape, mean/shape)
    rate_mean: float = 7.0  # orders per year
    basket_median: float = 40.0  # mean basket ~ LogNormal(log(median), sigma), currency units
    basket_sigma: float = 0.5
    order_value_sigma: float = 0.35  # order value = mean basket * LogNormal(-s^2/2, s)
    price_shape: float = 2.0  # price sensitivity ~ Gamma(shape, 1/shape) (mean 1)
    satisfaction_mean: float = 0.3  # personal baseline satisfaction ~ Normal(mean, sd)
    satisfaction_sd: float = 0.7

    # --- demand -------------------------------------------------------------------------------
    season_amplitude: float = 0.9  # rate * (1 + A * exp(-((doy - peak) / width)^2 / 2))
    season_peak_doy: float = 340.0  # early December
    season_width_days: float = 20.0
    promo_day_share: float = 0.08  # share of days with a site-wide discount (plus Black Friday)
    promo_lift: float = 4.0  # rate * exp(lift * price_sensitivity * depth) on promo days
    satisfaction_rate_effect: float = 0.2  # rate * exp(effect * satisfaction)

    # --- experiences (per order) -----------------------------------------------------------
    late_prob: float = 0.08
    late_mean_days: float = 3.5  # days late ~ Geometric(1 / mean) (>= 1), capped at 20
    problem_prob: float = 0.05  # damaged / wrong / faulty product
    problem_return_prob: float = 0.6
    problem_complaint_prob: float = 0.5
    late_complaint_prob: float = 0.25
    background_return_prob: float = 0.03  # "changed my mind" returns, no satisfaction effect
    resolved_prob: float = 0.7
    resolution_hours_median: float = 20.0  # LogNormal(log(median), sigma)
    resolution_hours_sigma: float = 0.8

    # --- satisfaction dynamics (applied on the delivery day) ---------------------------------
    smooth_order_gain: float = 0.05
    late_penalty: float = 0.35
    late_penalty_per_day: float = 0.05  # days late capped at 10
    problem_penalty: float = 0.9
    resolved_complaint_gain: float = 0.4  # service recovery
    unresolved_complaint_penalty: float = 0.5
    reversion_half_life_days: float = 45.0  # satisfaction drifts back to the personal baseline
    unresolved_half_life_days: float = 60.0  # open-complaint load decays with this half-life

    # --- readings of satisfaction ------------------------------------------------------------
    review_prob: float = 0.12
    review_prob_problem: float = 0.45
    review_intercept: float = 3.3  # round(3.3 + 1.1 S - 1.2 problem - 0.5 late + N(0, 0.8))
    review_slope: float = 1.1
    review_problem_shift: float = -1.2
    review_late_shift: float = -0.5
    review_noise: float = 0.8
    survey_prob: float = 0.06
    survey_intercept: float = 3.3  # round(3.3 + 1.0 S + N(0, 0.9)), clipped to 1..5
    survey_slope: float = 1.0
    survey_noise: float = 0.9
    nps_prob: float = 0.04
    nps_intercept: float = 7.0  # round(7 + 2 S + N(0, 1.5)), clipped to 0..10
    nps_slope: float = 2.0
    nps_noise: float = 1.5

    # --- dropout hazard (per day) ------------------------------------------------------------
    hazard_floor: float = 0.0003
    hazard_span: float = 0.006
    hazard_steepness: float = 3.0
    hazard_midpoint: float = -0.5
    hazard_unresolved: float = 0.7  # log-hazard per unit of open-complaint load
    hazard_gap: float = 0.3  # log-hazard per expected order missed (capped)
    hazard_gap_cap: float = 5.0
    hazard_member: float = -0.6  # log-hazard for loyalty members
    # region and channel: deliberately no effect on anything (null mechanisms)

    def as_dict(self) -> dict[str, Any]:
        """All coefficients as a plain dict (for the manifest)."""
        return dataclasses.asdict(self)


def seasonality(day_of_year: npt.ArrayLike, effects: Effects) -> FloatArray:
    """Demand multiplier for a day of the year (1 outside the Nov-Dec peak)."""
    z = (
        np.asarray(day_of_year, dtype=np.float64) - effects.season_peak_doy
    ) / effects.season_width_days
    return 1.0 + effects.season_amplitude * np.exp(-0.5 * z * z)


def satisfaction_hazard(satisfaction: npt.ArrayLike, effects: Effects) -> FloatArray:
    """Daily dropout hazard from satisfaction alone: steep when low, flat when high."""
    s = np.asarray(satisfaction, dtype=np.float64)
    logistic = 1.0 / (1.0 + np.exp(effects.hazard_steepness * (s - effects.hazard_midpoint)))
    return effects.hazard_floor + effects.hazard_span * logistic


def dropout_hazard(
    satisfaction: npt.ArrayLike,
    unresolved_load: npt.ArrayLike,
    expected_orders_missed: npt.ArrayLike,
    member: npt.ArrayLike,
    effects: Effects,
) -> FloatArray:
    """Return the true daily dropout hazard (the mechanism models should recover).

    ``h = (floor + span / (1 + exp(k (S - m)))) * exp(b_u U + b_g min(G, cap) + b_m member)``
    where ``G`` = days since the last order x base orders per day.
    """
    gap = np.minimum(np.asarray(expected_orders_missed, dtype=np.float64), effects.hazard_gap_cap)
    log_mult = (
        effects.hazard_unresolved * np.asarray(unresolved_load, dtype=np.float64)
        + effects.hazard_gap * gap
        + effects.hazard_member * np.asarray(member, dtype=np.float64)
    )
    return satisfaction_hazard(satisfaction, effects) * np.exp(log_mult)
