"""Invoice lines -> orders and returns (one row per invoice), with rejects and counts."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from pipeline.cleaning.parsing import blank, normalise_ids, parse_number, parse_timestamp
from pipeline.cleaning.reasons import Reason, non_numeric
from pipeline.cleaning.rules import CleanRules

logger = logging.getLogger(__name__)

KEY = ["customer_id", "order_id"]
NUMERIC = ("quantity", "unit_price", "amount", "discount")
OPTIONAL_TS = ("promised_ts", "delivered_ts")


@dataclass(frozen=True)
class TableResult:
    """Outcome of cleaning one raw table."""

    tables: dict[str, pd.DataFrame]
    reasons: pd.Series  # one reason (or <NA> = accepted) per raw row, aligned with the input
    counts: dict[str, object] = field(default_factory=dict)


class Verdicts:
    """The first failing rule per row: later rules never overwrite an earlier reason."""

    def __init__(self, index: pd.Index) -> None:
        self.reason = pd.Series(pd.NA, index=index, dtype="string")

    def reject(self, mask: pd.Series, reason: Reason) -> None:
        """Give ``reason`` to the rows in ``mask`` that have no reason yet."""
        self.reason = self.reason.mask(mask.astype(bool) & self.reason.isna(), reason.value)

    @property
    def accepted(self) -> pd.Series:
        """Rows with no reason."""
        return self.reason.isna()


def field_columns(lines: pd.DataFrame) -> list[str]:
    """Return the data columns of a raw table (provenance excluded)."""
    return [c for c in lines.columns if c not in ("source_file", "line_number", "raw")]


def common_checks(
    lines: pd.DataFrame, verdicts: Verdicts, rules: CleanRules, ts_column: str, as_of: pd.Timestamp
) -> tuple[pd.Series, pd.Series]:
    """Duplicate, customer id, timestamp and future checks shared by every table."""
    verdicts.reject(
        lines.duplicated(subset=field_columns(lines), keep="first"), Reason.DUPLICATE_ROW
    )
    ids = normalise_ids(lines["customer_id"], rules.id_nulls)
    verdicts.reject(ids.isna(), Reason.MISSING_CUSTOMER_ID)
    if ts_column not in lines.columns:
        return ids, pd.Series(pd.NaT, index=lines.index, dtype="datetime64[us, UTC]")
    stamps, bad = parse_timestamp(lines[ts_column], date_format(rules, ts_column), rules.timezone)
    verdicts.reject(bad | stamps.isna(), Reason.BAD_DATE)
    verdicts.reject(stamps > as_of, Reason.FUTURE_DATE)
    return ids, stamps


def date_format(rules: CleanRules, column: str) -> str:
    """Return the explicit strptime format of a timestamp column, or raise ConfigError."""
    try:
        return rules.date_formats[column]
    except KeyError:
        from pipeline.errors import ConfigError

        raise ConfigError(f"source config: rules.date_formats.{column} is required") from None


def clean_transactions(lines: pd.DataFrame, rules: CleanRules, as_of: pd.Timestamp) -> TableResult:
    """Validate invoice lines, then aggregate accepted product lines per invoice."""
    verdicts = Verdicts(lines.index)
    ids, stamps = common_checks(lines, verdicts, rules, "order_ts", as_of)
    order_ids = lines["order_id"].str.strip()
    verdicts.reject(blank(order_ids), Reason.MISSING_ORDER_ID)
    values: dict[str, pd.Series] = {}
    for column in NUMERIC:
        if column in lines.columns:
            values[column], bad = parse_number(lines[column], rules.decimal)
            required = column != "discount"
            verdicts.reject(bad | (values[column].isna() & required), non_numeric(column))
    optional_ts: dict[str, pd.Series] = {}
    for column in OPTIONAL_TS:
        if column in lines.columns:
            optional_ts[column], bad = parse_timestamp(
                lines[column], date_format(rules, column), rules.timezone
            )
            verdicts.reject(bad, Reason.BAD_DATE)

    prefix = rules.cancellation_prefix
    cancel = (
        order_ids.str.startswith(prefix).fillna(False)
        if prefix
        else pd.Series(False, index=lines.index)
    )
    sku = lines["sku"].str.strip().str.upper() if "sku" in lines.columns else None
    non_product = (
        sku.isin(rules.non_product_codes).fillna(False) if sku is not None else cancel & False
    )
    non_product = non_product & verdicts.accepted  # valid lines, excluded from spend
    checked = ~non_product
    if "quantity" in values:
        quantity, price = values["quantity"], values["unit_price"]
        verdicts.reject(
            checked & ((quantity <= 0) & ~cancel | (quantity == 0)), Reason.NON_POSITIVE_QUANTITY
        )
        verdicts.reject(checked & (price <= 0), Reason.NON_POSITIVE_PRICE)
        line_value = quantity * price
        items = quantity.abs()
    else:
        amount = values["amount"]
        verdicts.reject(
            checked & ((amount <= 0) & ~cancel | (amount == 0)), Reason.NON_POSITIVE_AMOUNT
        )
        line_value = amount
        items = pd.Series(1.0, index=lines.index)
    if "discount" in values:
        verdicts.reject(values["discount"] < 0, Reason.NEGATIVE_DISCOUNT)

    accepted = verdicts.accepted
    product = accepted & ~non_product
    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "order_id": order_ids,
            "ts": stamps,
            "value": line_value.abs(),
            "items": items,
            "sku": sku if sku is not None else lines["line_number"].astype("string"),
        }
    )
    for column in ("discount", "channel"):
        if column in lines.columns:
            frame[column] = (
                values["discount"].fillna(0.0)
                if column == "discount"
                else lines[column].str.strip()
            )
    for column, series in optional_ts.items():
        frame[column] = series
    orders = _orders(frame[product & ~cancel])
    returns = _returns(frame[product & cancel], rules)
    extreme = (
        accepted
        & ~non_product
        & (
            (items > rules.extreme_quantity)
            | (values.get("unit_price", line_value).abs() > rules.extreme_unit_price)
        )
    )
    codes = (
        sku[non_product].value_counts().sort_index()
        if sku is not None
        else pd.Series(dtype="int64")
    )
    counts: dict[str, object] = {
        "non_product_lines": int(non_product.sum()),
        "non_product_by_code": {str(k): int(v) for k, v in codes.items()},
        "cancellation_lines": int((product & cancel).sum()),
        "extreme_lines_flagged": int(extreme.sum()),
        "lines_with_customer_id_missing": int(
            (verdicts.reason == Reason.MISSING_CUSTOMER_ID.value).sum()
        ),
    }
    return TableResult({"orders": orders, "returns": returns}, verdicts.reason, counts)


def _orders(lines: pd.DataFrame) -> pd.DataFrame:
    spec: dict[str, tuple[str, str]] = {
        "order_ts": ("ts", "min"),
        "gross_amount": ("value", "sum"),
        "n_items": ("items", "sum"),
        "n_distinct_products": ("sku", "nunique"),
    }
    if "discount" in lines.columns:
        spec["discount_amount"] = ("discount", "sum")
    if "promised_ts" in lines.columns:
        spec["promised_ts"] = ("promised_ts", "min")
    if "delivered_ts" in lines.columns:
        spec["delivered_ts"] = ("delivered_ts", "max")
    if "channel" in lines.columns:
        spec["channel"] = ("channel", "first")
    orders = lines.groupby(KEY, sort=False, dropna=False).agg(**spec).reset_index()
    # fractional quantities (weights) round; an order has at least one item
    orders["n_items"] = orders["n_items"].round().clip(lower=1).astype("int64")
    orders["n_distinct_products"] = orders["n_distinct_products"].astype("int64")
    return orders.sort_values(
        ["customer_id", "order_ts", "order_id"], kind="stable", ignore_index=True
    )


def _returns(lines: pd.DataFrame, rules: CleanRules) -> pd.DataFrame:
    returns = (
        lines.groupby(KEY, sort=False, dropna=False)
        .agg(return_ts=("ts", "min"), amount=("value", "sum"))
        .reset_index()
        .rename(columns={"order_id": "return_id"})
    )
    if rules.return_order_id == "strip_prefix" and rules.cancellation_prefix:
        order_id = returns["return_id"].str.removeprefix(rules.cancellation_prefix)
    else:
        order_id = pd.Series(pd.NA, index=returns.index, dtype="string")
    returns.insert(1, "order_id", order_id.astype("string"))
    columns = ["customer_id", "order_id", "return_id", "return_ts", "amount"]
    return returns[columns].sort_values(
        ["customer_id", "return_ts", "return_id"], kind="stable", ignore_index=True
    )
