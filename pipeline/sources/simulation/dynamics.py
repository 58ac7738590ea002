"""The customer population and the day-by-day simulation of orders, experiences and dropout.

All customers are updated together, one day at a time, with numpy arrays: the loop runs over
days (about 730), never over customers. The loop is resumable: :func:`begin` returns the fixed
:class:`World` and the :class:`State` before day 0, :func:`advance` moves the state on by any
number of days, so a run can be stopped at a cutoff and its future simulated many times
(:mod:`pipeline.sources.simulation.truth`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

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


@dataclasses.dataclass(frozen=True)
class World:
    """What the day loop reads and never changes: per-row traits, the calendar, the constants.

    A row is one customer in the normal run; :func:`repeat` stacks ``k`` copies of chosen
    customers so that several futures can be simulated side by side.
    """

    effects: Effects
    signup_day: IntArray
    satisfaction_baseline: FloatArray
    price_sensitivity: FloatArray
    base_daily: FloatArray  # base orders per day
    member: FloatArray  # 1.0 for loyalty members
    season: FloatArray  # demand multiplier of each day
    # discount depth of each day, shape (days,); or (days, k): one calendar per copy
    depth: FloatArray
    revert: float  # share of the gap to the baseline closed each day
    decay: float  # daily decay factor of the open-complaint load


@dataclasses.dataclass
class State:
    """What the day loop carries from one day to the next; :func:`advance` updates it in place."""

    day: int  # the next day to simulate
    satisfaction: FloatArray
    unresolved: FloatArray  # open-complaint load
    last_order: FloatArray  # day of the last order (negative: before the extract)
    dropped: BoolArray
    dropout_day: IntArray  # -1 while the customer has not dropped out
    dropout_satisfaction: FloatArray  # satisfaction on the dropout day (NaN before)
    pending_s: FloatArray  # (_RING, rows): satisfaction changes due on day % _RING
    pending_u: FloatArray  # (_RING, rows): unresolved complaints landing on day % _RING

    def copy(self) -> State:
        """Return an independent copy (the loop mutates the arrays)."""
        arrays: dict[str, Any] = {f.name: np.copy(getattr(self, f.name)) for f in _ARRAY_FIELDS}
        return dataclasses.replace(self, **arrays)


_ARRAY_FIELDS = tuple(f for f in dataclasses.fields(State) if f.name != "day")
_PER_ROW = ("signup_day", "satisfaction_baseline", "price_sensitivity", "base_daily", "member")


def begin(
    pop: Population, start: dt.date, n_days: int, effects: Effects, rng: np.random.Generator
) -> tuple[World, State]:
    """Draw the promotion calendar and the time since each existing customer's last order.

    Return the world of the extract's ``n_days`` days and the state before day 0.
    """
    n = len(pop.customer_id)
    world = World(
        effects=effects,
        signup_day=pop.signup_day,
        satisfaction_baseline=pop.satisfaction_baseline,
        price_sensitivity=pop.price_sensitivity,
        base_daily=pop.orders_per_year / 365.0,
        member=pop.member.astype(np.float64),
        season=seasonality(day_of_year(start, n_days), effects),
        depth=promo_calendar(start, n_days, effects, rng),
        revert=float(-np.expm1(-np.log(2) / effects.reversion_half_life_days)),
        decay=float(np.exp(-np.log(2) / effects.unresolved_half_life_days)),
    )
    gap_start = rng.exponential(1.0 / np.maximum(world.base_daily, 1e-6))
    state = State(
        day=0,
        satisfaction=pop.satisfaction_baseline.copy(),
        unresolved=np.zeros(n),
        last_order=np.where(pop.existing, -np.minimum(gap_start, 365.0), pop.signup_day),
        dropped=np.zeros(n, dtype=bool),
        dropout_day=np.full(n, -1, dtype=np.int64),
        dropout_satisfaction=np.full(n, np.nan),
        pending_s=np.zeros((_RING, n)),
        pending_u=np.zeros((_RING, n)),
    )
    return world, state


def repeat(world: World, state: State, rows: IntArray, k: int) -> tuple[World, State]:
    """Stack ``k`` copies of the given rows (new row ``copy * len(rows) + i`` is ``rows[i]``).

    For simulating ``k`` futures side by side. The copies share one promotion calendar; replace
    ``depth`` by a ``(days, k)`` array to give each its own.
    """
    every = np.tile(rows, k)
    stacked: dict[str, Any] = {name: getattr(world, name)[every] for name in _PER_ROW}
    tiled: dict[str, Any] = {f.name: getattr(state, f.name)[..., every] for f in _ARRAY_FIELDS}
    return dataclasses.replace(world, **stacked), dataclasses.replace(state, **tiled)


def advance(
    world: World, state: State, days: int, rng: np.random.Generator
) -> list[dict[str, np.ndarray]]:
    """Simulate ``days`` days from ``state.day``, updating ``state``; return each day's orders.

    Splitting a run into several calls draws exactly what one call would: each day draws from
    ``rng`` in the same order, whatever the call it belongs to.
    """
    if state.day + days > len(world.season):
        raise ValueError(
            f"advance: day {state.day + days} is past the world's {len(world.season)} days"
        )
    effects = world.effects
    n = len(world.signup_day)
    chunks: list[dict[str, np.ndarray]] = []
    for day in range(state.day, state.day + days):
        slot = day % _RING
        satisfaction = state.satisfaction
        satisfaction += (
            state.pending_s[slot] + (world.satisfaction_baseline - satisfaction) * world.revert
        )
        state.unresolved = state.unresolved * world.decay + state.pending_u[slot]
        state.pending_s[slot] = 0.0
        state.pending_u[slot] = 0.0

        joined = world.signup_day <= day
        new_today = world.signup_day == day
        missed = (day - state.last_order) * world.base_daily
        hazard = dropout_hazard(satisfaction, state.unresolved, missed, world.member, effects)
        leave = joined & ~state.dropped & ~new_today & (rng.random(n) < -np.expm1(-hazard))
        state.dropped |= leave
        state.dropout_day[leave] = day
        state.dropout_satisfaction[leave] = satisfaction[leave]

        rate = (
            world.base_daily
            * world.season[day]
            * np.exp(effects.satisfaction_rate_effect * satisfaction)
        )
        depth = world.depth[day]
        if depth.ndim == 0:
            if depth > 0:
                rate = rate * np.exp(effects.promo_lift * world.price_sensitivity * depth)
        elif depth.any():  # one calendar per copy: rows copy * n + row
            per_row = np.repeat(depth, n // len(depth))
            rate = rate * np.exp(effects.promo_lift * world.price_sensitivity * per_row)
        buys = (joined & ~state.dropped & (rng.random(n) < -np.expm1(-rate))) | new_today
        idx = np.flatnonzero(buys)
        chunk = _experience(idx, day, satisfaction, effects, rng)
        target = (day + chunk["promised_days"] + chunk["late_days"]) % _RING
        state.pending_s[target, idx] += chunk["delta"]
        state.pending_u[target, idx] += chunk["complaint"] & ~chunk["resolved"]
        state.last_order[idx] = day
        chunks.append(chunk)
    state.day += days
    return chunks


def simulate(
    pop: Population, start: dt.date, n_days: int, effects: Effects, rng: np.random.Generator
) -> History:
    """Step through the extract one day at a time, updating every customer at once."""
    world, state = begin(pop, start, n_days, effects, rng)
    return history(start, world, state, advance(world, state, n_days, rng))


def history(
    start: dt.date, world: World, state: State, chunks: list[dict[str, np.ndarray]]
) -> History:
    """Assemble the :class:`History` of a run from its final state and all its days' orders."""
    cat = {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}
    return History(
        start=start,
        n_days=state.day,
        order_customer=cat["customer"],
        order_day=cat["day"],
        promised_days=cat["promised_days"],
        late_days=cat["late_days"],
        problem=cat["problem"],
        complaint=cat["complaint"],
        resolved=cat["resolved"],
        returned=cat["returned"],
        satisfaction_after=cat["satisfaction_after"],
        promo_depth=world.depth[: state.day],
        dropout_day=state.dropout_day,
        final_satisfaction=np.where(state.dropped, state.dropout_satisfaction, state.satisfaction),
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
