"""The clean stage: canonical raw tables -> clean tables, rejects and a reconciled manifest.

Pure: :func:`clean_tables` takes the :class:`~pipeline.sources.csv_mapping.RawTables` read by a
source adapter, the source's cleaning rules and the as-of instant, and returns DataFrames and a
manifest dict. The CLI (and the batch scorer) read with
:func:`pipeline.sources.csv_mapping.read_export` and write with :mod:`pipeline.io`.

Every raw row ends up accepted or in ``rejects`` with one reason (the first rule it breaks, in
the order of the checks). Per input file, ``rows_read`` (counted by an independent reader) must
equal accepted + rejected; otherwise the run fails: a row was lost or invented.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import schemas
from pipeline.cleaning.rules import CleanRules
from pipeline.cleaning.satisfaction import clean_customers, clean_feedback
from pipeline.cleaning.transactions import TableResult, TransactionCleaner, clean_transactions
from pipeline.config import MAX_RECORD_BYTES
from pipeline.errors import DataError
from pipeline.sources.csv_mapping import (
    FileInfo,
    RawTables,
    SourceConfig,
    empty_rejects,
    iter_export,
)
from pipeline.sources.reading import REJECT_COLUMNS

logger = logging.getLogger(__name__)

CLEANERS: dict[str, Callable[[pd.DataFrame, CleanRules, pd.Timestamp], TableResult]] = {
    "transactions": clean_transactions,
    "feedback": clean_feedback,
    "customers": clean_customers,
}
OUTPUT_TABLES = ("orders", "returns", "feedback", "customers")
OPTIONAL_COLUMNS = {
    "orders": ("discount_amount", "promised_ts", "delivered_ts", "channel"),
    "returns": ("reason",),
    "feedback": ("score", "resolved", "resolution_hours"),
    "customers": ("signup_ts", "loyalty_member", "region"),
}
REJECT_SORT = ["table", "source_file", "line_number", "reason_code"]


@dataclass(frozen=True)
class CleanResult:
    """Clean tables (only those the source provides), rejects and the manifest."""

    tables: dict[str, pd.DataFrame]
    rejects: pd.DataFrame
    manifest: dict[str, Any]


def default_as_of(now: pd.Timestamp | None = None) -> pd.Timestamp:
    """Return the as-of used when params leave it null: the next UTC midnight (stable in a day)."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now.tz_convert("UTC")
    return now.floor("D") + pd.Timedelta(days=1)


def resolve_as_of(
    explicit: object | None, stated: pd.Timestamp | None, now: pd.Timestamp | None = None
) -> pd.Timestamp:
    """Return the instant after which events are `future_date`.

    In order: the as-of given in params; the extraction time the export states about itself
    (a simulated export is dated in its own past, so "now" would let its future rows through);
    the next UTC midnight.
    """
    if explicit is not None:
        stamp = pd.Timestamp(explicit)  # type: ignore[arg-type]
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if stated is not None:
        return stated
    return default_as_of(now)


