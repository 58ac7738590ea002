"""The feature dictionary (``configs/features.yaml``) as typed, validated objects.

The dictionary is the single list of features: their order in the table, their plain-language
description, concept group, unit, inputs, reason-code template and, for categoricals, the fixed
level list that training and scoring both encode with.

This module is the only reader of the file: the reason codes (:mod:`pipeline.reasons`), the
baselines and the monotone constraints of training ask a :class:`Catalog` (``lookup``,
``concept_of``, ``direction_of``, ``label``) rather than walking the YAML themselves.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline import io
from pipeline.errors import ConfigError

Concept = Literal[
    "recency",
    "frequency",
    "monetary",
    "satisfaction",
    "service",
    "product_quality",
    "delivery",
    "price",
    "relationship",
    "buying_pattern",
]

Direction = Literal["higher_is_riskier", "lower_is_riskier"]

WINDOW = "{window}"
#: Template fields that are not feature columns: the customer's value of the feature and what
#: the reference population (shipped with the model, ``pipeline.business.Reference``) says
#: of it: the median, the share with a value of zero (and its complement) among the customers
#: with a value, and the share with a value at all. ``window`` is only known to per-window
#: entries.
VALUE = "value"
REFERENCE_FIELDS = frozenset({"typical", "zero_share", "nonzero_share", "known_share"})
TEMPLATE_FIELDS = frozenset({VALUE, *REFERENCE_FIELDS})
# Window lengths are spelled as plain day counts: "90" matches, "090" or "" do not.
_DAYS = re.compile(r"[1-9][0-9]*")


def window_of(pattern: str, name: str) -> int | None:
    """Return the window (days) for which ``pattern`` expands to ``name``, else None.

    ``window_of("orders_count_{window}d", "orders_count_90d") == 90``. The one matcher of
    windowed names: every reader of the dictionary resolves expanded column names through it.
    """
    head, found, tail = pattern.partition(WINDOW)
    if not found or len(name) <= len(head) + len(tail):
        return None
    if not (name.startswith(head) and name.endswith(tail)):
        return None
    middle = name[len(head) : len(name) - len(tail)]
    return int(middle) if _DAYS.fullmatch(middle) else None


def template_fields(template: str | None) -> list[str]:
    """Return the field names of a reason template, in order (``[]`` for None)."""
    return [name for _lit, name, _spec, _conv in string.Formatter().parse(template or "") if name]


def check_template(template: str) -> str:
    """Return ``template`` if it is a valid reason sentence, else raise ``ValueError``.

    Fields are read as column names by the reason renderer, so each must be a plain name
    (``value``, a reference field such as ``typical``, ``window`` or a feature), without
    conversion or nested spec: ``{}``, ``{0}``, ``{value.real}``, ``{value!r}`` would otherwise
    never be filled. That each name exists is checked with the whole catalog
    (:meth:`Catalog._check`).
    """
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"invalid reason template ({exc})") from exc
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier() or conversion or "{" in (spec or ""):
            raise ValueError(f"invalid reason template field {{{name}}} in {template!r}")
    return template


class FeatureSpec(BaseModel):
    """One feature of the dictionary."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str
    concept: Concept
    unit: str
    requires: tuple[str, ...] = Field(min_length=1)
    # None: the feature never speaks in reason codes (the next one of its concept does).
    reason: str | None = None
    reason_missing: str | None = None
    # The feature states another concept's fact, always (BG/NBD's "may have stopped buying" is
    # recency's "no order for 182 days") or when its value is zero (no order in a window): in
    # reason codes it belongs to that concept, which tells the fact once.
    joins: Concept | None = None
    joins_when: Literal["always", "zero"] = "always"
    direction: Direction | None = None
    dtype: Literal["float64", "category"] = "float64"
    levels: tuple[str, ...] | None = None
    per_window: bool = False
    # Computed by the model from other features (``bgnbd``: pipeline/modeling/btyd_features.py),
    # not by build_snapshot; absent from snapshots, present in the model's inputs.
    derived: Literal["bgnbd"] | None = None

    @field_validator("reason", "reason_missing")
    @classmethod
    def _check_template(cls, value: str | None) -> str | None:
        return None if value is None else check_template(value)

    @model_validator(mode="after")
    def _check(self) -> FeatureSpec:
        if (self.dtype == "category") != (self.levels is not None):
            raise ValueError(f"{self.name}: categorical features (and only they) need levels")
        if self.levels is not None and list(self.levels) != sorted(set(self.levels)):
            raise ValueError(f"{self.name}: levels must be sorted and unique")
        if self.per_window != (WINDOW in self.name):
            raise ValueError(f"{self.name}: per_window features must have {WINDOW} in their name")
        for item in self.requires:
            if item.count(".") != 1:
                raise ValueError(f"{self.name}: requires entries are 'table.column', got {item!r}")
        if self.reason_missing is not None and self.reason is None:
            raise ValueError(f"{self.name}: reason_missing without a reason")
        if self.joins == self.concept:
            raise ValueError(f"{self.name}: joins names the feature's own concept")
        return self

    def templates(self) -> dict[str, str]:
        """Return the entry's reason templates by key (``reason``, ``reason_missing``)."""
        found = {"reason": self.reason, "reason_missing": self.reason_missing}
        return {key: text for key, text in found.items() if text is not None}

    def for_window(self, days: int) -> FeatureSpec:
        """Return this windowed entry with ``{window}`` replaced by ``days``."""
        text = str(days)
        return self.model_copy(
            update={
                "name": self.name.replace(WINDOW, text),
                "description": self.description.replace(WINDOW, text),
                "reason": (self.reason or "").replace(WINDOW, text) or None,
                "reason_missing": (self.reason_missing or "").replace(WINDOW, text) or None,
                "per_window": False,
            }
        )


