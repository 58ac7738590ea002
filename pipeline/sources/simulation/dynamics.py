"""The customer population and the day-by-day simulation of orders, experiences and dropout.

All customers are updated together, one day at a time, with numpy arrays: the loop runs over
days (about 730), never over customers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import numpy.typing as npt

from pipeline.sources.simulation.mechanisms import Effects, dropout_hazard, seasonality

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

REGIONS = ("north", "south", "east", "west", "central")
CHANNELS = ("web", "store", "app")
CHANNEL_SHARES = (0.5, 0.3, 0.2)
PROMO_DEPTHS = (0.1, 0.2, 0.3)
MAX_DELAY_DAYS = 20
SMALL_IDS_MAX = 900_000  # populations up to this size draw ids from 10000..999999
_RING = 32  # > max promised days (5) + MAX_DELAY_DAYS: pending effects never collide


@dataclasses.dataclass(frozen=True)
class Population:
    """Fixed traits of every customer (index = position in the arrays)."""

    customer_id: IntArray
    signup_day: IntArray  # days since the extract start (negative: joined before it)
    existing: BoolArray
    member: BoolArray
    region: IntArray  # index into REGIONS
    preferred_channel: IntArray  # index into CHANNELS
    orders_per_year: FloatArray
    mean_basket: FloatArray
    price_sensitivity: FloatArray
    satisfaction_baseline: FloatArray


@dataclasses.dataclass(frozen=True)
class History:
    """What happened: one entry per order, plus each customer's final state."""

    start: dt.date  # day 0
    n_days: int
    order_customer: IntArray
    order_day: IntArray
    promised_days: IntArray
    late_days: IntArray  # 0 when on time
    problem: BoolArray
    complaint: BoolArray
    resolved: BoolArray
    returned: BoolArray
    satisfaction_after: FloatArray  # latent satisfaction right after this order's experience
    promo_depth: FloatArray  # per day of the extract
    dropout_day: IntArray  # -1 when the customer never dropped out
    final_satisfaction: FloatArray


def day_of_year(start: dt.date, n_days: int) -> IntArray:
    """Day of the year (1..366) of each day of the extract."""
    days = np.datetime64(start, "D") + np.arange(n_days)
    years = days.astype("datetime64[Y]")
    return (days - years.astype("datetime64[D]")).astype(np.int64) + 1


def draw_population(
    n: int, start: dt.date, n_days: int, effects: Effects, rng: np.random.Generator
) -> Population:
    """Draw the customers' traits; new customers join more often in the seasonal peak."""
    # 5-6 digit ids up to SMALL_IDS_MAX customers (unchanged draws: same bytes), 7 digits above.
    pool, first = (990_000, 10_000) if n <= SMALL_IDS_MAX else (9_000_000, 1_000_000)
    ids = rng.choice(pool, size=n, replace=False).astype(np.int64) + first
    existing = rng.random(n) < effects.existing_share
    weights = seasonality(day_of_year(start, n_days), effects)
    join_day = rng.choice(n_days, size=n, p=weights / weights.sum())
    before = -rng.integers(1, int(effects.existing_signup_years * 365) + 1, size=n)
    return Population(
        customer_id=ids,
        signup_day=np.where(existing, before, join_day).astype(np.int64),
        existing=existing,
        member=rng.random(n) < effects.member_share,
        region=rng.integers(0, len(REGIONS), size=n),
        preferred_channel=rng.choice(len(CHANNELS), size=n, p=CHANNEL_SHARES),
        orders_per_year=rng.gamma(effects.rate_shape, effects.rate_mean / effects.rate_shape, n),
        mean_basket=effects.basket_median * rng.lognormal(0.0, effects.basket_sigma, n),
        price_sensitivity=rng.gamma(effects.price_shape, 1.0 / effects.price_shape, n),
        satisfaction_baseline=rng.normal(effects.satisfaction_mean, effects.satisfaction_sd, n),
    )


