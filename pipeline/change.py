"""Change since the last run: who is newly at risk, value at risk then and now (pure).

A run's scores are folded batch by batch into a :class:`RunScores` (:func:`summarise`):
counts, the sum of value at risk, and the customers *at risk* (churn risk band ``high``, the
predicted churners of :mod:`pipeline.business`) with their value at risk, so memory grows with
the customers at risk, never with the whole file held twice. :func:`change_since` compares two
runs per ``customer_id`` and returns the scores manifest's ``change`` block: counts and sums,
never a list of customers.

Previous scores of another layout compare on what both runs have: a column one of them lacks
leaves its figures out, with a one-line note; without ``customer_id`` nothing is compared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipeline.business import LEVELS

ID, AS_OF, BAND, VALUE = "customer_id", "as_of", "churn_risk_band", "value_at_risk"
#: The risk band of a customer at risk (a predicted churner).
AT_RISK = LEVELS[0]
#: Scores columns naming each model's version end so: ``churn_model_version``.
VERSION_SUFFIX = "_model_version"
#: What the comparison reads of a scores file (the version columns besides).
COLUMNS = (ID, AS_OF, BAND, VALUE)


@dataclass(frozen=True)
class RunScores:
    """What the comparison needs of one run's scores."""

    columns: frozenset[str]
    customers: int = 0
    as_of: str | None = None
    model_versions: Mapping[str, str] = field(default_factory=dict)
    #: customer_id -> value at risk (NaN when unknown) of every customer at risk.
    at_risk: Mapping[str, float] = field(default_factory=dict)
    #: The sum of value at risk; None when no customer has one (no value model scored).
    value_at_risk: float | None = None


def wanted(columns: Iterable[str]) -> list[str]:
    """Return the columns of a scores file the comparison reads, in file order."""
    return [c for c in columns if c in COLUMNS or c.endswith(VERSION_SUFFIX)]


def summarise(batches: Iterable[pd.DataFrame]) -> RunScores:
    """Fold a run's scores (batches of :func:`wanted` columns) into a :class:`RunScores`."""
    columns: frozenset[str] | None = None
    customers, as_of, total, valued = 0, None, 0.0, 0
    versions: dict[str, str] = {}
    at_risk: dict[str, float] = {}
    for batch in batches:
        if columns is None:
            columns = frozenset(batch.columns)
        customers += len(batch)
        if as_of is None and AS_OF in batch and batch[AS_OF].notna().any():
            as_of = str(pd.Timestamp(batch[AS_OF].dropna().iloc[0]).isoformat())
        for name in batch.columns:
            if name.endswith(VERSION_SUFFIX) and name not in versions and len(batch):
                versions[name.removesuffix(VERSION_SUFFIX)] = str(batch[name].iloc[0])
        value = (
            pd.to_numeric(batch[VALUE], errors="coerce")
            if VALUE in batch
            else pd.Series(float("nan"), index=batch.index)
        )
        total += float(value.sum())
        valued += int(value.notna().sum())
        if ID in batch and BAND in batch:
            risky = (batch[BAND].astype("string") == AT_RISK).fillna(False).to_numpy(dtype=bool)
            ids = batch.loc[risky, ID].astype("string")
            at_risk.update(zip(ids.tolist(), value[risky].astype("float64").tolist(), strict=True))
    return RunScores(
        columns or frozenset(), customers, as_of, versions, at_risk, total if valued else None
    )


def _sum(values: Iterable[float]) -> float:
    return float(sum(v for v in values if not math.isnan(v)))


def change_since(previous: RunScores, current: RunScores, origin: str) -> dict[str, Any]:
    """Return the manifest's ``change`` block: this run (``current``) against ``previous``.

    ``origin`` names the previous scores (a path) in the block and its notes.
    """
    block: dict[str, Any] = {
        "previous": origin,
        "as_of_then": previous.as_of,
        "as_of_now": current.as_of,
        "customers_then": previous.customers,
        "customers_now": current.customers,
        "notes": [],
    }
    notes: list[str] = block["notes"]
    if ID not in previous.columns:
        notes.append(f"{origin}: no {ID} column, so no customer is compared")
        return block
    valued = all(run.value_at_risk is not None for run in (previous, current))
    if valued:
        block["value_at_risk_then"] = previous.value_at_risk
        block["value_at_risk_now"] = current.value_at_risk
    else:
        notes.append("value at risk not compared: one run's scores have none (no value model)")
    if all(BAND in run.columns for run in (previous, current)):
        then, now = set(previous.at_risk), set(current.at_risk)
        newly = now - then
        block.update(
            at_risk_then=len(then),
            at_risk_now=len(now),
            newly_at_risk=len(newly),
            no_longer_at_risk=len(then - now),
            still_at_risk=len(now & then),
        )
        if valued:
            block["value_at_risk_newly_at_risk"] = _sum(current.at_risk[i] for i in newly)
    else:
        notes.append(f"customers at risk not compared: {BAND} missing in one run's scores")
    changed = {
        target: {"then": previous.model_versions[target], "now": version}
        for target, version in current.model_versions.items()
        if previous.model_versions.get(target, version) != version
    }
    if changed:
        block["models_changed"] = changed
        notes.append(
            f"model(s) {', '.join(sorted(changed))} changed since the previous scores: part of "
            "the change is the model's"
        )
    return block


def no_previous(reason: str) -> dict[str, Any]:
    """Return the ``change`` block of a run with nothing to compare with, and why."""
    return {"previous": None, "notes": [reason]}
