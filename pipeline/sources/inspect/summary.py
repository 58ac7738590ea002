"""The export read whole with the proposed config: what the summary of ``loyalty inspect`` says.

The reader, the id normaliser, the timestamp parser and the order-id rule are the pipeline's
own (the same calls as cleaning), so "12,000 of 12,000 lines have a customer and a timestamp"
is what the clean stage will find. Memory: the 8-byte hashes of the distinct customers, orders
and (customer, day) pairs, not the rows; at most ``max_rows`` transaction lines are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.cleaning.parsing import normalise_ids, parse_timestamp
from pipeline.cleaning.transactions import date_format, order_ids_of
from pipeline.features.gaps import Gaps
from pipeline.sources.csv_mapping import FileInfo, SourceConfig, iter_export
from pipeline.sources.reading import detect_format
from pipeline.sources.record_count import count_csv_records

MAX_ROWS = 5_000_000
DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Summary:
    """Counts over the export as the pipeline will read it."""

    rows: dict[str, int]  # records per table (the reader's independent count)
    lines: int  # transaction lines read
    usable: int  # of which with a customer id and a timestamp under the proposed format
    returns: int  # of which cancellations (by the proposed prefix)
    customers: int
    orders: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    orders_per_customer: float
    median_orders: float
    median_gap_days: float | None
    gaps: Gaps  # between purchase days of repeat customers: what the run settings come from
    capped: bool

    @property
    def span_days(self) -> int:
        """Days from the first to the last order."""
        if self.first is None or self.last is None:
            return 0
        return int((self.last - self.first) / pd.Timedelta(days=1))


def _hash(frame: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def summarise(config: SourceConfig, inputs: list[Path], max_rows: int = MAX_ROWS) -> Summary:
    """Read the export with ``config`` and count lines, customers, orders and the date span."""
    rules = config.rules
    fmt = date_format(rules, "order_ts")
    files: list[FileInfo] = []
    rows: dict[str, int] = {}
    orders: list[pd.DataFrame] = []
    lines = usable = returns = 0
    first = last = None
    capped = False
    for chunk in iter_export(config, inputs, files):
        if chunk.table != "transactions":
            continue
        raw = chunk.rows
        lines += len(raw) + len(chunk.rejects)
        ids = normalise_ids(raw["customer_id"], rules.id_nulls)
        stamps, _ = parse_timestamp(raw["order_ts"], fmt, rules.timezone)
        order_ids = order_ids_of(raw, stamps)
        ok = ids.notna() & stamps.notna() & order_ids.notna()
        usable += int(ok.sum())
        if rules.cancellation_prefix:
            cancelled = order_ids.str.startswith(rules.cancellation_prefix).fillna(False)
            returns += int((ok & cancelled).sum())
            ok &= ~cancelled
        kept = pd.DataFrame({"customer": ids[ok], "order": order_ids[ok], "ts": stamps[ok]})
        if not kept.empty:
            low, high = kept["ts"].min(), kept["ts"].max()
            first = low if first is None else min(first, low)
            last = high if last is None else max(last, high)
            day = kept["ts"].dt.tz_convert(None).to_numpy().astype(np.int64) // DAY_US
            orders.append(
                pd.DataFrame(
                    {
                        "customer": _hash(kept[["customer"]]),
                        "order": _hash(kept[["customer", "order"]]),
                        "day": day,
                    }
                ).drop_duplicates(["order"])
            )
        if lines >= max_rows:
            capped = True
            break
    for info in files:
        rows[info.table] = rows.get(info.table, 0) + info.rows_read
    if capped:
        rows["transactions"] = _count_transactions(config, inputs)
    return _figures(rows, lines, usable, returns, orders, first, last, capped)


def _count_transactions(config: SourceConfig, inputs: list[Path]) -> int:
    """Count the records of the transaction files without parsing them (a capped scan)."""
    total = 0
    for path in inputs:
        if path.is_file() and detect_format(path) == "csv":
            total += count_csv_records(path, config.dialect.quotechar)
    return total


def _figures(
    rows: dict[str, int],
    lines: int,
    usable: int,
    returns: int,
    orders: list[pd.DataFrame],
    first: pd.Timestamp | None,
    last: pd.Timestamp | None,
    capped: bool,
) -> Summary:
    table = (
        pd.concat(orders, ignore_index=True).drop_duplicates(["order"])
        if orders
        else pd.DataFrame({"customer": [], "order": [], "day": []})
    )
    per_customer = table.groupby("customer").size()
    days = table[["customer", "day"]].drop_duplicates().sort_values(["customer", "day"])
    same = days["customer"].to_numpy()[1:] == days["customer"].to_numpy()[:-1]
    gaps = np.diff(days["day"].to_numpy())[same]
    repeat = np.unique(days["customer"].to_numpy()[1:][same]).size
    return Summary(
        rows=rows,
        lines=lines,
        usable=usable,
        returns=returns,
        customers=int(per_customer.size),
        orders=int(len(table)),
        first=first,
        last=last,
        orders_per_customer=float(per_customer.mean()) if per_customer.size else 0.0,
        median_orders=float(per_customer.median()) if per_customer.size else 0.0,
        median_gap_days=float(np.median(gaps)) if gaps.size else None,
        gaps=Gaps(np.sort(gaps), int(repeat)),
        capped=capped,
    )
