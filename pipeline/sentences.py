"""Reason sentences: one feature's catalog template, filled for a customer, when it is a reason.

A template (``reason`` / ``reason_missing`` in ``configs/features.yaml``, validated by
:mod:`pipeline.features.catalog`) uses :meth:`str.format` fields:

- ``{value}``: the customer's value of the feature, e.g. ``{value:.0f}``;
- ``{<other_feature>}``: the customer's value of another feature, a comparison with their own
  habit (``usually orders every {inter_purchase_gap_days_mean:.0f} days``);
- ``{typical}``, ``{zero_share}``, ``{nonzero_share}``, ``{known_share}``: what the model's
  reference population says of the feature (:class:`Comparison`: the median, the share with a
  value of zero or not among the customers with a value, the share with a value at all).

:func:`speech` decides per customer whether the feature speaks, and with which template: all
fields known, and the customer on the risky side of each comparison as shown rounded (a
sentence "Orders in total: 5; typical customer 5" explains nothing); for a feature without a
known direction, outside the reference's middle half (:data:`USUAL_RANGE`). Nothing here
falls back to a description or prints "nan": a sentence that cannot be filled is not given.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.business import Reference
from pipeline.features.catalog import REFERENCE_FIELDS, VALUE, FeatureSpec

OTHER = "other"
#: Which template a feature speaks with, per customer.
SILENT, REASON, MISSING = 0, 1, 2
#: Fields compared with zero rather than with a value: "2 complaints; 93% of customers have none".
ZERO_FIELDS = frozenset({"zero_share", "nonzero_share"})
#: Quantiles of the reference that bound a feature's usual range (the middle half).
USUAL_RANGE = (0.25, 0.75)
_PRECISION = re.compile(r"\.(\d+)([f%])$")
_MINUS_ZERO = re.compile(r"-0(\.0*)?%?")


@dataclass(frozen=True)
class FeatureInfo:
    """What a reason sentence needs of one feature (a catalog entry, or a silent default)."""

    name: str
    description: str = ""
    concept: str = OTHER
    unit: str = ""
    reason: str | None = None
    reason_missing: str | None = None
    direction: str | None = None
    joins: str | None = None
    joins_when: str = "always"

    @classmethod
    def from_spec(cls, spec: FeatureSpec) -> FeatureInfo:
        """Return the reason-code view of a catalog entry (windows already filled in)."""
        return cls(
            spec.name,
            spec.description,
            spec.concept,
            spec.unit,
            spec.reason,
            spec.reason_missing,
            spec.direction,
            spec.joins,
            spec.joins_when,
        )


@dataclass(frozen=True)
class Comparison:
    """What the model's reference population says of one feature (template fields).

    ``low`` and ``high`` (the 25th and 75th percentiles) are not template fields: they bound
    the usual range that a feature without a known direction must leave to be a reason.
    """

    typical: float = math.nan
    zero_share: float = math.nan
    known_share: float = math.nan
    low: float = math.nan
    high: float = math.nan

    def field(self, name: str) -> float:
        """Value of reference field ``name`` (``typical``, ``zero_share``, ...); NaN if unknown."""
        if name == "nonzero_share":
            return 1.0 - self.zero_share
        return float(getattr(self, name))


def comparisons(reference: Reference) -> dict[str, Comparison]:
    """Each feature's :class:`Comparison` from a model's shipped reference population."""
    names = sorted(set(reference.features) | set(reference.known_share))
    return {
        name: Comparison(
            typical=reference.feature_quantile(name, 0.5),
            zero_share=reference.zero_share.get(name, math.nan),
            known_share=reference.known_share.get(name, math.nan),
            low=reference.feature_quantile(name, USUAL_RANGE[0]),
            high=reference.feature_quantile(name, USUAL_RANGE[1]),
        )
        for name in names
    }


@dataclass(frozen=True)
class _Field:
    name: str
    spec: str


def _fields(template: str) -> list[_Field]:
    return [
        _Field(name, spec or "")
        for _lit, name, spec, _conv in string.Formatter().parse(template)
        if name
    ]


def column_values(rows: pd.DataFrame, name: str) -> np.ndarray | None:
    """Return a column as float64 (NaN for missing) when numeric, else object (None)."""
    if name not in rows.columns:
        return None
    series = rows[name]
    if not isinstance(series.dtype, pd.CategoricalDtype) and (
        pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
    ):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        return np.where(np.isfinite(values), values, np.nan)
    return series.astype(object).where(series.notna(), None).to_numpy(dtype=object)


def _field_values(
    field: str,
    info: FeatureInfo,
    rows: pd.DataFrame,
    comparison: Comparison | None,
) -> np.ndarray | None:
    """Values of one template field for ``rows``; None when the field cannot be filled."""
    if field == VALUE:
        return column_values(rows, info.name)
    if field in REFERENCE_FIELDS:
        value = math.nan if comparison is None else comparison.field(field)
        return None if not math.isfinite(value) else np.full(len(rows), value)
    return column_values(rows, field)


def _known(values: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        return ~pd.isna(values)
    return ~np.isnan(values)


def _shown(values: np.ndarray, spec: str) -> np.ndarray:
    """Round as the format spec shows (``.0%`` of 0.954 reads 95%): compare what is read."""
    found = _PRECISION.search(spec)
    if found is None or values.dtype == object:
        return values
    scale = 100.0 if found.group(2) == "%" else 1.0
    return np.round(values * scale, int(found.group(1))) / scale


def _risky_side(value: np.ndarray, reference: np.ndarray, direction: str | None) -> np.ndarray:
    """Whether the customer's value is on the risky side of ``reference`` (unknown: False)."""
    with np.errstate(invalid="ignore"):
        if direction == "higher_is_riskier":
            return value > reference
        if direction == "lower_is_riskier":
            return value < reference
        return value != reference


