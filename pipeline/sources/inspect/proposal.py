"""The proposed source config: every guess put together, checked, and rendered as YAML.

:func:`propose` turns the samples of the export's files into a :class:`Proposal`;
:meth:`Proposal.config` is the mapping :func:`pipeline.sources.csv_mapping.parse_source_config`
validates and :func:`pipeline.sources.inspect.render.render_yaml` writes with one comment per
guess (its confidence and evidence), so the file explains itself to the person who checks it.

A required role that no column fills (the customer id, the order timestamp, an amount or
quantity and price; a feedback file's kind) is an error naming the role, the header and the
``--column ROLE=NAME`` fix: a config that cannot run is no proposal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import names
from pipeline.cleaning.parsing import parse_number
from pipeline.errors import ConfigError, InputError
from pipeline.sources.csv_mapping import CANONICAL, SourceConfig, parse_source_config
from pipeline.sources.inspect.guess import Guess
from pipeline.sources.inspect.matching import TableMatch, match_roles, name_hint
from pipeline.sources.inspect.roles import ROLES
from pipeline.sources.inspect.rules import (
    guess_cancellation,
    guess_non_product_codes,
    guess_return_link,
)
from pipeline.sources.inspect.sample import Sample
from pipeline.sources.inspect.values import Profile, profile_column, sniff_decimal

TIMESTAMPS = {
    "transactions": ("order_ts", "promised_ts", "delivered_ts"),
    "feedback": ("feedback_ts",),
    "customers": ("signup_ts",),
}
WHAT = {
    "customer_id": "customer id",
    "order_ts": "order timestamp",
    "amount": "amount (or quantity and unit price)",
    "feedback_ts": "feedback timestamp",
    "kind": "feedback kind (review, survey, nps, complaint)",
}
REQUIRED = {
    "transactions": ("customer_id", "order_ts"),
    "feedback": ("customer_id", "feedback_ts", "kind"),
    "customers": ("customer_id",),
}


@dataclass(frozen=True)
class TableProposal:
    """One file read as one table: its sample, its roles, the formats of its timestamps."""

    table: str
    sample: Sample
    match: TableMatch
    formats: dict[str, Guess[str]]


@dataclass(frozen=True)
class Proposal:
    """Everything ``loyalty inspect`` guessed about an export."""

    name: str
    tables: dict[str, TableProposal]
    decimal: Guess[str]
    timezone: Guess[str]
    cancellation: Guess[str | None]
    return_link: Guess[str]
    non_products: Guess[tuple[str, ...]]
    warnings: tuple[str, ...] = field(default=())

    @property
    def transactions(self) -> TableProposal:
        """The transactions table's proposal."""
        return self.tables["transactions"]

    def config(self) -> dict[str, Any]:
        """Return the source config as a plain mapping (what the YAML file holds)."""
        dialect = self.transactions.sample.dialect()
        files = ", ".join(p.sample.path.name for p in self.tables.values())
        return {
            "name": self.name,
            "description": f"Proposed by loyalty inspect from {files}.",
            # Amounts carry no currency: set an ISO 4217 code (EUR, GBP, ...) for the report.
            "currency": None,
            "dialect": dialect.model_dump(),
            "tables": {
                table: {
                    "files": [proposal.sample.path.name],
                    "columns": {m.role: m.column for m in proposal.match.matches.values()},
                }
                for table, proposal in self.tables.items()
            },
            "rules": {
                "decimal": self.decimal.value,
                "timezone": self.timezone.value,
                "date_formats": {
                    role: guess.value
                    for proposal in self.tables.values()
                    for role, guess in proposal.formats.items()
                },
                "cancellation_prefix": self.cancellation.value,
                "return_order_id": self.return_link.value,
                "non_product_codes": list(self.non_products.value),
            },
        }

    def source_config(self, origin: str) -> SourceConfig:
        """Return the proposal validated as the pipeline's own model."""
        return parse_source_config(self.config(), origin)


def source_name(stem: str) -> str:
    """Make a ``data.source`` name of a file stem: ``Online Retail II`` -> ``online_retail_ii``."""
    plain = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
    if not plain or not plain[0].isalpha():
        plain = f"source_{plain}".rstrip("_")
    return plain[:40].rstrip("_")