class _Cleaner:
    """Accumulates chunks: transactions are cleaned as they come, the small tables at the end."""

    def __init__(self, rules: CleanRules, as_of: pd.Timestamp) -> None:
        as_of = pd.Timestamp(as_of)
        self.as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
        self.rules = rules
        self.transactions = TransactionCleaner(rules, self.as_of)
        self.held: dict[str, list[pd.DataFrame]] = {}
        self.rejects: list[pd.DataFrame] = []
        self.accepted_by_file: Counter[str] = Counter()
        self.provided: set[str] = set()

    def add(self, table: str, rows: pd.DataFrame, read_rejects: pd.DataFrame) -> None:
        """Take one chunk of a raw table and its read-level rejects."""
        self.provided.add(table)
        if len(read_rejects):
            self.rejects.append(read_rejects[[*REJECT_COLUMNS, "table"]])
        if table == "transactions":
            self._account(table, rows, self.transactions.add(rows))
        else:
            self.held.setdefault(table, []).append(rows)

    def _account(self, table: str, rows: pd.DataFrame, reasons: pd.Series) -> None:
        rejected = reasons.notna().to_numpy(dtype=bool)
        bad = rows.loc[rejected, ["source_file", "line_number", "raw"]].assign(
            reason_code=reasons[rejected], table=table
        )
        self.rejects.append(bad[[*REJECT_COLUMNS, "table"]])
        accepted = rows.loc[~rejected, "source_file"].value_counts()
        self.accepted_by_file.update({str(k): int(v) for k, v in accepted.items()})

    def finish(
        self, files: tuple[FileInfo, ...], source: str, missing_customer_id_warn_rate: float
    ) -> CleanResult:
        """Clean the held tables, aggregate orders and returns, validate, reconcile."""
        tables: dict[str, pd.DataFrame] = {}
        counts: dict[str, Any] = {}
        ids_normalised: dict[str, Any] = {}
        if "transactions" in self.provided:
            aggregated, counts = self.transactions.finish()
            ids_normalised["transactions"] = counts.pop("ids_normalised")
            tables.update(aggregated)
        for table, parts in self.held.items():
            rows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
            result = CLEANERS[table](rows, self.rules, self.as_of)
            tables.update(result.tables)
            ids_normalised[table] = result.counts["ids_normalised"]
            self._account(table, rows, result.reasons)
        rejects = pd.concat(self.rejects, ignore_index=True) if self.rejects else empty_rejects()
        rejects = rejects.astype(
            {
                "source_file": "string",
                "line_number": "int64",
                "reason_code": "string",
                "raw": "string",
                "table": "string",
            }
        ).sort_values(REJECT_SORT, kind="stable", ignore_index=True)
        for name, frame in tables.items():
            tables[name] = schemas.validate(name, frame)
        schemas.validate("rejects", rejects)
        manifest = _manifest(
            files, source, self.provided, tables, rejects, self.accepted_by_file, counts, self.as_of
        )
        # lines per table and id column whose id the Unicode rule changed (fold_id)
        manifest["ids_normalised"] = dict(sorted(ids_normalised.items()))
        _warn_missing_ids(manifest, missing_customer_id_warn_rate)
        return CleanResult(tables, rejects, manifest)


def clean_tables(
    raw: RawTables,
    rules: CleanRules,
    as_of: pd.Timestamp,
    missing_customer_id_warn_rate: float = 0.25,
) -> CleanResult:
    """Parse, validate and aggregate in-memory raw tables; reconcile every input file."""
    cleaner = _Cleaner(rules, as_of)
    cleaner.add("transactions", raw.tables["transactions"], raw.rejects)
    for table, rows in raw.tables.items():
        if table != "transactions":
            cleaner.add(table, rows, empty_rejects())
    return cleaner.finish(raw.files, raw.source, missing_customer_id_warn_rate)


