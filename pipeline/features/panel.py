"""The training panel and the scoring snapshot, computed by customer partition.

The panel is the snapshot over a grid of cutoffs, with labels and a time split; both tables are
computed partition by partition in a process pool and merged in customer-id order.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipeline.config import FeaturesParams, LabelsParams
from pipeline.features import partition
from pipeline.features.catalog import Catalog, FeatureSpec
from pipeline.features.cutoffs import (
    HORIZON_LADDER,
    SplitPlan,
    cutoff_grid,
    data_bounds,
    observed_end,
    plan_split,
    plan_value_split,
)
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
from pipeline.targets import (
    Target,
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
SPLITS = ("train", "valid", "test")
#: Split of a panel row outside a target's plan (a value-only cutoff, or a value embargo).
UNUSED = "none"


@dataclass
class PanelStats:
    """Row counts, label sums and customers of the panel, accumulated as frames stream by.

    ``rows`` counts the shared ``split``; ``labels`` are the binary targets (positives and
    rows on each one's own split column), ``values`` the value targets (rows and mean spend
    on their own split column).
    """

    labels: tuple[Target, ...] = ()
    values: tuple[Target, ...] = ()
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    positives: dict[str, dict[str, int]] = field(default_factory=dict)
    label_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    value_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    value_sums: dict[str, dict[str, float]] = field(default_factory=dict)
    customers: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.positives = {s: {t.label: 0 for t in self.labels} for s in SPLITS}
        self.label_rows = {s: {t.label: 0 for t in self.labels} for s in SPLITS}
        self.value_rows = {t.name: dict.fromkeys(SPLITS, 0) for t in self.values}
        self.value_sums = {t.name: dict.fromkeys(SPLITS, 0.0) for t in self.values}

    @staticmethod
    def _split_of(frame: pd.DataFrame, column: str) -> str:
        return str(frame[column].iloc[0]) if len(frame) and column in frame else UNUSED

    def track(self, frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """Yield ``frames`` unchanged, counting them on the way."""
        for frame in frames:
            name = str(frame["split"].iloc[0]) if len(frame) else "test"
            self.rows[name] = self.rows.get(name, 0) + len(frame)
            for target in self.labels:
                own = self._split_of(frame, target.split_column)
                if own in SPLITS:
                    self.positives[own][target.label] += int(frame[target.label].sum())
                    self.label_rows[own][target.label] += len(frame)
            for target in self.values:
                own = self._split_of(frame, target.split_column)
                if own in SPLITS:
                    self.value_rows[target.name][own] += len(frame)
                    self.value_sums[target.name][own] += float(frame[target.label].sum())
            self.customers.update(frame["customer_id"].dropna().tolist())
            yield frame

    def value_means(self) -> dict[str, dict[str, float]]:
        """Mean spend label per value target and split."""
        return {
            name: {
                s: round(total / self.value_rows[name][s], 4) if self.value_rows[name][s] else 0.0
                for s, total in sums.items()
            }
            for name, sums in self.value_sums.items()
        }

    def label_rates(self) -> dict[str, dict[str, float]]:
        """Share of positive labels per split (each binary target on its own split)."""
        return {
            s: {
                k: round(v / self.label_rows[s][k], 6) if self.label_rows[s][k] else 0.0
                for k, v in pos.items()
            }
            for s, pos in self.positives.items()
        }


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
    # Per target: "params" when labels.targets set the horizon, else how it was chosen.
    horizon_origin: dict[str, str] = field(default_factory=dict)

    def panel_cutoffs(self) -> list[tuple[pd.Timestamp, dict[str, str]]]:
        """Return every panel cutoff in time order with its split columns' values.

        Columns: ``split`` (shared) and ``split_<target>`` for each target; a cutoff is in the
        panel when some plan uses it.
        """
        own = self.binary_plans | self.value_plans
        plans = {"split": self.plan} | {
            t.split_column: own[t.name] for t in all_targets(self.label_params).values()
        }
        of = {column: dict(plan.cutoffs()) for column, plan in plans.items()}
        used = sorted({c for split in of.values() for c in split})
        return [(c, {column: split.get(c, UNUSED) for column, split in of.items()}) for c in used]

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
                    "horizon_chosen": self.horizon_origin[name],
                    "event": t.event,
                    "split_column": t.split_column,
                }
                for name, t in all_targets(self.label_params).items()
            },
            "population": {"active_within_days": self.params.active_within_days},
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
    """Index the clean tables, partition them and decide the cutoffs and their split."""
    prepared, ids, expanded, present, absent = _prepared(
        orders, returns, feedback, customers, params, catalog
    )
    first_order, data_end, stray = data_bounds(prepared, params)
    grid = cutoff_grid(first_order, data_end, params, label_params)
    value_plans, horizons, origin = {}, {}, {}
    for name, target in value_targets(label_params).items():
        horizons[name], value_plans[name] = plan_value_split(
            grid, data_end, target.horizon_days, params.validation_cutoffs
        )
        origin[name] = "params" if target.horizon_days is not None else _auto()
        logger.info(
            "%s: horizon %d days (%s); %d train, %d valid cutoffs, test %s",
            name,
            horizons[name],
            origin[name],
            len(value_plans[name].train),
            len(value_plans[name].valid),
            value_plans[name].test.date(),
        )
    resolved = with_horizons(label_params, horizons)
    binary_plans = {
        name: plan_split(
            grid, pd.Timedelta(days=int(t.horizon_days or 0)), params.validation_cutoffs
        )
        for name, t in binary_targets(label_params).items()
    }
    return FeatureStage(
        parts=_partitions(prepared, ids, params.partitions),
        ids=ids,
        plan=plan_split(grid, label_params, params.validation_cutoffs),
        value_plans=value_plans,
        binary_plans=binary_plans,
        horizon_origin={n: origin.get(n, "params") for n in resolved.targets},
        catalog=expanded,
        present=tuple(present),
        absent=absent,
        params=params,
        label_params=resolved,
        first_order=first_order,
        data_end=data_end,
        stray_orders=stray,
        scoring_at=data_end if as_of is None else cutoff_timestamp(as_of),
        unseen=dict(prepared.unseen),
    )


def _auto() -> str:
    return (
        f"chosen from the data: the longest of {list(HORIZON_LADDER)} days that gives a "
        "train / valid / test split"
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