def file_stem(path: Path) -> str:
    """Return a file's name without its (compression and) format suffixes."""
    name = path.name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".parquet", ".pq", ".xlsx", ".xlsm"):
        name = name.removesuffix(suffix)
    return name


def check_name(name: str) -> str:
    """Refuse a name that ``data.source`` would refuse."""
    return names.checked(name, "--name (a data.source name)")


def parse_columns(items: list[str]) -> dict[str, dict[str, str | None]]:
    """``--column ROLE=NAME`` / ``TABLE.ROLE=NAME`` (``ROLE=`` = not in the export)."""
    out: dict[str, dict[str, str | None]] = {}
    for item in items:
        key, sep, column = item.partition("=")
        table, dot, role = key.strip().rpartition(".")
        table = table if dot else "transactions"
        if not sep or table not in CANONICAL or role not in CANONICAL[table]:
            raise ConfigError(
                f"--column {item!r}: expected ROLE=NAME or TABLE.ROLE=NAME with a canonical "
                f"role, e.g. order_ts=Buchungsdatum ({table} roles: "
                f"{', '.join(CANONICAL.get(table, CANONICAL['transactions']))})"
            )
        out.setdefault(table, {})[role] = column.strip() or None
    return out


def _profiles(sample: Sample, decimal: str) -> dict[str, Profile]:
    return {name: profile_column(name, sample.rows[name], decimal) for name in sample.header}


def assign_tables(
    samples: list[Sample], matches: dict[str, dict[str, TableMatch]]
) -> dict[str, Sample]:
    """Which file holds which table: by the roles each file fills, then by its name.

    A lone file is the transactions table (as the reader treats it). With several, each file
    gets the table whose required roles it fills (file-name words break ties; feedback and
    customers before transactions, since a transactions file rarely has a feedback kind or one
    row per customer); each table once, transactions required.
    """
    if len(samples) == 1:
        return {"transactions": samples[0]}
    chosen: dict[str, Sample] = {}
    for sample in samples:
        scores = []
        for rank, table in enumerate(("feedback", "customers", "transactions")):
            match = matches[sample.source_file][table]
            fills = _fills(table, match)
            hinted = name_hint(file_stem(sample.path), table)
            scores.append((2 * fills + hinted, -rank, table))
        score, _, table = max(scores)
        if score == 0:
            raise InputError(
                f"{sample.source_file}: neither transactions, feedback nor customers (header: "
                f"{list(sample.header)}); leave it out or name its columns with --column"
            )
        if table in chosen:
            raise InputError(
                f"{sample.source_file} and {chosen[table].source_file} both look like the "
                f"{table} table; give one file per table"
            )
        chosen[table] = sample
    if "transactions" not in chosen:
        raise InputError(
            f"none of {', '.join(s.source_file for s in samples)} looks like a transactions "
            "file (customer id, timestamp, amount or quantity and price)"
        )
    return chosen


def _fills(table: str, match: TableMatch) -> bool:
    found = set(match.matches)
    if not set(REQUIRED[table]) <= found:
        return False
    if table == "transactions":
        return "amount" in found or {"quantity", "unit_price"} <= found
    if table == "customers":
        return len(found) > 1
    return True


def _require(table: str, sample: Sample, match: TableMatch) -> None:
    found = set(match.matches)
    missing = [role for role in REQUIRED[table] if role not in found]
    if table == "transactions" and "amount" not in found:
        if not {"quantity", "unit_price"} <= found:
            missing.append("amount")
    if missing:
        role = missing[0]
        prefix = "" if table == "transactions" else f"{table}."
        raise InputError(
            f"{sample.source_file}: no column looks like the {WHAT.get(role, role)} ({role}); "
            f"header: {list(sample.header)}; name it with --column {prefix}{role}=NAME"
        )


def _check_dialects(tables: dict[str, Sample]) -> None:
    main = tables["transactions"]
    for sample in tables.values():
        if sample is main or sample.format != "csv":
            continue
        if sample.delimiter.value != main.delimiter.value:
            raise InputError(
                f"{sample.source_file}: delimiter {sample.delimiter.value!r} differs from "
                f"{main.source_file}'s {main.delimiter.value!r}; one source config has one "
                "dialect: export the files alike"
            )