class RfmSegmentRule(BaseModel):
    """A named RFM segment: a box of recency and frequency scores (1-5, inclusive)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    r: tuple[int, int]
    f: tuple[int, int]


class Catalog(BaseModel):
    """The whole feature dictionary."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    concepts: dict[Concept, str] = Field(default_factory=dict)
    features: tuple[FeatureSpec, ...]
    rfm_segments: tuple[RfmSegmentRule, ...]

    @model_validator(mode="after")
    def _check(self) -> Catalog:
        names = [spec.name for spec in self.features]
        if len(names) != len(set(names)):
            raise ValueError("feature names must be unique")
        grid = [[0] * 5 for _ in range(5)]
        for rule in self.rfm_segments:
            for r in range(rule.r[0], rule.r[1] + 1):
                for f in range(rule.f[0], rule.f[1] + 1):
                    grid[r - 1][f - 1] += 1
        if any(cell != 1 for row in grid for cell in row):
            raise ValueError("rfm_segments must cover each (r, f) score pair exactly once")
        segment = self.spec("rfm_segment") if "rfm_segment" in names else None
        if segment is not None and segment.levels != tuple(
            sorted(r.name for r in self.rfm_segments)
        ):
            raise ValueError("rfm_segment levels must be the sorted rfm_segments names")
        for spec in self.features:
            self._check_fields(spec)
        return self

    def _check_fields(self, spec: FeatureSpec) -> None:
        """Refuse a template field that names nothing the renderer can fill."""
        allowed = TEMPLATE_FIELDS | ({"window"} if spec.per_window else set())
        for key, template in spec.templates().items():
            for name in template_fields(template):
                if name in REFERENCE_FIELDS and spec.dtype == "category":
                    raise ValueError(
                        f"{spec.name}.{key}: {{{name}}} is a numeric reference; "
                        "a categorical feature has none"
                    )
                if name not in allowed and self.lookup(name) is None:
                    raise ValueError(
                        f"{spec.name}.{key}: unknown template field {{{name}}} (neither "
                        f"{', '.join(sorted(allowed))} nor a feature of the catalog)"
                    )

    def spec(self, name: str) -> FeatureSpec:
        """Return the entry called ``name`` (after window expansion)."""
        for item in self.features:
            if item.name == name:
                return item
        raise KeyError(name)

    def lookup(self, name: str) -> FeatureSpec | None:
        """Return the entry of column ``name``, windows filled in, or None if not listed.

        An exact entry wins; else a ``per_window`` entry whose name expands to ``name``
        (``orders_count_90d`` -> ``orders_count_{window}d`` with ``{window}`` = 90).
        """
        for item in self.features:
            if item.name == name:
                return item
        for item in self.features:
            days = window_of(item.name, name) if item.per_window else None
            if days is not None:
                return item.for_window(days)
        return None

    def concept_of(self, name: str) -> Concept | None:
        """Concept group of column ``name`` (windows resolved), None if not listed."""
        found = self.lookup(name)
        return None if found is None else found.concept

    def direction_of(self, name: str) -> Direction | None:
        """Churn-risk direction of column ``name`` (for monotone constraints), None if unknown."""
        found = self.lookup(name)
        return None if found is None else found.direction

    def label(self, concept: str) -> str:
        """Readable name of a concept group (``concepts:``), else the concept in words."""
        found = next((text for key, text in self.concepts.items() if key == concept), None)
        return found or concept.replace("_", " ").capitalize()

    def expand(self, windows: tuple[int, ...]) -> Catalog:
        """Return the catalog with every ``per_window`` entry repeated for each window."""
        out: list[FeatureSpec] = []
        for item in self.features:
            out.extend(item.for_window(w) for w in windows) if item.per_window else out.append(item)
        return self.model_copy(update={"features": tuple(out)})

    def segment_grid(self) -> list[list[str]]:
        """Return the 5x5 grid of segment names indexed ``[r - 1][f - 1]``."""
        grid = [[""] * 5 for _ in range(5)]
        for rule in self.rfm_segments:
            for r in range(rule.r[0], rule.r[1] + 1):
                for f in range(rule.f[0], rule.f[1] + 1):
                    grid[r - 1][f - 1] = rule.name
        return grid


def parse_catalog(raw: Any, origin: str = "configs/features.yaml") -> Catalog:
    """Validate a parsed feature dictionary; report the first problem on one line."""
    try:
        return Catalog.model_validate(io.as_mapping(raw, origin))
    except ValidationError as exc:
        raise ConfigError.from_validation(origin, exc) from exc


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate the feature dictionary."""
    return parse_catalog(io.read_yaml(path), str(path))


def missing_inputs(spec: FeatureSpec, available: Mapping[str, bool]) -> list[str]:
    """Return the ``table.column`` inputs of ``spec`` that the source does not provide."""
    return [item for item in spec.requires if not available.get(item, False)]
