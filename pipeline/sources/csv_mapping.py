"""Generic source adapter: any CSV/Parquet/.xlsx export described by a column mapping.

A source config (``configs/sources/<name>.yaml``) says which file holds which table, which of
its columns is the customer, the order id, the timestamp (with an explicit format), the quantity
and unit price (or an amount), and the optional columns. :func:`read_export` turns the export into
canonical *raw* tables: one string column per mapped canonical name, plus ``source_file``,
``line_number`` and ``raw``. Parsing and validation happen in :mod:`pipeline.clean`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline import io
from pipeline.cleaning.rules import CleanRules
from pipeline.config import MAX_RECORD_BYTES
from pipeline.errors import ConfigError, InputError
from pipeline.sources.reading import (
    REJECT_COLUMNS,
    CsvReader,
    Dialect,
    FileFrame,
    detect_format,
    read_errors,
    read_file,
)

logger = logging.getLogger(__name__)

TableName = Literal["transactions", "feedback", "customers"]
TABLES: tuple[TableName, ...] = ("transactions", "feedback", "customers")
PROVENANCE = ("source_file", "line_number", "raw")

# Canonical raw columns per table, and the ones a mapping must provide.
CANONICAL: dict[str, tuple[str, ...]] = {
    "transactions": (
        "customer_id",
        "order_id",
        "order_ts",
        "sku",
        "description",
        "quantity",
        "unit_price",
        "amount",
        "discount",
        "channel",
        "promised_ts",
        "delivered_ts",
    ),
    "feedback": ("customer_id", "feedback_ts", "kind", "score", "resolved", "resolution_hours"),
    # name, email, phone: contact fields, never model inputs; the report's contact list
    # carries them.
    "customers": (
        "customer_id",
        "signup_ts",
        "loyalty_member",
        "region",
        "name",
        "email",
        "phone",
    ),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    # order_id is required when the config maps it; a config without it describes a purchase
    # log: one order per customer and timestamp (cleaning).
    "transactions": ("customer_id", "order_ts"),
    "feedback": ("customer_id", "feedback_ts", "kind"),
    "customers": ("customer_id",),
}
DELIMITERS = (",", ";", "\t", "|")


class TableSpec(BaseModel):
    """Where one table lives in the export and how its columns are named."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Glob patterns tried in order inside an input folder; every match is read.
    files: tuple[str, ...]
    # canonical name -> source column name, or a list of alternative names (first found wins).
    columns: dict[str, str | tuple[str, ...]]