def _template_speaks(
    template: str,
    info: FeatureInfo,
    rows: pd.DataFrame,
    comparison: Comparison | None,
    need_value: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Return, per row, (the customer's own fields are known, the sentence reads as a reason).

    The customer's own fields are the feature's value and any other feature the template
    reads; a reference field the model does not ship makes the sentence silent for everyone,
    never a "missing" sentence (the customer's data is not what is missing).
    """
    n = len(rows)
    fields = _fields(template)
    value_spec = next((f.spec for f in fields if f.name == VALUE), "")
    value = column_values(rows, info.name)
    own = np.ones(n, dtype=bool)
    if need_value or any(f.name == VALUE for f in fields):
        own &= np.zeros(n, dtype=bool) if value is None else _known(value)
    reads = np.ones(n, dtype=bool)
    for item in fields:
        if item.name == VALUE:
            continue
        values = _field_values(item.name, info, rows, comparison)
        if values is None and item.name in REFERENCE_FIELDS:
            reads[:] = False
            continue
        if values is None:  # another feature the rows lack: missing for everyone
            own[:] = False
            continue
        own &= _known(values)
        # Only numbers compare; a share with a value at all is a fact, not a comparison.
        if item.name == "known_share" or value is None or object in (value.dtype, values.dtype):
            continue
        shown = _shown(value, value_spec)
        if item.name in ZERO_FIELDS and info.direction == "lower_is_riskier":
            # Zero is the risky side: "Not in the loyalty programme; 62% of customers are".
            reads &= shown <= 0
        elif item.name in ZERO_FIELDS:
            # "Unresolved complaints: 2; 93% of customers have none": above zero.
            reads &= _risky_side(shown, np.zeros(n), info.direction)
        elif item.name == "typical" and info.direction is None and comparison is not None:
            # No known direction: being unlike the median is not enough ("Gaps between orders
            # vary by 26 days; typical customer 29 days"); outside the usual range is.
            low = _shown(np.full(n, comparison.low), item.spec)
            high = _shown(np.full(n, comparison.high), item.spec)
            with np.errstate(invalid="ignore"):
                reads &= (shown < low) | (shown > high)
        else:
            reads &= _risky_side(shown, _shown(values, item.spec), info.direction)
    return own, reads & own


def speech(
    info: FeatureInfo, rows: pd.DataFrame, comparison: Comparison | None = None
) -> np.ndarray:
    """Which template the feature speaks with for each row: SILENT, REASON or MISSING.

    ``reason`` when all its fields (and the feature's value) are known and the customer is on
    the risky side of every comparison; ``reason_missing`` when one of the customer's own
    fields of ``reason`` is empty and the fields of ``reason_missing`` are known (and compare
    the same way); else silent.
    """
    out = np.full(len(rows), SILENT, dtype=np.int8)
    if info.reason is None or not len(rows):
        return out
    own, reads = _template_speaks(info.reason, info, rows, comparison, need_value=True)
    out[reads] = REASON
    if info.reason_missing is not None and not own.all():
        _own, reads_missing = _template_speaks(
            info.reason_missing, info, rows, comparison, need_value=False
        )
        out[~own & reads_missing] = MISSING
    return out


def _fmt(value: Any, spec: str) -> str:
    if isinstance(value, float | np.floating):
        value = float(value)
        try:
            text = format(value, spec) if spec else None
        except ValueError:
            text = None
        if text is None:
            text = str(int(value)) if value.is_integer() else f"{value:,.1f}"
        # -0.2 shown as "-0" would read as a change; it is none at that precision.
        return text[1:] if text.startswith("-0") and _MINUS_ZERO.fullmatch(text) else text
    try:
        return format(value, spec) if spec else str(value)
    except (ValueError, TypeError):
        return str(value)


def render_reason(
    template: str,
    info: FeatureInfo,
    rows: pd.DataFrame,
    comparison: Comparison | None = None,
) -> list[str]:
    """Fill ``template`` (a template of feature ``info``) for every row of ``rows``.

    Every field must be known for these rows (:func:`speech` said so); a field that is not
    raises ``ValueError`` rather than printing "nan".
    """
    n = len(rows)
    pieces: list[list[str]] = []
    for literal, name, spec, _conv in string.Formatter().parse(template):
        if literal:
            pieces.append([literal] * n)
        if not name:
            continue
        values = _field_values(name, info, rows, comparison)
        if values is None or not _known(values).all():
            raise ValueError(f"{info.name}: field {{{name}}} is empty for a row it speaks for")
        pieces.append([_fmt(v, spec or "") for v in values.tolist()])
    return ["".join(items) for items in zip(*pieces, strict=True)] if pieces else [""] * n


def columns_used(info: FeatureInfo) -> list[str]:
    """Feature columns a feature's templates read (copying only these keeps the rows cheap)."""
    used = {info.name}
    for template in (info.reason, info.reason_missing):
        for item in _fields(template or ""):
            if item.name != VALUE and item.name not in REFERENCE_FIELDS:
                used.add(item.name)
    return sorted(used)
