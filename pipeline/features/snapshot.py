"""One customer snapshot at one cutoff: the function that training and scoring share.

Time contract (DESIGN.md 3.2): features use only events with timestamp ``< cutoff``; the
population is the customers with an order before the cutoff (and, when
``features.active_within_days`` is a number, within that many days of it:
:mod:`pipeline.features.population`); labels, when asked for, use only orders in
``[cutoff, cutoff + horizon)``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.config import FeaturesParams, LabelsParams
from pipeline.features import behaviour, labels, rfm, satisfaction
from pipeline.features.catalog import Catalog, FeatureSpec, missing_inputs
from pipeline.features.population import in_population
from pipeline.features.prepare import NPS_GROUPS, Prepared, prepare

logger = logging.getLogger(__name__)

KEYS = ("customer_id", "cutoff")
CODED = ("nps_group", "region")  # categoricals computed as integer codes (-1 = missing)


@dataclass(frozen=True)
class Part:
    """The population of one partition at one cutoff: run-wide customer codes and columns."""

    codes: np.ndarray
    columns: dict[str, np.ndarray]


def cutoff_timestamp(value: dt.date | dt.datetime | str | pd.Timestamp) -> pd.Timestamp:
    """Return ``value`` as a UTC ``Timestamp`` in microseconds (a date means its midnight UTC)."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.as_unit("us")


def cutoff_us(value: pd.Timestamp) -> int:
    """Return a UTC timestamp as integer microseconds since the epoch."""
    return int(cutoff_timestamp(value).value // 1000)


def _why_absent(missing: list[str], available: Mapping[str, bool]) -> str:
    tables = sorted({item.split(".")[0] for item in missing})
    without = [t for t in tables if not available.get(f"{t}.customer_id", False)]
    if without:
        return "the source has no " + " or ".join(f"{t} table" for t in without)
    return "the source lacks " + ", ".join(missing)


def feature_plan(
    catalog: Catalog, available: Mapping[str, bool]
) -> tuple[list[FeatureSpec], dict[str, str]]:
    """Split the (window-expanded) catalog into features the source supports and absent ones.

    Derived features (computed by a model from these, ``derived`` in the catalog) are neither.
    """
    present: list[FeatureSpec] = []
    absent: dict[str, str] = {}
    for spec in catalog.features:
        if spec.derived is not None:
            continue
        missing = missing_inputs(spec, available)
        if missing:
            absent[spec.name] = _why_absent(missing, available)
        else:
            present.append(spec)
    return present, absent


def snapshot_part(
    prepared: Prepared,
    cutoff: int,
    params: FeaturesParams,
    label_params: LabelsParams | None = None,
) -> Part:
    """Features (and optionally labels) of the population of ``prepared`` at ``cutoff`` (us)."""
    columns = rfm.rfm_features(prepared, cutoff, params.windows_days)
    columns.update(satisfaction.satisfaction_features(prepared, cutoff))
    columns.update(behaviour.service_features(prepared, cutoff))
    columns.update(behaviour.returns_features(prepared, cutoff, columns["lifetime_spend"]))
    columns.update(behaviour.delivery_features(prepared, cutoff))
    columns.update(behaviour.price_features(prepared, cutoff))
    columns.update(behaviour.relationship_features(prepared, cutoff))
    if label_params is not None:
        columns.update(labels.label_arrays(prepared, cutoff, label_params))
    population = in_population(
        columns["lifetime_orders"], columns["days_since_last_order"], params.active_within_days
    )
    rows = np.flatnonzero(population)
    return Part(prepared.customer_code[rows], {k: v[rows] for k, v in columns.items()})


def assemble(
    parts: Sequence[Part],
    ids: pd.Index,
    cutoff: pd.Timestamp,
    present: Sequence[FeatureSpec],
    catalog: Catalog,
    label_names: Sequence[str] = (),
) -> pd.DataFrame:
    """Merge partition parts into one snapshot table: sorted rows, fixed columns and dtypes.

    ``label_names`` are the label columns to keep (after the keys), for the training panel.
    """
    codes = np.concatenate([p.codes for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    merged = (
        {k: np.concatenate([p.columns[k] for p in parts])[order] for k in parts[0].columns}
        if parts
        else {}
    )
    n = codes.size
    data: dict[str, object] = {
        "customer_id": pd.array(ids.to_numpy()[codes[order]], dtype="string"),
        "cutoff": pd.DatetimeIndex(
            np.full(n, cutoff.value // 1000, dtype="datetime64[us]"), tz="UTC"
        ),
    }
    for name in label_names:
        values = merged.get(name, np.zeros(0, dtype=np.int8))
        # binary labels are 0/1 int8; a value (spend) label stays float64
        data[name] = values.astype(np.float64 if values.dtype.kind == "f" else np.int8)
    for spec in present:
        if spec.name not in merged and n:
            raise KeyError(f"feature {spec.name} is in the catalog but no code computes it")
        values = merged.get(spec.name, np.zeros(0))
        if spec.dtype == "category":
            levels = list(spec.levels or ())
            if spec.name in CODED:
                data[spec.name] = pd.Categorical.from_codes(
                    np.asarray(values, dtype=np.int16), pd.Index(levels)
                )
            else:
                data[spec.name] = pd.Categorical(
                    np.asarray(values, dtype=object), categories=levels
                )
        else:
            data[spec.name] = np.asarray(values, dtype=np.float64)
    return pd.DataFrame(data)


def check_catalog(catalog: Catalog) -> None:
    """Fail early if the catalog's fixed level lists disagree with the code's encodings."""
    if (
        "nps_group" in {s.name for s in catalog.features}
        and catalog.spec("nps_group").levels != NPS_GROUPS
    ):
        raise ValueError(f"nps_group levels must be {NPS_GROUPS}")


def region_levels(catalog: Catalog) -> tuple[str, ...]:
    """Return the fixed region levels of the catalog (empty when it has no region feature)."""
    names = {s.name for s in catalog.features}
    return (catalog.spec("region").levels or ()) if "region" in names else ()


def build_snapshot(
    orders: pd.DataFrame,
    returns: pd.DataFrame | None,
    feedback: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    cutoff: dt.date | dt.datetime | str | pd.Timestamp,
    params: FeaturesParams,
    catalog: Catalog,
) -> pd.DataFrame:
    """One row per customer of the population at ``cutoff``, from events strictly before it.

    Columns: ``customer_id``, ``cutoff``, then the features the source supports, in catalog
    order (float64, or ``category`` with the catalog's fixed levels). Rows sorted by id. A
    single-process run; :func:`pipeline.features.panel.build_scoring_snapshot` gives the same
    table using partitions and a process pool.
    """
    check_catalog(catalog)
    expanded = catalog.expand(params.windows_days)
    prepared, ids = prepare(orders, returns, feedback, customers, region_levels(expanded))
    when = cutoff_timestamp(cutoff)
    present, _ = feature_plan(expanded, prepared.available)
    part = snapshot_part(prepared, cutoff_us(when), params)
    return assemble([part], ids, when, present, expanded)
