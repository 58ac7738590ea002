"""Reason codes: each customer's top drivers of risk, as sentences a marketer can read.

Pure and vectorised over rows (the scorer calls it on hundreds of thousands of customers):
the ranking is one numpy ``argsort``, and each sentence template is filled once per
(rank, feature) group of rows.

Templates come from the feature catalog (:mod:`pipeline.features.catalog`, which reads and
validates ``configs/features.yaml``; fields ``reason`` and ``reason_missing``) and use
:meth:`str.format` fields:

- ``{value}``: the customer's value of the feature itself, e.g. ``{value:.0f}``;
- ``{<other_feature>}``: the customer's value of another feature, for a comparison with their
  own habit (``usually orders every {inter_purchase_gap_mean_days:.0f} days``);
- ``{typical}``: a reference value of the feature (e.g. the training median), if given.

A column the catalog does not list gets ``"<name in words>: <value>"``. When a field is
missing for a row (no reviews yet, say), the feature's ``reason_missing`` template is used,
else "<description> (no data yet)".
"""

from __future__ import annotations

import logging
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.features.catalog import Catalog, FeatureSpec, load_catalog

logger = logging.getLogger(__name__)

NOT_FEATURES = frozenset({"customer_id", "cutoff", "base_value", "split", "as_of"})
OTHER = "other"


@dataclass(frozen=True)
class FeatureInfo:
    """What a reason sentence needs of one feature (a catalog entry, or a plain default)."""

    name: str
    description: str = ""
    concept: str = OTHER
    unit: str = ""
    reason: str | None = None
    reason_missing: str | None = None

    @classmethod
    def from_spec(cls, spec: FeatureSpec) -> FeatureInfo:
        """Return the reason-code view of a catalog entry (windows already filled in)."""
        return cls(
            spec.name, spec.description, spec.concept, spec.unit, spec.reason, spec.reason_missing
        )


@dataclass(frozen=True)
class FeatureDictionary:
    """The feature catalog as the report and the reason codes read it.

    A thin view: names are resolved by :meth:`Catalog.lookup` (``orders_count_90d`` matches
    the ``orders_count_{window}d`` entry), and a column the catalog does not list gets a plain
    default (its name in words, concept ``other``) rather than an error, so a model trained on
    an extra column still gets reasons.
    """

    catalog: Catalog

    def concepts(self, names: Sequence[str] | None = None) -> dict[str, str]:
        """Map feature name -> concept group (for ``names``, windows resolved, if given)."""
        if names is None:
            return {spec.name: spec.concept for spec in self.catalog.features}
        return {name: self.info(name).concept for name in names}

    def label(self, concept: str) -> str:
        """Readable name of a concept group."""
        return self.catalog.label(concept)

    def info(self, name: str) -> FeatureInfo:
        """Entry of ``name``, or a plain default when the catalog does not list it."""
        spec = self.catalog.lookup(name)
        if spec is None:
            return FeatureInfo(name, description=name.replace("_", " "))
        return FeatureInfo.from_spec(spec)


def load_dictionary(path: str | Path) -> FeatureDictionary:
    """Read and validate the feature dictionary (``configs/features.yaml``)."""
    return FeatureDictionary(load_catalog(path))


def _fmt(value: Any, spec: str) -> str:
    if isinstance(value, float | np.floating):
        if spec:
            try:
                return format(value, spec)
            except ValueError:
                pass
        value = float(value)
        return str(int(value)) if value.is_integer() else f"{value:,.1f}"
    if spec:
        try:
            return format(value, spec)
        except (ValueError, TypeError):
            pass
    return str(value)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _template_parts(info: FeatureInfo) -> list[tuple[str, str | None, str, str | None]]:
    if info.reason:
        return [
            (lit, name, spec or "", conv)
            for lit, name, spec, conv in string.Formatter().parse(info.reason)
        ]
    unit = f" {info.unit}" if info.unit else ""
    # No template: "<description>: <value> <unit>", built directly so that braces in a
    # description are never read as fields.
    return [(f"{info.description}: ", "value", "", None), (unit, None, "", None)]


def missing_sentence(info: FeatureInfo) -> str:
    """Sentence for a feature whose value (or a compared value) is unknown for the customer."""
    return f"{info.description.rstrip('. ')} (no data yet)"