def propose(
    samples: list[Sample],
    name: str,
    forced: dict[str, dict[str, str | None]] | None = None,
) -> Proposal:
    """Guess the roles, formats and rules of an export from its files' samples."""
    forced = forced or {}
    columns = {f"{s.path.name}: {c}": s.rows[c] for s in samples for c in s.header}
    decimal = sniff_decimal(columns)
    profiles = {s.source_file: _profiles(s, decimal.value) for s in samples}
    for table, given in forced.items():
        for role, column in given.items():
            if column is not None and not any(column in s.header for s in samples):
                raise ConfigError(f"--column {table}.{role}={column}: no such column in the files")
    matches = {
        s.source_file: {
            table: match_roles(
                table,
                profiles[s.source_file],
                s.rows,
                {r: c for r, c in forced.get(table, {}).items() if c is None or c in s.header},
            )
            for table in ROLES
        }
        for s in samples
    }
    tables = assign_tables(samples, matches)
    _check_dialects(tables)
    proposals: dict[str, TableProposal] = {}
    warnings: list[str] = []
    for table in ("transactions", "feedback", "customers"):
        if table not in tables:
            continue
        sample = tables[table]
        match = matches[sample.source_file][table]
        _require(table, sample, match)
        formats = {}
        for role in TIMESTAMPS[table]:
            column = match.column(role)
            if column is None:
                continue
            stamp = profiles[sample.source_file][column].timestamp
            if stamp is None:
                raise InputError(
                    f"{sample.source_file}: column {column!r} ({role}) holds no timestamp in "
                    "a format tried (docs/sources.md lists them)"
                )
            formats[role] = stamp
            if stamp.confidence == "low":
                warnings.append(f"{sample.source_file}: {column}: {stamp.evidence}")
        proposals[table] = TableProposal(table, sample, match, formats)
        warnings += _table_warnings(sample, match)
    main = proposals["transactions"]
    rows = main.sample.rows
    order_column = main.match.column("order_id")
    order_ids = rows[order_column].dropna() if order_column else None
    signed = _signed(main, decimal.value)
    cancellation = guess_cancellation(order_ids, signed)
    if order_ids is not None:
        return_link = guess_return_link(order_ids, cancellation.value)
    else:
        return_link = Guess("none", "high", "no order id column")
    sku, description = main.match.column("sku"), main.match.column("description")
    non_products = guess_non_product_codes(
        rows[sku].dropna() if sku else None,
        rows[description].reindex(rows[sku].dropna().index) if sku and description else None,
    )
    if any("%z" in guess.value for p in proposals.values() for guess in p.formats.values()):
        timezone = Guess("UTC", "high", "the timestamps carry their UTC offset (%z)")
    else:
        timezone = Guess(
            "UTC",
            "low",
            "the timestamps have no zone and the export names none: UTC assumed; set the "
            "shop's zone (e.g. Europe/Paris) if they are local times",
        )
    if "negative" in cancellation.evidence and "quarantined" in cancellation.evidence:
        warnings.append(f"{main.sample.source_file}: {cancellation.evidence}")
    return Proposal(
        name,
        proposals,
        decimal,
        timezone,
        cancellation,
        return_link,
        non_products,
        tuple(warnings),
    )


def _signed(proposal: TableProposal, decimal: str) -> pd.Series | None:
    """Return the sampled numbers whose sign tells a sale from a return (quantity, amount)."""
    for role in ("quantity", "amount"):
        column = proposal.match.column(role)
        if column is not None:
            return parse_number(proposal.sample.rows[column], decimal)[0]
    return None


def _table_warnings(sample: Sample, match: TableMatch) -> list[str]:
    out = []
    if sample.malformed:
        out.append(
            f"{sample.source_file}: {sample.malformed:,} sampled records have another number "
            "of fields than the header (clean quarantines them as malformed_row)"
        )
    for column in match.satisfaction:
        out.append(
            f"{sample.source_file}: {column!r} looks like a satisfaction score; the pipeline "
            "reads satisfaction from a feedback table (customer, timestamp, kind, score): "
            "export it as a file of its own to use it"
        )
    return out
