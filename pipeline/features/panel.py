"""The training panel and the scoring snapshot, computed by customer partition.

The panel is the snapshot over a grid of cutoffs, with labels and a time split; both tables are
computed partition by partition in a process pool and merged in customer-id order.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline.config import FeaturesParams, LabelsParams
from pipeline.features import partition
from pipeline.features.catalog import Catalog, FeatureSpec
from pipeline.features.cutoffs import SplitPlan, data_bounds, observed_end, plan_split
from pipeline.features.defaults import fit_timeline, plan_values
from pipeline.features.gaps import Choice, Gaps
from pipeline.features.population import Population, choose_population
from pipeline.features.prepare import Prepared, prepare, split
from pipeline.features.snapshot import (
    Part,
    assemble,
    check_catalog,
    cutoff_timestamp,
    cutoff_us,
    feature_plan,
    region_levels,
    snapshot_part,
)
from pipeline.features.stats import UNUSED, PanelStats
from pipeline.targets import (
    all_targets,
    binary_targets,
    label_columns,
    value_targets,
    with_horizons,
)

logger = logging.getLogger(__name__)


def _partition_task(
    part: Prepared, cutoffs: list[int], params: FeaturesParams, label_params: LabelsParams | None
) -> list[Part]:
    return [snapshot_part(part, c, params, label_params) for c in cutoffs]


def _partitions(prepared: Prepared, ids: pd.Index, n_parts: int) -> tuple[Prepared, ...]:
    if n_parts <= 1:
        return (prepared,)
    return tuple(split(prepared, partition.partition_of(ids, n_parts), n_parts))


def _run(
    parts: tuple[Prepared, ...],
    cutoffs: list[int],
    params: FeaturesParams,
    label_params: LabelsParams | None,
) -> list[list[Part]]:
    """Per cutoff, the parts of every partition (computed partition by partition)."""
    by_partition = partition.run_partitions(
        _partition_task, parts, (cutoffs, params, label_params), params.workers
    )
    return [[result[i] for result in by_partition] for i in range(len(cutoffs))]


# Cutoffs computed per round of the pool: bounds the memory of results waiting to be written.
CUTOFFS_PER_ROUND = 4


@dataclass(frozen=True)
class FeatureStage:
    """The features stage, planned: partitions, time split, features and the scoring date.

    ``panel_frames()`` computes the panel one cutoff at a time (in rounds of the process pool),
    so the panel never has to fit in memory; ``scoring()`` the scoring snapshot; ``summary()``
    what was decided and produced.
    """

    parts: tuple[Prepared, ...]
    ids: pd.Index
    plan: SplitPlan
    # Each value target's own plan on the same grid (its horizon is in ``label_params``).
    value_plans: dict[str, SplitPlan]
    # Each binary target's own plan on the same grid, on its own horizon.
    binary_plans: dict[str, SplitPlan]
    catalog: Catalog
    present: tuple[FeatureSpec, ...]
    absent: dict[str, str]
    params: FeaturesParams
    label_params: LabelsParams
    first_order: pd.Timestamp
    data_end: pd.Timestamp
    stray_orders: int
    scoring_at: pd.Timestamp
    unseen: dict[str, int]
    # The params chosen from the data (null in params.yaml), the gaps they were chosen from,
    # and the population with what its filter removes.
    choices: tuple[Choice, ...]
    gaps: Gaps
    population: Population

    def panel_cutoffs(self) -> list[tuple[pd.Timestamp, dict[str, str]]]:
        """Return every panel cutoff in time order with its split columns' values.

        Columns: ``split`` (shared) and ``split_<target>`` for each target; a cutoff is in the
        panel when some plan uses it.
        """
        return panel_cutoffs(self.plan, self.binary_plans | self.value_plans, self.label_params)

    def panel_frames(self) -> Iterator[pd.DataFrame]:
        """Yield the labelled snapshot of each panel cutoff, in time order.

        A value label whose window passes the end of the data is empty (NaN).
        """
        pairs = self.panel_cutoffs()
        values = value_targets(self.label_params).values()
        for start in range(0, len(pairs), CUTOFFS_PER_ROUND):
            batch = pairs[start : start + CUTOFFS_PER_ROUND]
            results = _run(
                self.parts, [cutoff_us(c) for c, _ in batch], self.params, self.label_params
            )
            for (cutoff, splits), parts in zip(batch, results, strict=True):
                frame = assemble(
                    parts,
                    self.ids,
                    cutoff,
                    self.present,
                    self.catalog,
                    label_columns(self.label_params),
                )
                for at, (column, name) in enumerate(splits.items()):
                    frame.insert(2 + at, column, pd.Series([name] * len(frame), dtype="string"))
                for target in values:
                    if cutoff + pd.Timedelta(days=target.horizon_days or 0) > self.data_end:
                        frame[target.label] = float("nan")
                yield frame

    def scoring(self) -> pd.DataFrame:
        """Build the scoring snapshot (features only) at ``scoring_at``."""
        (parts,) = _run(self.parts, [cutoff_us(self.scoring_at)], self.params, None)
        return assemble(parts, self.ids, self.scoring_at, self.present, self.catalog)

    def summary(self, stats: PanelStats, scoring_rows: int) -> dict[str, Any]:
        """JSON-ready record of the split, sizes, label rates and present/absent features."""
        chosen = {c.param: c.why for c in self.choices}
        return {
            "data": {
                "first_order": self.first_order.isoformat(),
                "data_end": self.data_end.isoformat(),
                "orders_after_data_end": self.stray_orders,
            },
            "labels": {
                name: {
                    "rule": t.rule,
                    "horizon_days": t.horizon_days,
                    "horizon_chosen": chosen.get(f"labels.targets.{name}.horizon_days", "params"),
                    "event": t.event,
                    "split_column": t.split_column,
                }
                for name, t in all_targets(self.label_params).items()
            },
            "derived": {c.param: c.to_dict() for c in self.choices},
            "gaps": self.gaps.to_dict(),
            "grid": {
                key: getattr(self.params, key)
                for key in ("step_months", "step_days", "min_history_days", "validation_cutoffs")
            },
            "population": self.population.to_dict(),
            "windows_days": list(self.params.windows_days),
            "cutoffs": self.plan.to_dict(),
            "target_cutoffs": {name: plan.to_dict() for name, plan in self.binary_plans.items()},
            "value_cutoffs": {name: plan.to_dict() for name, plan in self.value_plans.items()},
            "rows": {"panel": sum(stats.rows.values()), **stats.rows, "scoring": scoring_rows},
            "value_rows": stats.value_rows,
            "customers": {"with_orders": len(self.ids), "in_panel": len(stats.customers)},
            "label_rates": stats.label_rates(),
            "value_label_means": stats.value_means(),
            "scoring": {"as_of": self.scoring_at.isoformat(), "rows": scoring_rows},
            "features": {"present": [s.name for s in self.present], "absent": self.absent},
            "unseen_categories": dict(self.unseen),
        }


def _prepared(
    orders: pd.DataFrame,
    returns: pd.DataFrame | None,
    feedback: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    params: FeaturesParams,
    catalog: Catalog,
) -> tuple[Prepared, pd.Index, Catalog, list[FeatureSpec], dict[str, str]]:
    check_catalog(catalog)
    prepared, ids = prepare(orders, returns, feedback, customers, region_levels(catalog))
    expanded = catalog.expand(params.windows_days)
    present, absent = feature_plan(expanded, prepared.available)
    return prepared, ids, expanded, present, absent


def panel_cutoffs(
    shared: SplitPlan, own: dict[str, SplitPlan], label_params: LabelsParams
) -> list[tuple[pd.Timestamp, dict[str, str]]]:
    """Every cutoff some plan uses, in time order, with the value of each split column."""
    plans = {"split": shared} | {
        t.split_column: own[t.name] for t in all_targets(label_params).values()
    }
    of = {column: dict(plan.cutoffs()) for column, plan in plans.items()}
    used = sorted({c for split in of.values() for c in split})
    return [(c, {column: split.get(c, UNUSED) for column, split in of.items()}) for c in used]


def plan_features(
    orders: pd.DataFrame,
    returns: pd.DataFrame | None,
    feedback: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    params: FeaturesParams,
    label_params: LabelsParams,
    catalog: Catalog,
    as_of: dt.date | dt.datetime | str | pd.Timestamp | None = None,
) -> FeatureStage:
    """Index the clean tables, partition them and decide the cutoffs and their split.

    Params left null are chosen from the data first (:mod:`pipeline.features.defaults`,
    :mod:`pipeline.features.population`); the stage holds the params with them filled in.
    """
    prepared, ids, expanded, present, absent = _prepared(
        orders, returns, feedback, customers, params, catalog
    )
    first_order, data_end, stray = data_bounds(prepared, params)
    scoring_at = data_end if as_of is None else cutoff_timestamp(as_of)
    gaps = Gaps.of(prepared.orders)
    timeline = fit_timeline(first_order, data_end, params, label_params, gaps)
    grid, validation = timeline.grid, params.validation_cutoffs
    value_plans, horizons, value_choices = plan_values(grid, data_end, timeline.labels, validation)
    resolved = with_horizons(timeline.labels, horizons)
    binary_plans = {
        name: plan_split(grid, pd.Timedelta(days=int(t.horizon_days or 0)), validation)
        for name, t in binary_targets(resolved).items()
    }
    plan = plan_split(grid, resolved, validation)
    used = [c for c, _ in panel_cutoffs(plan, binary_plans | value_plans, resolved)]
    chosen, population, active = choose_population(
        prepared, timeline.params, first_order, plan.test, scoring_at, used, gaps
    )
    return FeatureStage(
        parts=_partitions(prepared, ids, params.partitions),
        ids=ids,
        plan=plan,
        value_plans=value_plans,
        binary_plans=binary_plans,
        catalog=expanded,
        present=tuple(present),
        absent=absent,
        params=chosen,
        label_params=resolved,
        first_order=first_order,
        data_end=data_end,
        stray_orders=stray,
        scoring_at=scoring_at,
        unseen=dict(prepared.unseen),
        choices=(*timeline.choices, *value_choices, *([active] if active else [])),
        gaps=gaps,
        population=population,
    )


def panel_stats(label_params: LabelsParams) -> PanelStats:
    """Statistics of the panel's binary labels (shared split) and value targets (own split)."""
    return PanelStats(
        tuple(binary_targets(label_params).values()),
        tuple(value_targets(label_params).values()),
    )


