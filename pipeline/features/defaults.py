"""Defaults that fit the data: the cutoff grid's params and the horizons left null.

``labels.targets.<name>.horizon_days``, ``features.min_history_days`` and the cutoff step
(``features.step_months`` / ``step_days``) may be null; the features stage then chooses them
here from the span of the orders and the customers' gaps between purchases
(:class:`~pipeline.features.gaps.Gaps`). ``features.active_within_days`` is chosen the same
way, in :mod:`pipeline.features.population`. An explicit value is always kept as it is.

Each choice is a :class:`~pipeline.features.gaps.Choice` (the value and why): the stage logs
it at INFO, writes it to ``summary.json`` (``derived``) and the report shows it. The rules
(docs/features.md, "Defaults that fit the data"); "covers" = the smallest rung of
:data:`~pipeline.features.gaps.HORIZON_LADDER` at or above that share of the gaps:

- a ``no_order_within`` (churn) horizon covers 90% of the gaps: a customer who is only between
  two of their usual orders is rarely labelled a churner;
- an ``order_within`` (repurchase) horizon covers half of them: "buys again within the usual
  gap";
- ``min_history_days`` covers 75%: by the first cutoff most repeat customers can have shown a
  second order, which the frequency, gap and overdue features need;
- the step is one month (a denser grid adds rows, not information: docs/modeling.md);
- then, while the cutoffs leave no train / valid / test split: the minimum history is lowered
  (down the ladder, not below :data:`MIN_HISTORY_FLOOR`), the step shortened to 14 then 7
  days, and last the chosen binary horizons lowered down the ladder;
- a ``spend_within`` (value) horizon is the longest rung that leaves its own split
  (:func:`~pipeline.features.cutoffs.plan_value_split`).

Gaps are measured on every order: they decide which question is asked (the label windows, the
grid and the population), never a feature or a label value.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from pipeline.config import FeaturesParams, LabelsParams
from pipeline.errors import DataError
from pipeline.features.cutoffs import SplitPlan, cutoff_grid, plan_split, plan_value_split
from pipeline.features.gaps import HORIZON_LADDER, Choice, Gaps, covering
from pipeline.targets import binary_targets, value_targets, with_horizons

logger = logging.getLogger(__name__)

#: Share of the gaps each choice covers (see the module docstring).
HORIZON_SHARE = {"no_order_within": 0.90, "order_within": 0.50}
HISTORY_SHARE = 0.75
#: Used when there are too few repeat purchases to measure the gaps on.
FALLBACK_HORIZON = {"no_order_within": 90, "order_within": 30}
FALLBACK_HISTORY = 60
#: The minimum history is never lowered below this (a month of history at the first cutoff).
MIN_HISTORY_FLOOR = 30
#: Cutoff steps tried, coarsest first: one month, then days counted back from the last cutoff.
STEPS: tuple[dict[str, int], ...] = ({"step_months": 1}, {"step_days": 14}, {"step_days": 7})


def binary_horizon(name: str, rule: str, gaps: Gaps) -> Choice:
    """Choose a binary target's horizon: the rung covering its rule's share of the gaps."""
    param = f"labels.targets.{name}.horizon_days"
    if not gaps.enough:
        value = FALLBACK_HORIZON[rule]
        return Choice(param, value, f"only {gaps.days.size} repeat purchases: the standard {value}")
    value, why = covering(gaps, HORIZON_SHARE[rule])
    return Choice(param, value, why)


def min_history(gaps: Gaps) -> Choice:
    """Choose the minimum history before the first cutoff: the rung covering 75% of gaps."""
    param = "features.min_history_days"
    if not gaps.enough:
        value = FALLBACK_HISTORY
        return Choice(param, value, f"only {gaps.days.size} repeat purchases: the standard {value}")
    value, why = covering(gaps, HISTORY_SHARE)
    return Choice(param, value, why + ", so most repeat customers can show a second order")


@dataclass(frozen=True)
class Timeline:
    """The cutoff grid with the chosen step, minimum history and binary horizons filled in."""

    params: FeaturesParams
    labels: LabelsParams
    grid: list[pd.Timestamp]
    choices: tuple[Choice, ...]


def fit_timeline(
    first_order: pd.Timestamp,
    data_end: pd.Timestamp,
    params: FeaturesParams,
    labels: LabelsParams,
    gaps: Gaps,
) -> Timeline:
    """Choose the null binary horizons, minimum history and step so that a split fits.

    Tries the wanted values first; while the cutoffs leave no train / valid / test split,
    lowers the minimum history, then shortens the step, then lowers the chosen horizons (the
    module docstring). Explicit values never change. Raises the split's ``DataError`` when
    nothing fits.
    """
    wanted = {
        name: binary_horizon(name, t.rule, gaps)
        for name, t in binary_targets(labels).items()
        if t.horizon_days is None
    }
    history = None
    if params.first_cutoff is None and params.min_history_days is None:
        history = min_history(gaps)
    steps = STEPS if params.step_months is None and params.step_days is None else ({},)
    histories: list[dict[str, int]] = [{}]
    if history is not None:
        most = int(history.value)
        lower = [r for r in sorted(HORIZON_LADDER, reverse=True) if MIN_HISTORY_FLOOR <= r < most]
        histories = [{"min_history_days": d} for d in (most, *lower)]
    top = max((int(c.value) for c in wanted.values()), default=0)
    caps = [None, *(r for r in sorted(HORIZON_LADDER, reverse=True) if r < top)]
    span = (data_end - first_order) / pd.Timedelta(days=1)
    error: DataError | None = None
    for cap in caps:
        horizons = {
            n: int(c.value) if cap is None else min(int(c.value), cap) for n, c in wanted.items()
        }
        resolved = with_horizons(labels, horizons)
        for step in steps:
            for hist in histories:
                chosen = params.model_copy(update={**step, **hist})
                grid = cutoff_grid(first_order, data_end, chosen, resolved)
                try:
                    plan_split(grid, resolved, chosen.validation_cutoffs)
                except DataError as exc:
                    error = exc
                    continue
                choices = _choices(wanted, horizons, history, hist, step, span)
                for choice in choices:
                    logger.info("%s = %s: %s", choice.param, choice.value, choice.why)
                return Timeline(chosen, resolved, grid, choices)
    assert error is not None  # the loops ran at least once
    if wanted or history is not None or steps != ({},):
        raise DataError(f"{error.message} (even with the values chosen from the data lowered)")
    raise error


def _choices(
    wanted: Mapping[str, Choice],
    horizons: Mapping[str, int],
    history: Choice | None,
    hist: Mapping[str, int],
    step: Mapping[str, int],
    span: float,
) -> tuple[Choice, ...]:
    fit = f"that leaves a train / valid / test split in the {span:.0f}-day span"
    out = []
    for name, choice in wanted.items():
        why = choice.why
        if horizons[name] != choice.value:
            why += f"; lowered to {horizons[name]} days, the longest {fit}"
        out.append(Choice(choice.param, horizons[name], why))
    if history is not None:
        why = history.why
        if hist["min_history_days"] != history.value:
            why += f"; lowered to {hist['min_history_days']} days, the longest {fit}"
        out.append(Choice(history.param, hist["min_history_days"], why))
    if step:
        key, value = next(iter(step.items()))
        why = "one month, the standard step (a denser grid adds rows, not information)"
        if key != "step_months":
            why = f"{value} days, the longest step {fit} (a monthly grid leaves none)"
        out.append(Choice(f"features.{key}", value, why))
    return tuple(out)


def plan_values(
    grid: list[pd.Timestamp],
    data_end: pd.Timestamp,
    labels: LabelsParams,
    validation_cutoffs: int,
) -> tuple[dict[str, SplitPlan], dict[str, int], tuple[Choice, ...]]:
    """Each value target's own split on ``grid``, its horizon, and the horizons chosen here."""
    plans, horizons, choices = {}, {}, []
    ladder = ", ".join(str(r) for r in HORIZON_LADDER)
    for name, target in value_targets(labels).items():
        horizons[name], plans[name] = plan_value_split(
            grid, data_end, target.horizon_days, validation_cutoffs
        )
        if target.horizon_days is None:
            why = (
                f"the longest of {ladder} days that gives a train / valid / test split of the "
                "cutoffs whose window ends by the end of the data"
            )
            choices.append(Choice(f"labels.targets.{name}.horizon_days", horizons[name], why))
            logger.info("%s = %s: %s", choices[-1].param, horizons[name], why)
        logger.info(
            "%s: horizon %d days; %d train, %d valid cutoffs, test %s",
            name,
            horizons[name],
            len(plans[name].train),
            len(plans[name].valid),
            plans[name].test.date(),
        )
    return plans, horizons, tuple(choices)
