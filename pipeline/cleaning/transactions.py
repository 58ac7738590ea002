"""Invoice lines -> orders and returns (one row per invoice), with rejects and counts."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.cleaning.parsing import blank, fold_ids, parse_number, parse_timestamp, tidy_ids
from pipeline.cleaning.reasons import Reason, non_numeric, out_of_range
from pipeline.cleaning.rules import CleanRules
from pipeline.errors import DataError

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
    lines: pd.DataFrame,
    verdicts: Verdicts,
    rules: CleanRules,
    ts_column: str,
    as_of: pd.Timestamp,
    duplicates: pd.Series | None = None,
    ids_normalised: Counter[str] | None = None,
) -> tuple[pd.Series, pd.Series]:
    """Duplicate, customer id, timestamp and future checks shared by every table.

    Lines whose customer id the Unicode rule changed are counted in ``ids_normalised``.
    """
    if duplicates is None:
        duplicates = lines.duplicated(subset=field_columns(lines), keep="first")
    verdicts.reject(duplicates, Reason.DUPLICATE_ROW)
    folded, changed = fold_ids(lines["customer_id"])
    if ids_normalised is not None:
        ids_normalised["customer_id"] += changed
    ids = tidy_ids(folded, rules.id_nulls)
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


class DuplicateFilter:
    """Exact-duplicate detection across chunks, by a 64-bit hash of each row's mapped fields.

    Keeps one sorted array of 8-byte hashes, not the rows (a collision between two different
    rows has a probability of about n^2 / 2^65: 3e-7 for ten million rows).
    """

    def __init__(self) -> None:
        self.seen = np.empty(0, dtype=np.uint64)

    def __call__(self, lines: pd.DataFrame) -> pd.Series:
        """Mask of rows equal to an earlier row of this chunk or of an earlier chunk."""
        hashes = pd.util.hash_pandas_object(lines[field_columns(lines)], index=False).to_numpy()
        repeated = pd.Series(hashes).duplicated(keep="first").to_numpy()
        if len(self.seen) and len(hashes):
            position = np.minimum(np.searchsorted(self.seen, hashes), len(self.seen) - 1)
            repeated = repeated | (self.seen[position] == hashes)
        # two sorted runs: the stable sort (timsort) merges them in linear time
        self.seen = np.sort(np.concatenate([self.seen, np.unique(hashes)]), kind="stable")
        return pd.Series(repeated, index=lines.index)


class TransactionCleaner:
    """Validate invoice lines chunk by chunk; keep only per-(invoice, product) partial sums.

    :meth:`add` returns each chunk's reasons (the caller keeps the rejects); :meth:`finish`
    aggregates the partial sums into orders and returns. Memory grows with the number of
    distinct (invoice, product) pairs, not with the raw text.
    """

    def __init__(self, rules: CleanRules, as_of: pd.Timestamp) -> None:
        self.rules = rules
        self.as_of = as_of
        self.duplicates = DuplicateFilter()
        self.partials: list[pd.DataFrame] = []
        # (invoice hash, invoice+product hash) of order lines, 16 bytes each: distinct products
        # per order without keeping the product codes
        self.products: list[np.ndarray] = []
        self.has_sku = False
        # True once a chunk had no order id column: orders are then one per customer and
        # timestamp (the purchase-log shape), stated in the manifest.
        self.order_ids_derived = False
        self.codes: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.ids_normalised: Counter[str] = Counter()

    def add(self, lines: pd.DataFrame) -> pd.Series:
        """Check one chunk of raw lines; return its reasons (<NA> = accepted)."""
        rules = self.rules
        verdicts = Verdicts(lines.index)
        ids, stamps = common_checks(
            lines,
            verdicts,
            rules,
            "order_ts",
            self.as_of,
            self.duplicates(lines),
            self.ids_normalised,
        )
        order_ids = order_ids_of(lines, stamps, self.ids_normalised)
        self.order_ids_derived = self.order_ids_derived or "order_id" not in lines.columns
        verdicts.reject(blank(order_ids), Reason.MISSING_ORDER_ID)
        values: dict[str, pd.Series] = {}
        for column in NUMERIC:
            if column in lines.columns:
                parsed, bad = parse_number(lines[column], rules.decimal)
                required = column != "discount"
                verdicts.reject(bad | (parsed.isna() & required), non_numeric(column))
                values[column] = within_bound(parsed, bound(rules, column), verdicts, column)
        optional_ts: dict[str, pd.Series] = {}
        for column in OPTIONAL_TS:
            if column in lines.columns:
                optional_ts[column], bad = parse_timestamp(
                    lines[column], date_format(rules, column), rules.timezone
                )
                verdicts.reject(bad, Reason.BAD_DATE)

        prefix = rules.cancellation_prefix
        cancel = (
            order_ids.str.startswith(prefix).fillna(False).astype(bool)
            if prefix
            else pd.Series(False, index=lines.index)
        )
        self.has_sku = self.has_sku or "sku" in lines.columns
        if "sku" in lines.columns:
            folded, changed = fold_ids(lines["sku"])
            self.ids_normalised["sku"] += changed
            sku = folded.str.strip().str.upper()
        else:
            sku = pd.Series("", index=lines.index, dtype="string")
        non_product = sku.isin(rules.non_product_codes).fillna(False).astype(bool)
        non_product = non_product & verdicts.accepted  # valid lines, excluded from spend
        checked = ~non_product
        reject_zero = rules.zero_value_lines == "reject"
        if "quantity" in values:
            quantity, price = values["quantity"], values["unit_price"]
            verdicts.reject(
                checked & ((quantity <= 0) & ~cancel | (quantity == 0)),
                Reason.NON_POSITIVE_QUANTITY,
            )
            zero = price == 0
            verdicts.reject(checked & ((price < 0) | zero & reject_zero), Reason.NON_POSITIVE_PRICE)
            # both factors are bounded, so the product is finite; it has its own bound
            line_value = within_bound(quantity * price, rules.max_amount, verdicts, "amount")
            items, unit = quantity.abs(), price
        else:
            amount = values["amount"]
            zero = amount == 0
            verdicts.reject(
                checked & ((amount < 0) & ~cancel | zero & reject_zero), Reason.NON_POSITIVE_AMOUNT
            )
            line_value, items, unit = amount, pd.Series(1.0, index=lines.index), amount
        if "discount" in values:
            verdicts.reject(values["discount"] < 0, Reason.NEGATIVE_DISCOUNT)

        accepted = verdicts.accepted
        product = accepted & ~non_product
        frame = pd.DataFrame(
            {
                "customer_id": ids,
                "order_id": order_ids,
                "sku": sku,
                "is_return": cancel,
                "ts": stamps,
                "value": line_value.abs(),
                "items": items,
            }
        )
        if "discount" in values:
            frame["discount"] = values["discount"].fillna(0.0)
        if "channel" in lines.columns:
            frame["channel"] = lines["channel"].str.strip()
        for column, series in optional_ts.items():
            frame[column] = series
        kept = frame[product]
        self.partials.append(_partial(kept))
        sold = kept[~kept["is_return"]]
        pairs, first = np.unique(row_hash(sold[[*KEY, "sku"]]), return_index=True)
        self.products.append(np.stack([row_hash(sold[KEY])[first], pairs], axis=1))
        extreme = product & (
            (items > rules.extreme_quantity) | (unit.abs() > rules.extreme_unit_price)
        )
        self.codes.update(sku[non_product].astype(str).tolist())
        self.counts.update(
            {
                "non_product_lines": int(non_product.sum()),
                "cancellation_lines": int((product & cancel).sum()),
                "extreme_lines_flagged": int(extreme.sum()),
                "zero_value_lines": int((product & zero.fillna(False).astype(bool)).sum()),
                "lines_with_customer_id_missing": int(
                    (verdicts.reason == Reason.MISSING_CUSTOMER_ID.value).sum()
                ),
            }
        )
        return verdicts.reason

    def finish(self) -> tuple[dict[str, pd.DataFrame], dict[str, object]]:
        """Aggregate the partial sums into orders and returns; return them and the counts."""
        partials = pd.concat(self.partials, ignore_index=True)
        orders = _orders(partials[~partials["is_return"]])
        if self.has_sku:
            stacked = np.concatenate(self.products)
            _, first = np.unique(stacked[:, 1], return_index=True)  # each product once per order
            keys, n_products = np.unique(stacked[first, 0], return_counts=True)
            position = np.searchsorted(keys, row_hash(orders[KEY]))
            orders["n_distinct_products"] = n_products[position].astype("int64")
        returns = _returns(partials[partials["is_return"]], self.rules)
        counts: dict[str, object] = {
            key: int(self.counts[key])
            for key in (
                "non_product_lines",
                "cancellation_lines",
                "extreme_lines_flagged",
                "zero_value_lines",
                "lines_with_customer_id_missing",
            )
        }
        counts["zero_value_orders"] = int((orders["gross_amount"] == 0).sum())
        counts["non_product_by_code"] = dict(sorted(self.codes.items()))
        counts["order_id_rule"] = DERIVED_ORDER_IDS if self.order_ids_derived else "from the export"
        counts["ids_normalised"] = {
            column: int(self.ids_normalised[column])
            for column in ("customer_id", "order_id", "sku")
            if column in self.ids_normalised
        }
        return {"orders": orders, "returns": returns}, counts


#: The manifest's ``order_id_rule`` when the export has no order id column.
DERIVED_ORDER_IDS = "derived: one order per customer per timestamp (the export has no order id)"


def order_ids_of(
    lines: pd.DataFrame, stamps: pd.Series, ids_normalised: Counter[str] | None = None
) -> pd.Series:
    """Return each line's order id: the export's, else its timestamp (one line = one purchase).

    Without an order id column the lines of one customer at one instant form one order, so
    a purchase log with one line per purchase needs no invented ids. The export's ids are
    Unicode-folded like customer ids (``Ｃ536365`` is the cancellation ``C536365``).
    """
    if "order_id" in lines.columns:
        folded, changed = fold_ids(lines["order_id"])
        if ids_normalised is not None:
            ids_normalised["order_id"] += changed
        return folded.str.strip()
    return stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f%z").astype("string")


def bound(rules: CleanRules, column: str) -> float:
    """Return the largest magnitude a value of a numeric transaction column may have."""
    return rules.max_quantity if column == "quantity" else rules.max_amount


def within_bound(values: pd.Series, limit: float, verdicts: Verdicts, column: str) -> pd.Series:
    """Reject values above ``limit`` in magnitude (inf included) as ``<column>_out_of_range``.

    Returns the values with those masked to NaN, so nothing downstream computes with them.
    """
    beyond = (values.abs() > limit).fillna(False).astype(bool)
    verdicts.reject(beyond, out_of_range(column))
    return values.mask(beyond)


def clean_transactions(lines: pd.DataFrame, rules: CleanRules, as_of: pd.Timestamp) -> TableResult:
    """Clean one in-memory table of invoice lines (a single chunk)."""
    cleaner = TransactionCleaner(rules, as_of)
    reasons = cleaner.add(lines)
    tables, counts = cleaner.finish()
    return TableResult(tables, reasons, counts)


PARTIAL_KEY = ["customer_id", "order_id", "is_return"]


def row_hash(frame: pd.DataFrame) -> np.ndarray:
    """64-bit hash of each row's values, the same for equal values whatever the chunk.

    Callers hash columns of the same dtypes (pandas ``string``) on both sides of a comparison.
    """
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _partial(lines: pd.DataFrame) -> pd.DataFrame:
    """Sum accepted product lines per (customer, invoice): what orders and returns need later."""
    spec: dict[str, tuple[str, str]] = {
        "ts": ("ts", "min"),
        "value": ("value", "sum"),
        "items": ("items", "sum"),
        "lines": ("value", "size"),
    }
    for column, how in (
        ("discount", "sum"),
        ("promised_ts", "min"),
        ("delivered_ts", "max"),
        ("channel", "first"),
    ):
        if column in lines.columns:
            spec[column] = (column, how)
    return lines.groupby(PARTIAL_KEY, sort=False, dropna=False).agg(**spec).reset_index()


def _orders(partials: pd.DataFrame) -> pd.DataFrame:
    """One row per (customer, invoice) from the partial sums; products = distinct stock codes."""
    spec: dict[str, tuple[str, str]] = {
        "order_ts": ("ts", "min"),
        "gross_amount": ("value", "sum"),
        "n_items": ("items", "sum"),
        # without stock codes every line counts as a product; with them, TransactionCleaner
        # overwrites this with the number of distinct codes
        "n_distinct_products": ("lines", "sum"),
    }
    lines = partials
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
    orders["n_items"] = item_counts(orders["n_items"].round().clip(lower=1))
    orders["n_distinct_products"] = orders["n_distinct_products"].astype("int64")
    return orders.sort_values(
        ["customer_id", "order_ts", "order_id"], kind="stable", ignore_index=True
    )


#: Item counts at or above this do not fit int64 (a float64 of 2**63 already overflows it).
INT64_LIMIT = float(2**63)


def item_counts(items: pd.Series) -> pd.Series:
    """Cast orders' summed quantities to int64, or fail naming the order: never a silent wrap.

    Unreachable with the rules' quantity cap unless one order has millions of lines at it.
    """
    beyond = ~(items < INT64_LIMIT)  # NaN included
    if beyond.any():
        raise DataError(
            f"an order's item count does not fit int64 ({items[beyond].iloc[0]:.3g} items): "
            "lower rules.max_quantity"
        )
    return items.astype("int64")


def _returns(lines: pd.DataFrame, rules: CleanRules) -> pd.DataFrame:
    """One row per (customer, cancellation invoice), amount as a positive value."""
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