@dataclass(frozen=True)
class FeatureTables:
    """Outputs of the features stage, in memory."""

    panel: pd.DataFrame
    scoring: pd.DataFrame
    summary: dict[str, Any]


def build_features(
    orders: pd.DataFrame,
    returns: pd.DataFrame | None,
    feedback: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    params: FeaturesParams,
    label_params: LabelsParams,
    catalog: Catalog,
    as_of: dt.date | dt.datetime | str | pd.Timestamp | None = None,
) -> FeatureTables:
    """Build the panel, scoring snapshot and summary in memory (the CLI streams the panel)."""
    stage = plan_features(
        orders, returns, feedback, customers, params, label_params, catalog, as_of
    )
    stats = panel_stats(stage.label_params)
    panel = pd.concat(list(stats.track(stage.panel_frames())), ignore_index=True)
    scoring = stage.scoring()
    return FeatureTables(panel, scoring, stage.summary(stats, len(scoring)))


def build_scoring_snapshot(
    orders: pd.DataFrame,
    returns: pd.DataFrame | None,
    feedback: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    as_of: dt.date | dt.datetime | str | pd.Timestamp | None,
    params: FeaturesParams,
    catalog: Catalog,
) -> pd.DataFrame:
    """Build the scorer's snapshot: the ``build_snapshot`` table at ``as_of``.

    ``as_of`` defaults to the end of the observed period (last order date + 1 day). Computed by
    customer partition in a process pool (``params.partitions``/``workers``); equal to
    ``build_snapshot``'s output.
    """
    prepared, ids, expanded, present, _ = _prepared(
        orders, returns, feedback, customers, params, catalog
    )
    when = data_bounds(prepared, params)[1] if as_of is None else cutoff_timestamp(as_of)
    (parts,) = _run(_partitions(prepared, ids, params.partitions), [cutoff_us(when)], params, None)
    return assemble(parts, ids, when, present, expanded)


__all__ = [
    "FeatureStage",
    "FeatureTables",
    "PanelStats",
    "build_features",
    "build_scoring_snapshot",
    "observed_end",  # re-exported: the scorer imports it from here
    "plan_features",
]
