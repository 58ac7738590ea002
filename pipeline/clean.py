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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import schemas
from pipeline.cleaning.rules import CleanRules
from pipeline.cleaning.satisfaction import clean_customers, clean_feedback
from pipeline.cleaning.transactions import TableResult, clean_transactions
from pipeline.errors import DataError
from pipeline.sources.csv_mapping import RawTables, SourceConfig, empty_rejects, read_export
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


def clean_tables(
    raw: RawTables,
    rules: CleanRules,
    as_of: pd.Timestamp,
    missing_customer_id_warn_rate: float = 0.25,
) -> CleanResult:
    """Parse, validate and aggregate the raw tables; reconcile every input file."""
    as_of = pd.Timestamp(as_of)
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    tables: dict[str, pd.DataFrame] = {}
    rejects = [raw.rejects[[*REJECT_COLUMNS, "table"]]] if len(raw.rejects) else []
    accepted_by_file: dict[str, int] = {}
    counts: dict[str, Any] = {}
    for table, rows in raw.tables.items():
        result = CLEANERS[table](rows, rules, as_of)
        tables.update(result.tables)
        counts.update(result.counts)
        rejected = result.reasons.notna()
        bad = rows.loc[rejected, ["source_file", "line_number", "raw"]].assign(
            reason_code=result.reasons[rejected], table=table
        )
        rejects.append(bad[[*REJECT_COLUMNS, "table"]])
        for name, n in rows.loc[~rejected, "source_file"].value_counts().items():
            accepted_by_file[str(name)] = accepted_by_file.get(str(name), 0) + int(n)
    all_rejects = pd.concat(rejects, ignore_index=True) if rejects else empty_rejects()
    all_rejects = all_rejects.astype(
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
    schemas.validate("rejects", all_rejects)
    manifest = _manifest(raw, tables, all_rejects, accepted_by_file, counts, as_of)
    _warn_missing_ids(manifest, missing_customer_id_warn_rate)
    return CleanResult(tables, all_rejects, manifest)


def clean_export(
    config: SourceConfig,
    paths: list[Path],
    as_of: pd.Timestamp,
    missing_customer_id_warn_rate: float = 0.25,
) -> CleanResult:
    """Read an export with its source config and clean it (what ``clean`` and ``score`` run)."""
    return clean_tables(
        read_export(config, paths), config.rules, as_of, missing_customer_id_warn_rate
    )


def _manifest(
    raw: RawTables,
    tables: dict[str, pd.DataFrame],
    rejects: pd.DataFrame,
    accepted_by_file: dict[str, int],
    counts: dict[str, Any],
    as_of: pd.Timestamp,
) -> dict[str, Any]:
    inputs: list[dict[str, Any]] = []
    for info in sorted(raw.files, key=lambda f: (f.table, f.source_file)):
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
        "source": raw.source,
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
            "feedback": "feedback" in raw.tables,
            "customers": "customers" in raw.tables,
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


def _warn_missing_ids(manifest: dict[str, Any], threshold: float) -> None:
    rate = manifest["transactions"]["missing_customer_id_rate"]
    if rate > threshold:
        logger.warning(
            "%.1f%% of transaction lines have no customer id (threshold %.1f%%)",
            100 * rate,
            100 * threshold,
        )