def promo_calendar(
    start: dt.date, n_days: int, effects: Effects, rng: np.random.Generator
) -> FloatArray:
    """Discount depth of each day (0 = no promotion); Black Friday to Cyber Monday at 30%."""
    depth = np.where(
        rng.random(n_days) < effects.promo_day_share, rng.choice(PROMO_DEPTHS, size=n_days), 0.0
    )
    for year in range(start.year, start.year + n_days // 365 + 2):
        november_first = dt.date(year, 11, 1)
        thanksgiving = november_first + dt.timedelta(days=(3 - november_first.weekday()) % 7 + 21)
        for offset in range(1, 5):
            day = (thanksgiving + dt.timedelta(days=offset) - start).days
            if 0 <= day < n_days:
                depth[day] = max(PROMO_DEPTHS)
    return depth


def simulate(
    pop: Population, start: dt.date, n_days: int, effects: Effects, rng: np.random.Generator
) -> History:
    """Step through the extract one day at a time, updating every customer at once."""
    n = len(pop.customer_id)
    season = seasonality(day_of_year(start, n_days), effects)
    depth = promo_calendar(start, n_days, effects, rng)
    base_daily = pop.orders_per_year / 365.0
    member = pop.member.astype(np.float64)
    revert = -np.expm1(-np.log(2) / effects.reversion_half_life_days)
    decay = np.exp(-np.log(2) / effects.unresolved_half_life_days)

    satisfaction = pop.satisfaction_baseline.copy()
    unresolved = np.zeros(n)
    gap_start = rng.exponential(1.0 / np.maximum(base_daily, 1e-6))
    last_order = np.where(pop.existing, -np.minimum(gap_start, 365.0), pop.signup_day)
    dropped = np.zeros(n, dtype=bool)
    dropout_day = np.full(n, -1, dtype=np.int64)
    final_satisfaction = np.full(n, np.nan)
    pending_s = np.zeros((_RING, n))
    pending_u = np.zeros((_RING, n))
    chunks: list[dict[str, np.ndarray]] = []

    for day in range(n_days):
        slot = day % _RING
        satisfaction += pending_s[slot] + (pop.satisfaction_baseline - satisfaction) * revert
        unresolved = unresolved * decay + pending_u[slot]
        pending_s[slot] = 0.0
        pending_u[slot] = 0.0

        joined = pop.signup_day <= day
        new_today = pop.signup_day == day
        missed = (day - last_order) * base_daily
        hazard = dropout_hazard(satisfaction, unresolved, missed, member, effects)
        leave = joined & ~dropped & ~new_today & (rng.random(n) < -np.expm1(-hazard))
        dropped |= leave
        dropout_day[leave] = day
        final_satisfaction[leave] = satisfaction[leave]

        rate = base_daily * season[day] * np.exp(effects.satisfaction_rate_effect * satisfaction)
        if depth[day] > 0:
            rate = rate * np.exp(effects.promo_lift * pop.price_sensitivity * depth[day])
        buys = (joined & ~dropped & (rng.random(n) < -np.expm1(-rate))) | new_today
        idx = np.flatnonzero(buys)
        chunk = _experience(idx, day, satisfaction, effects, rng)
        target = (day + chunk["promised_days"] + chunk["late_days"]) % _RING
        pending_s[target, idx] += chunk["delta"]
        pending_u[target, idx] += chunk["complaint"] & ~chunk["resolved"]
        last_order[idx] = day
        chunks.append(chunk)

    final_satisfaction = np.where(dropped, final_satisfaction, satisfaction)
    cat = {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}
    return History(
        start=start,
        n_days=n_days,
        order_customer=cat["customer"],
        order_day=cat["day"],
        promised_days=cat["promised_days"],
        late_days=cat["late_days"],
        problem=cat["problem"],
        complaint=cat["complaint"],
        resolved=cat["resolved"],
        returned=cat["returned"],
        satisfaction_after=cat["satisfaction_after"],
        promo_depth=depth,
        dropout_day=dropout_day,
        final_satisfaction=final_satisfaction,
    )


def _experience(
    idx: IntArray, day: int, satisfaction: FloatArray, effects: Effects, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Draw what each of today's orders goes through and how it moves satisfaction."""
    m = len(idx)
    u = rng.random((m, 6))
    late = u[:, 0] < effects.late_prob
    late_days = np.where(
        late, np.minimum(rng.geometric(1.0 / effects.late_mean_days, m), MAX_DELAY_DAYS), 0
    )
    problem = u[:, 1] < effects.problem_prob
    complaint = (problem & (u[:, 2] < effects.problem_complaint_prob)) | (
        late & (u[:, 3] < effects.late_complaint_prob)
    )
    resolved = complaint & (u[:, 4] < effects.resolved_prob)
    returned = np.where(
        problem, u[:, 5] < effects.problem_return_prob, u[:, 5] < effects.background_return_prob
    )
    delta = (
        np.where(late | problem, 0.0, effects.smooth_order_gain)
        - late * (effects.late_penalty + effects.late_penalty_per_day * np.minimum(late_days, 10))
        - problem * effects.problem_penalty
        + resolved * effects.resolved_complaint_gain
        - (complaint & ~resolved) * effects.unresolved_complaint_penalty
    )
    return {
        "customer": idx.astype(np.int64),
        "day": np.full(m, day, dtype=np.int64),
        "promised_days": rng.integers(2, 6, size=m),
        "late_days": late_days.astype(np.int64),
        "problem": problem,
        "complaint": complaint,
        "resolved": resolved,
        "returned": returned,
        "delta": delta,
        "satisfaction_after": satisfaction[idx] + delta,
    }
