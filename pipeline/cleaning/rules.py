"""Per-source cleaning rules (the ``rules:`` block of a ``configs/sources/*.yaml`` file)."""

from __future__ import annotations

import zoneinfo
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_ID_NULLS = ("", "nan", "none", "null", "na", "n/a", "<na>")


class CleanRules(BaseModel):
    """How a source writes its values, and what counts as a non-product or a cancellation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decimal: Literal[".", ","] = "."
    # Local time zone of naive timestamps. DST rule: a time in the spring-forward gap is moved
    # forward to the first valid instant; a time in the autumn overlap is read as the first
    # (summer-time) occurrence. Never an AmbiguousTimeError.
    timezone: str = "UTC"
    # strptime format per canonical timestamp column (order_ts, promised_ts, delivered_ts,
    # feedback_ts, signup_ts). Explicit on purpose: 03/09 and 14/09 must never swap silently.
    date_formats: dict[str, str] = Field(default_factory=dict)
    # An order id starting with this marks a cancellation/return (None: no cancellations).
    cancellation_prefix: str | None = "C"
    # What order_id a return refers to: none (unknown) or the return id minus the prefix.
    return_order_id: Literal["none", "strip_prefix"] = "none"
    # Stock codes that are not products (postage, manual, bank charges...), upper-case.
    non_product_codes: tuple[str, ...] = ()
    # Customer-id spellings that mean "no id" (compared lower-case after stripping).
    id_nulls: tuple[str, ...] = DEFAULT_ID_NULLS
    # Lines worth zero (a free item, a sample, a zero-priced promotion): keep = accepted as
    # zero-value lines, so their orders count for recency and frequency but add no spend
    # (counted in the manifest as zero_value_lines / zero_value_orders); reject = quarantined
    # as non_positive_price / non_positive_amount. A negative price is always quarantined.
    zero_value_lines: Literal["keep", "reject"] = "keep"
    # Lines above these are kept but flagged (counted in the manifest).
    extreme_quantity: float = Field(default=10_000, gt=0)
    extreme_unit_price: float = Field(default=10_000, gt=0)
    # Quarantine bounds: a value of larger magnitude, or one that is not finite (1e309, a
    # 400-digit integer), is rejected as <column>_out_of_range. max_amount bounds every money
    # value: unit prices, amounts, discounts and each line's quantity x unit price. The caps
    # keep any sum finite and an order's item count inside int64 (below 9 million lines at
    # the cap, 9 billion at the default), so no clean table can hold inf.
    max_quantity: float = Field(default=1e9, gt=0, le=1e12)
    max_amount: float = Field(default=1e12, gt=0, le=1e15)
    # A complaint open longer than this (hours; default ten years) is a data error.
    max_resolution_hours: float = Field(default=87_600, gt=0, le=1e7)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("date_formats")
    @classmethod
    def _strptime_formats(cls, value: dict[str, str]) -> dict[str, str]:
        for column, fmt in value.items():
            problem = strptime_problem(fmt)
            if problem is not None:
                raise ValueError(f"{column}: {problem}")
        return value


def strptime_problem(fmt: str) -> str | None:
    """Why ``fmt`` is not a usable timestamp format (a bad directive, a stray %), or None.

    Checked by the parser that will use it (pandas), on one value, so a typo like ``%Q`` is a
    config error naming the key before any row is read, not a traceback in the middle.
    ``mixed`` (a guess per value) is refused: it is the day/month swap the explicit format
    exists to prevent. ``ISO8601`` is pandas' strict ISO parser and is fine.
    """
    import pandas as pd

    if not fmt.strip():
        return "an empty format"
    if fmt.strip().lower() == "mixed":
        return "'mixed' guesses a format per value (03/09 vs 14/09); write the format"
    try:
        pd.to_datetime(pd.Series(["0"], dtype="string"), format=fmt, errors="coerce")
    except ValueError as exc:
        return str(exc)
    return None