def clean_export(
    config: SourceConfig,
    paths: list[Path],
    as_of: pd.Timestamp,
    missing_customer_id_warn_rate: float = 0.25,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> CleanResult:
    """Read and clean an export chunk by chunk (what ``clean`` and ``score`` run).

    Only one chunk of raw transaction lines (``chunk_rows``) is in memory at a time, plus the
    per-(invoice, product) partial sums, the rejects and the feedback and customer tables.
    """
    cleaner = _Cleaner(config.rules, as_of)
    files: list[FileInfo] = []
    for chunk in iter_export(config, paths, files, max_record_bytes):
        cleaner.add(chunk.table, chunk.rows, chunk.rejects)
    return cleaner.finish(tuple(files), config.name, missing_customer_id_warn_rate)


def _manifest(
    files: tuple[FileInfo, ...],
    source: str,
    provided: set[str],
    tables: dict[str, pd.DataFrame],
    rejects: pd.DataFrame,
    accepted_by_file: Counter[str],
    counts: dict[str, Any],
    as_of: pd.Timestamp,
) -> dict[str, Any]:
    inputs: list[dict[str, Any]] = []
    for info in sorted(files, key=lambda f: (f.table, f.source_file)):
        mine = rejects[rejects["source_file"] == info.source_file]
        by_reason = {
            str(k): int(v) for k, v in mine["reason_code"].value_counts().sort_index().items()
        }
        accepted = accepted_by_file.get(info.source_file, 0)
        rejected = int(sum(by_reason.values()))
        if info.rows_read != accepted + rejected:
            raise DataError(
                f"{info.source_file}: reconciliation failed: rows read {info.rows_read} != "
                f"accepted {accepted} + rejected {rejected}"
            )
        inputs.append(
            {
                "source_file": info.source_file,
                "table": info.table,
                "sha256": info.sha256,
                "rows_read": info.rows_read,
                "accepted": accepted,
                "rejected": rejected,
                "rejected_by_reason": by_reason,
                "encoding_fallback_lines": info.fallback_lines,
            }
        )
    transaction_lines = sum(i["rows_read"] for i in inputs if i["table"] == "transactions")
    missing = int(counts.get("lines_with_customer_id_missing", 0))
    return {
        "source": source,
        "as_of": as_of.isoformat(),
        "inputs": inputs,
        "rows_read": sum(i["rows_read"] for i in inputs),
        "accepted": sum(i["accepted"] for i in inputs),
        "rejected": sum(i["rejected"] for i in inputs),
        "rejected_by_reason": {
            str(k): int(v) for k, v in rejects["reason_code"].value_counts().sort_index().items()
        },
        "reconciled": True,
        "provided": {
            "feedback": "feedback" in provided,
            "customers": "customers" in provided,
            "discount": "discount_amount" in tables.get("orders", pd.DataFrame()).columns,
            "delivery": "delivered_ts" in tables.get("orders", pd.DataFrame()).columns,
            "channel": "channel" in tables.get("orders", pd.DataFrame()).columns,
        },
        "tables": {
            name: {
                "rows": len(frame),
                "optional_columns": [c for c in OPTIONAL_COLUMNS[name] if c in frame.columns],
            }
            for name, frame in sorted(tables.items())
        },
        "transactions": {
            **{k: v for k, v in counts.items() if k != "lines_with_customer_id_missing"},
            "missing_customer_id_lines": missing,
            "missing_customer_id_rate": round(missing / transaction_lines, 6)
            if transaction_lines
            else 0.0,
        },
    }


def reject_totals(manifest: Mapping[str, Any]) -> dict[str, tuple[int, Counter[str]]]:
    """Lines read and rejects by reason per table, over all of a clean manifest's files."""
    totals: dict[str, tuple[int, Counter[str]]] = {}
    for item in manifest["inputs"]:
        rows, reasons = totals.get(item["table"], (0, Counter()))
        totals[item["table"]] = (
            rows + int(item["rows_read"]),
            reasons + Counter({k: int(v) for k, v in item["rejected_by_reason"].items()}),
        )
    return totals


def check_reject_share(
    what: str, rows: int, by_reason: Mapping[str, int], max_share: float
) -> None:
    """Raise :class:`DataError` when more than ``max_share`` of ``rows`` are rejected.

    Names the three most frequent reasons: a date format, a delimiter or a column mapping that
    matches nothing is a broken config, and it reads as one (``bad_date 100.0%``).
    """
    rejected = sum(by_reason.values())
    if rows == 0 or rejected <= max_share * rows:
        return
    top = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))[:3]
    reasons = ", ".join(f"{reason} {100 * n / rows:.1f}%" for reason, n in top)
    raise DataError(
        f"{what}: {rejected} of {rows} lines rejected ({100 * rejected / rows:.1f}%, above "
        f"clean.max_reject_share {max_share:g}): {reasons}; check the source config "
        "(date formats, delimiter, column mapping) or the rejects"
    )


def _warn_missing_ids(manifest: dict[str, Any], threshold: float) -> None:
    rate = manifest["transactions"]["missing_customer_id_rate"]
    if rate > threshold:
        logger.warning(
            "%.1f%% of transaction lines have no customer id (threshold %.1f%%)",
            100 * rate,
            100 * threshold,
        )