def render_reason(
    info: FeatureInfo,
    rows: pd.DataFrame,
    references: Mapping[str, Any] | None = None,
) -> list[str]:
    """Fill the feature's template for every row of ``rows`` (a features frame)."""
    parts = _template_parts(info)
    n = len(rows)
    columns: list[list[str] | None] = []
    missing = np.zeros(n, dtype=bool)
    for _literal, name, spec, _conv in parts:
        if name is None:
            columns.append(None)
            continue
        values = _field_values(name, info, rows, references)
        if values is None:
            missing[:] = True
            columns.append([""] * n)
            continue
        missing |= np.array([_is_missing(v) for v in values], dtype=bool)
        columns.append([_fmt(v, spec or "") for v in values])
    pieces: list[list[str]] = []
    for (literal, _name, _spec, _conv), col in zip(parts, columns, strict=True):
        if literal:
            pieces.append([literal] * n)
        if col is not None:
            pieces.append(col)
    joined = ["".join(items) for items in zip(*pieces, strict=True)] if pieces else [""] * n
    if not missing.any():
        return joined
    # A field is empty for some rows: the `reason_missing` template (itself falling back to the
    # description when its own fields are empty), e.g. "No order for 40 days" without a usual gap.
    where = np.flatnonzero(missing)
    if info.reason_missing:
        plain = FeatureInfo(
            info.name, info.description, info.concept, info.unit, info.reason_missing
        )
        fallback = render_reason(plain, rows.iloc[where], references)
    else:
        fallback = [missing_sentence(info)] * len(where)
    for position, text in zip(where, fallback, strict=True):
        joined[position] = text
    return joined


def _columns_used(info: FeatureInfo) -> list[str]:
    """Feature columns a reason's templates read (copying only these keeps the rows cheap)."""
    used = {info.name}
    for template in (info.reason, info.reason_missing):
        for _literal, name, _spec, _conv in string.Formatter().parse(template or ""):
            if name and name not in ("value", "typical"):
                used.add(name)
    return sorted(used)


def _field_values(
    name: str, info: FeatureInfo, rows: pd.DataFrame, references: Mapping[str, Any] | None
) -> list[Any] | None:
    if name == "value":
        column = info.name
    elif name == "typical":
        if references is None or info.name not in references:
            return None
        return [references[info.name]] * len(rows)
    else:
        column = name
    if column not in rows.columns:
        return None
    return rows[column].astype(object).tolist()


def reason_codes(
    features: pd.DataFrame,
    contributions: pd.DataFrame,
    dictionary: FeatureDictionary,
    top_k: int = 3,
    direction: float = 1.0,
    references: Mapping[str, Any] | None = None,
    with_features: bool = False,
) -> pd.DataFrame:
    """Top ``top_k`` features raising each customer's risk, as sentences.

    ``features`` and ``contributions`` are aligned by position (row i of one is row i of the
    other); ``contributions`` holds one column per feature (log-odds; keys and ``base_value``
    are ignored). ``direction`` is +1 when a positive contribution means more risk (churn) and
    -1 when it means less (repurchase: the risk is not buying again). Only contributions that
    raise risk become reasons; a customer with fewer such features gets empty (``<NA>``)
    reasons. Returns ``reason_1..k`` (and ``reason_feature_1..k`` when ``with_features``) on
    the index of ``features``.
    """
    if top_k < 1:
        raise ValueError("top_k must be >= 1")
    if len(features) != len(contributions):
        raise ValueError(f"{len(features)} feature rows but {len(contributions)} contribution rows")
    names = [c for c in contributions.columns if c not in NOT_FEATURES]
    matrix = contributions[names].to_numpy(dtype="float64") * float(direction)
    matrix = np.where(np.isfinite(matrix) & (matrix > 0), matrix, -np.inf)
    k = min(top_k, len(names))
    n = len(features)
    order = np.argsort(-matrix, axis=1, kind="stable")[:, :k] if n else np.empty((0, k), int)
    rows_idx = np.arange(n)
    out: dict[str, Any] = {}
    feature_cols: dict[str, Any] = {}
    for rank in range(top_k):
        sentences = np.full(n, None, dtype=object)
        chosen = np.full(n, None, dtype=object)
        if rank < k:
            col = order[:, rank]
            valid = np.isfinite(matrix[rows_idx, col])
            for position in np.unique(col[valid]):
                hit = np.flatnonzero(valid & (col == position))
                info = dictionary.info(names[position])
                used = [c for c in _columns_used(info) if c in features.columns]
                sentences[hit] = render_reason(info, features[used].iloc[hit], references)
                chosen[hit] = names[position]
        out[f"reason_{rank + 1}"] = pd.array(sentences, dtype="string")
        feature_cols[f"reason_feature_{rank + 1}"] = pd.array(chosen, dtype="string")
    if with_features:
        out.update(feature_cols)
    return pd.DataFrame(out, index=features.index)


def reference_values(features: pd.DataFrame, names: Sequence[str]) -> dict[str, float]:
    """Median of each numeric feature: the ``{typical}`` customer in templates."""
    refs: dict[str, float] = {}
    for name in names:
        if name in features.columns and pd.api.types.is_numeric_dtype(features[name]):
            median = features[name].median()
            if not _is_missing(median):
                refs[name] = float(median)
    return refs