class ExtractAsOf(BaseModel):
    """Where an export states its own extraction time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str
    key: str


class SourceConfig(BaseModel):
    """A ``configs/sources/*.yaml`` file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    # The currency of the export's amounts (an ISO 4217 code such as EUR or GBP): the report
    # and the scores manifest show spend in it; null = plain numbers, labelled "spend".
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    dialect: Dialect = Dialect()
    tables: dict[TableName, TableSpec]
    rules: CleanRules = CleanRules()
    # Workbooks whose sheets overlap (Online Retail II): rows of a later sheet whose order_id
    # appears in an earlier sheet are rejected as `sheet_overlap`.
    dedupe_sheet_overlap: bool = False
    chunk_rows: int = Field(50_000, ge=1)
    # Extract metadata: a JSON file beside the export that says when it was taken
    # (e.g. {"file": "generate_manifest.json", "key": "extract_end"}). Its time is the as-of
    # for `future_date` when params leave clean.as_of null.
    extract_as_of: ExtractAsOf | None = None


@dataclass(frozen=True)
class FileInfo:
    """Provenance of one input file (or sheet) for the manifest."""

    source_file: str
    table: str
    rows_read: int
    sha256: str
    fallback_lines: int


@dataclass(frozen=True)
class RawTables:
    """Canonical raw tables (all strings + provenance), read-level rejects and file facts."""

    tables: dict[str, pd.DataFrame]
    rejects: pd.DataFrame  # REJECT_COLUMNS + table
    files: tuple[FileInfo, ...]
    source: str


def parse_source_config(raw: object, origin: str) -> SourceConfig:
    """Validate a parsed source config; report the first problem on one line."""
    try:
        config = SourceConfig.model_validate(io.as_mapping(raw, origin))
    except ValidationError as exc:
        raise ConfigError.from_validation(origin, exc) from exc
    if "transactions" not in config.tables:
        raise ConfigError(f"{origin}: tables.transactions is required")
    for table, spec in config.tables.items():
        unknown = sorted(set(spec.columns) - set(CANONICAL[table]))
        if unknown:
            raise ConfigError(
                f"{origin}: tables.{table}.columns: unknown canonical names {unknown}"
            )
    return config


def load_source_config(path: str | Path) -> SourceConfig:
    """Read and validate a source config YAML (``yaml.safe_load`` only)."""
    return parse_source_config(io.read_yaml(path), str(path))


def read_extract_as_of(config: SourceConfig, inputs: list[Path]) -> pd.Timestamp | None:
    """Return the extraction time an export states about itself, or None when it states none.

    Looked up in the first input folder that holds the metadata file the source config names.
    """
    spec = config.extract_as_of
    if spec is None:
        return None
    for folder in (Path(item) for item in inputs):
        meta = folder / spec.file if folder.is_dir() else folder.with_name(spec.file)
        if not meta.exists():
            continue
        value = io.as_mapping(io.read_json(meta), meta).get(spec.key)
        if value is None:
            raise InputError(f"{meta}: {spec.key} is missing")
        try:
            stamp = pd.Timestamp(value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{meta}: {spec.key} is not a timestamp: {value!r}") from exc
        if pd.isna(stamp):
            raise InputError(f"{meta}: {spec.key} is missing")
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return None


def resolve_mapping(
    header: tuple[str, ...], spec: TableSpec, table: str, source_file: str
) -> dict[str, str]:
    """Return {canonical name: source column}; ERR when required columns are missing.

    One source column may serve several canonical fields (a purchase log's ``date`` as both
    ``order_ts`` and, with no order id, ``order_id``).
    """
    chosen: dict[str, str] = {}
    wanted: dict[str, str] = {}
    for canonical, names in spec.columns.items():
        candidates = (names,) if isinstance(names, str) else names
        wanted[canonical] = " or ".join(candidates)
        found = next((name for name in candidates if name in header), None)
        if found is not None:
            chosen[canonical] = found
    present = set(chosen)
    missing = [wanted[name] for name in spec.columns if name not in present]
    required = (*REQUIRED[table], *(("order_id",) if "order_id" in spec.columns else ()))
    required_missing = [wanted.get(name, name) for name in required if name not in present]
    if (
        table == "transactions"
        and "amount" not in present
        and not {"quantity", "unit_price"} <= present
    ):
        required_missing.append("quantity + unit_price, or amount")
    if required_missing:
        raise InputError(
            f"{source_file}:1: required columns missing{delimiter_hint(header)}: "
            f"expected {required_missing}, found {list(header)}"
        )
    optional_missing = [name for name in missing if name not in required_missing]
    if optional_missing:
        logger.info("%s: optional columns not in the file: %s", source_file, optional_missing)
    used = set(chosen.values())
    extra = [name for name in header if name not in used]
    if extra:
        logger.warning("%s: extra columns dropped: %s", source_file, extra)
    return chosen


def delimiter_hint(header: tuple[str, ...]) -> str:
    """Say which ``dialect.delimiter`` a one-column header seems to be split by, if any."""
    if len(header) != 1:
        return ""
    name = header[0]
    for candidate in DELIMITERS:
        if candidate in name:
            return f" (wrong delimiter? set dialect.delimiter: {json.dumps(candidate)})"
    if any(blank in name.strip() for blank in " \t"):
        return " (wrong delimiter? set dialect.delimiter: whitespace)"
    return ""


def apply_mapping(rows: pd.DataFrame, columns: dict[str, str], source_file: str) -> pd.DataFrame:
    """Keep the mapped columns under their canonical names, plus the provenance columns."""
    out = pd.DataFrame(
        {canonical: rows[source] for canonical, source in columns.items()}, index=rows.index
    )
    out["line_number"] = rows["line_number"]
    out["raw"] = rows["raw"]
    out.insert(0, "source_file", pd.Series(source_file, index=out.index, dtype="string"))
    return out


def map_columns(frame: FileFrame, spec: TableSpec, table: str) -> pd.DataFrame:
    """Select and rename the mapped columns of one file read whole."""
    columns = resolve_mapping(frame.header, spec, table, frame.source_file)
    return apply_mapping(frame.rows, columns, frame.source_file)


def find_files(root: Path, spec: TableSpec) -> list[Path]:
    """Files under ``root`` matching a table's glob patterns, sorted, each once."""
    found: list[Path] = []
    for pattern in spec.files:
        for path in sorted(root.glob(pattern)):
            if path.is_file() and path not in found:
                found.append(path)
    return found


def _inputs(config: SourceConfig, paths: list[Path]) -> list[tuple[str, Path, str]]:
    """Resolve input paths into (table, file, display name); a lone file is the transactions."""
    resolved: list[tuple[str, Path, str]] = []
    for path in paths:
        if path.is_dir():
            for table, spec in config.tables.items():
                for file in find_files(path, spec):
                    resolved.append((table, file, file.relative_to(path).as_posix()))
        elif path.exists():
            resolved.append(("transactions", path, path.name))
        else:
            raise InputError(f"{path}: input not found")
    # names key the manifest: two inputs holding `transactions.csv` keep their full paths
    names = [name for _, _, name in resolved]
    resolved = [
        (table, file, str(file) if names.count(name) > 1 else name)
        for table, file, name in resolved
    ]
    if not any(table == "transactions" for table, _, _ in resolved):
        patterns = list(config.tables["transactions"].files)
        raise InputError(
            f"{', '.join(map(str, paths))}: no transactions file (looked for {patterns})"
        )
    return resolved


@dataclass(frozen=True)
class RawChunk:
    """A slice of one raw table: canonical string rows and the read-level rejects beside them."""

    table: str
    rows: pd.DataFrame
    rejects: pd.DataFrame  # REJECT_COLUMNS + table


def iter_export(
    config: SourceConfig,
    paths: list[Path],
    files: list[FileInfo],
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[RawChunk]:
    """Yield an export as canonical raw chunks, file by file, CSV in ``chunk_rows`` pieces.

    ``files`` receives each file's :class:`FileInfo` once the file has been read (the
    independent record count runs after the parser, on the same bytes). A text record longer
    than ``max_record_bytes`` is a ``record_too_long`` reject.
    """
    from pipeline.sources.online_retail import drop_sheet_overlap

    for table, path, name in _inputs(config, paths):
        spec = config.tables[table]  # type: ignore[index]
        with read_errors(name):
            if detect_format(path) == "csv":
                reader = CsvReader(
                    path,
                    config.dialect,
                    name,
                    config.chunk_rows,
                    max_record_bytes=max_record_bytes,
                )
                columns = resolve_mapping(reader.header, spec, table, name)
                for rows, rejects in reader.chunks():
                    yield RawChunk(
                        table, apply_mapping(rows, columns, name), rejects.assign(table=table)
                    )
                rows_read, sha256 = reader.info()
                files.append(FileInfo(name, table, rows_read, sha256, reader.fallback_lines))
                continue
            frames = read_file(path, config.dialect, name, config.chunk_rows)
        mapped = [map_columns(frame, spec, table) for frame in frames]
        overlap = empty_rejects()
        if config.dedupe_sheet_overlap and len(mapped) > 1:
            mapped, overlap = drop_sheet_overlap(mapped)
        for frame, rows in zip(frames, mapped, strict=True):
            mine = overlap[overlap["source_file"] == frame.source_file]
            rejects = pd.concat([frame.rejects, mine[list(REJECT_COLUMNS)]], ignore_index=True)
            yield RawChunk(table, rows, rejects.assign(table=table))
            files.append(
                FileInfo(
                    frame.source_file, table, frame.rows_read, frame.sha256, frame.fallback_lines
                )
            )


def read_export(config: SourceConfig, paths: list[Path]) -> RawTables:
    """Read a whole export (files and/or folders) into canonical raw string tables."""
    files: list[FileInfo] = []
    pieces: dict[str, list[pd.DataFrame]] = {}
    rejects: list[pd.DataFrame] = []
    for chunk in iter_export(config, paths, files):
        pieces.setdefault(chunk.table, []).append(chunk.rows)
        rejects.append(chunk.rejects)
    tables = {
        table: pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        for table, parts in pieces.items()
    }
    all_rejects = pd.concat(rejects, ignore_index=True) if rejects else empty_rejects()
    return RawTables(tables, all_rejects.astype({"table": "string"}), tuple(files), config.name)


def empty_rejects() -> pd.DataFrame:
    """Return an empty rejects frame with the contract's columns and dtypes."""
    frame = pd.DataFrame(
        {name: pd.array([], dtype="string") for name in (*REJECT_COLUMNS, "table")}
    )
    return frame.astype({"line_number": "int64"})
