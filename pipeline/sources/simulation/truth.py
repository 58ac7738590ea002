"""The simulation's own truth at a cutoff: each customer's latent state and expected spend.

Both replay ``generate`` up to the cutoff (same seed, same draws, so the history is the
export's) and keep the latent state the day loop carries (satisfaction, open-complaint load,
pending delivery effects, dropout). :func:`latent_state` returns that state per customer (the
oracle's features: what drives churn, unobserved by any export); :func:`expected_future_spend`
continues it many times with fresh random numbers (value truth: a value model predicts one
noisy draw of the future, the truth is its expectation).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from pipeline.config import GenerateParams
from pipeline.sources.simulation import dynamics, export
from pipeline.sources.simulation.mechanisms import (
    Effects,
    dropout_hazard,
    satisfaction_hazard,
    seasonality,
)

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: futures simulated side by side: paths x customers rows per batch (bounds the memory)
ROWS_PER_BATCH = 2**16
#: mean baskets at which the expected order amount is measured, and orders drawn at each
AMOUNT_GRID = 128
AMOUNT_DRAWS = 8192


@dataclasses.dataclass(frozen=True)
class Replay:
    """A run of ``generate`` stopped at some days, resumable to the extract end."""

    pop: dynamics.Population
    world: dynamics.World
    #: copies of the state at the start of each requested day, in the order asked for
    at: list[dynamics.State]
    #: the live state (at the latest requested day) and the generator in ``generate``'s order
    state: dynamics.State
    rng: np.random.Generator


def replay(params: GenerateParams, days: Sequence[int], effects: Effects) -> Replay:
    """Replay ``generate`` with the draws of the export and keep the state at each of ``days``.

    ``days`` counts from ``params.start`` (day 0); the state of day ``d`` is the state at the
    start of that day, before its updates and draws (what is known at a cutoff at midnight).
    One pass serves every day asked for. Continue with ``dynamics.advance(r.world, r.state,
    n_days - r.state.day, r.rng)`` to draw what ``generate`` draws after the loop.
    """
    n_days = (params.end - params.start).days + 1
    rng = np.random.default_rng(params.seed)  # the draws of `generate`, in its order
    pop = dynamics.draw_population(params.n_customers, params.start, n_days, effects, rng)
    world, state = dynamics.begin(pop, params.start, n_days, effects, rng)
    kept: dict[int, dynamics.State] = {}
    for day in sorted(set(days)):
        dynamics.advance(world, state, day - state.day, rng)
        kept[day] = state.copy()
    return Replay(pop, world, [kept[day] for day in days], state, rng)


def cutoff_day(params: GenerateParams, cutoff: dt.date, caller: str) -> int:
    """Day index of ``cutoff`` (0 = ``params.start``); up to the day after ``params.end``."""
    n_days = (params.end - params.start).days + 1
    first = (cutoff - params.start).days
    if not 0 <= first <= n_days:
        raise ValueError(
            f"{caller}: cutoff {cutoff} is outside {params.start}.."
            f"{params.end + dt.timedelta(days=1)}"
        )
    return first


def latent_state(
    params: GenerateParams, cutoffs: Sequence[dt.date], effects: Effects | None = None
) -> pd.DataFrame:
    """Per simulated customer and cutoff, the true latent state at the start of the cutoff day.

    Returns one row per customer and cutoff, sorted by cutoff then id, with ``cutoff``
    (``datetime64[us, UTC]`` midnight, as the feature panel writes it), ``customer_id`` (as the
    clean stage writes it) and:

    - ``signed_up_at_cutoff``, ``alive_at_cutoff`` (signed up before the cutoff day; not
      dropped out before it: dropout is final);
    - ``satisfaction`` (latent ``S``), ``satisfaction_baseline`` (where ``S`` reverts to),
      ``unresolved_load`` (open-complaint load ``U``);
    - ``pending_satisfaction`` and ``pending_unresolved``: what orders placed but not yet
      delivered will add to ``S`` and ``U`` on their delivery days (0 for most customers);
    - ``orders_per_year``, ``price_sensitivity``, ``loyalty_member`` (fixed traits that drive
      buying and the hazard); ``expected_orders_missed`` (the hazard's gap ``G``: days since
      the last true order x base orders per day);
    - ``satisfaction_hazard`` (the hazard's satisfaction part) and ``dropout_hazard`` (the
      true daily hazard, :func:`mechanisms.dropout_hazard`, of the state): NaN for a customer
      who has dropped out or not signed up, who has no hazard.

    The state is of the true orders: dirty rows of the export do not move it. The result is a
    function of the arguments alone (the same call gives the same frame).
    """
    if len(cutoffs) == 0:
        raise ValueError("latent_state: no cutoff given")
    effects = effects or Effects()
    days = [cutoff_day(params, cutoff, "latent_state") for cutoff in cutoffs]
    run = replay(params, days, effects)
    pop, world = run.pop, run.world
    order = np.argsort(pop.customer_id, kind="stable")
    frames = []
    for cutoff, day, state in zip(cutoffs, days, run.at, strict=True):
        signed_up = pop.signup_day < day
        alive = ~state.dropped
        has_hazard = signed_up & alive
        missed = (day - state.last_order) * world.base_daily
        hazard = dropout_hazard(state.satisfaction, state.unresolved, missed, world.member, effects)
        frame = pd.DataFrame(
            {
                "cutoff": pd.Timestamp(cutoff, tz="UTC").as_unit("us"),
                "customer_id": pd.array(pop.customer_id.astype(str), dtype="string"),
                "signed_up_at_cutoff": signed_up,
                "alive_at_cutoff": alive,
                "satisfaction": state.satisfaction,
                "satisfaction_baseline": pop.satisfaction_baseline,
                "unresolved_load": state.unresolved,
                "pending_satisfaction": state.pending_s.sum(axis=0),
                "pending_unresolved": state.pending_u.sum(axis=0),
                "orders_per_year": pop.orders_per_year,
                "price_sensitivity": pop.price_sensitivity,
                "loyalty_member": pop.member,
                "expected_orders_missed": np.where(signed_up, missed, np.nan),
                "satisfaction_hazard": np.where(
                    has_hazard, satisfaction_hazard(state.satisfaction, effects), np.nan
                ),
                "dropout_hazard": np.where(has_hazard, hazard, np.nan),
            }
        )
        frames.append(frame.iloc[order])
    return (
        pd.concat(frames, ignore_index=True)
        .sort_values("cutoff", kind="stable")
        .reset_index(drop=True)
    )


def expected_future_spend(
    params: GenerateParams,
    cutoff: dt.date,
    horizon_days: int,
    paths: int = 32,
    seed: int = 0,
    effects: Effects | None = None,
) -> pd.DataFrame:
    """Per simulated customer, the expected spend and orders in ``[cutoff, cutoff + horizon)``.

    Spend is the sum of the gross amounts (quantity x unit price of the sale lines, returns
    not deducted) of the orders placed in the window: the measure of the ``spend_sum_*``
    features. Returns one row per customer, sorted by id: ``customer_id`` (as the clean stage
    writes it), ``expected_spend``, ``expected_orders``, ``alive_at_cutoff`` (not dropped out
    before the cutoff day) and ``signed_up_at_cutoff`` (signup day before the cutoff day).

    How: the state at the start of the cutoff day is continued ``paths`` times for
    ``horizon_days`` days with random streams independent of the export's (from ``seed``), and
    the orders per customer are averaged over the paths. An order's amount is drawn
    independently of when it is placed (:func:`export.basket_lines`), so the expected spend is
    exactly expected orders x the expected amount of one order of that customer; the latter is
    measured by drawing orders with the export's own amount model on a grid of mean baskets.
    Monte Carlo error: that of a ``paths``-path mean for the orders, about 1% for the amount.
    The result is a function of the arguments alone (the same call gives the same frame).

    What the simulation fixed before day 0 is known at the cutoff: the signup days of customers
    who join later (their first order is certain) and the promotion calendar of the extract.
    Days after ``params.end`` get a promotion calendar drawn per path by the same rule. Dirty
    rows (:mod:`~pipeline.sources.simulation.dirty`) are ignored: the truth is of the true
    orders, and the export's realised spend differs from it by the duplicates, rejected lines
    and outlier quantities the clean stage keeps.
    """
    effects = effects or Effects()
    n_days = (params.end - params.start).days + 1
    first = cutoff_day(params, cutoff, "expected_future_spend")
    if horizon_days < 1 or paths < 1:
        raise ValueError("expected_future_spend: horizon_days and paths must be at least 1")

    run = replay(params, [first], effects)
    pop, world, at_cutoff = run.pop, run.world, run.at[0]
    # the catalog is drawn after the whole extract: finish the run to draw the export's catalog
    dynamics.advance(world, run.state, n_days - first, run.rng)
    products = export.catalog(run.rng)

    streams = np.random.SeedSequence([seed, params.seed, first, horizon_days]).spawn(2)
    orders = _expected_orders(
        world, at_cutoff, params.start, horizon_days, paths, np.random.default_rng(streams[0])
    )
    amount = _expected_order_amount(
        products, pop.mean_basket, effects, np.random.default_rng(streams[1])
    )
    order = np.argsort(pop.customer_id, kind="stable")
    return (
        pd.DataFrame(
            {
                "customer_id": pd.array(pop.customer_id.astype(str), dtype="string"),
                "expected_spend": orders * amount,
                "expected_orders": orders,
                "alive_at_cutoff": ~at_cutoff.dropped,
                "signed_up_at_cutoff": pop.signup_day < first,
            }
        )
        .iloc[order]
        .reset_index(drop=True)
    )


def _expected_orders(
    world: dynamics.World,
    state: dynamics.State,
    start: dt.date,
    horizon_days: int,
    paths: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Mean number of orders of each customer in the next ``horizon_days`` days over ``paths``."""
    n = len(world.signup_day)
    n_days, end = len(world.season), state.day + horizon_days
    world = dataclasses.replace(
        world, season=seasonality(dynamics.day_of_year(start, end), world.effects)
    )
    counts = np.zeros(n)
    # dropout is final: who has dropped out places no order on any path
    alive = np.flatnonzero(~state.dropped)
    if len(alive) == 0:
        return counts
    per_batch = max(1, ROWS_PER_BATCH // len(alive))
    for begin in range(0, paths, per_batch):
        k = min(per_batch, paths - begin)
        futures, future = dynamics.repeat(world, state, alive, k)
        if end > n_days:  # past the extract: each path draws its own promotion days
            depth = np.empty((end, k))
            depth[:n_days] = world.depth[:, None]
            for path in range(k):
                calendar = dynamics.promo_calendar(start, end, world.effects, rng)
                depth[n_days:, path] = calendar[n_days:]
            futures = dataclasses.replace(futures, depth=depth)
        chunks = dynamics.advance(futures, future, horizon_days, rng)
        rows = np.concatenate([chunk["customer"] for chunk in chunks])
        counts += np.bincount(alive[rows % len(alive)], minlength=n)
    logger.info("simulated %d futures of %d customers for %d days", paths, n, horizon_days)
    return counts / paths


def _expected_order_amount(
    products: pd.DataFrame, mean_basket: FloatArray, effects: Effects, rng: np.random.Generator
) -> FloatArray:
    """Return the expected gross amount of one order of each customer (the export's model).

    The amount depends on the customer only through the mean basket, smoothly (the order value
    is log-normal around it), so it is measured on a log-spaced grid and interpolated.
    """
    grid = np.unique(np.geomspace(mean_basket.min(), mean_basket.max(), AMOUNT_GRID))
    baskets = np.repeat(grid, AMOUNT_DRAWS)
    line_order, _, price, quantity = export.basket_lines(products, baskets, effects, rng)
    gross = np.bincount(line_order, weights=quantity * price, minlength=len(baskets))
    per_basket = gross.reshape(len(grid), AMOUNT_DRAWS).mean(axis=1)
    return np.interp(np.log(mean_basket), np.log(grid), per_basket)
