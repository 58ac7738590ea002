"""Streaming hash partitioning of a raw export by customer id.

A partition is ``crc32(normalised customer_id) mod n``, the project's one customer hash
(:func:`pipeline.features.partition.customer_partition`): stable across runs, machines and Python
versions (unlike ``hash()``), so a customer always lands in the same partition and every
partition can be cleaned, featurised and scored on its own.

Delimited text files are split record by record (:mod:`pipeline.engines.records`) without
parsing them into a DataFrame: each raw record (its original bytes, including quoted multi-line
records) is appended to the part file of its partition. Memory holds one write buffer, never
the input, so an export larger than memory splits in bounded memory. Each part file starts with
the original header, so a partition folder looks exactly like the export and goes through the
same source adapter and clean rules. The original line number of every physical line is kept in
a sidecar so that rejects found in a part can name the line of the original file.

Two ways to the same part folders: :func:`split_export` streams each file whole (local engine);
the Spark engine's executors read byte ranges, key each record with the same
:class:`RecordKeys` and rebuild one partition's folder with :func:`write_partition`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.cleaning.parsing import normalise_id
from pipeline.engines.records import FIRST_BODY_LINE, iter_records
from pipeline.errors import InputError
from pipeline.features.partition import customer_partition
from pipeline.sources.dialect import Dialect

logger = logging.getLogger(__name__)

#: Records whose customer id cannot be read go to this partition; clean quarantines them there.
NO_KEY_PARTITION = 0
#: Flush the write buffers when they hold this many bytes.
FLUSH_BYTES = 8 << 20


def partition_of(customer_id: str, n_partitions: int) -> int:
    """Return the partition of one customer id (crc32 of the normalised id, mod ``n``)."""
    key = normalise_id(customer_id)
    if not key:
        return NO_KEY_PARTITION
    return customer_partition(key, n_partitions)


def partition_series(customer_ids: pd.Series, n_partitions: int) -> np.ndarray:
    """Vectorised :func:`partition_of` over a column of ids (missing ids -> partition 0)."""
    cache: dict[str, int] = {}
    out = np.empty(len(customer_ids), dtype=np.int32)
    for i, value in enumerate(customer_ids.astype("string").fillna("")):
        part = cache.get(value)
        if part is None:
            part = cache[value] = partition_of(value, n_partitions)
        out[i] = part
    return out


@dataclass(frozen=True)
class CsvLayout:
    """How to find the customer id in a delimited export file (first name found wins)."""

    key_column: str | tuple[str, ...]
    dialect: Dialect = Dialect()

    @property
    def quote(self) -> bytes:
        """The quote character as a byte."""
        return self.dialect.quotechar.encode("ascii")

    def plain_fields(self, record: bytes, index: int) -> list[bytes]:
        """Split a one-line record without quote characters up to field ``index`` (fast path)."""
        if self.dialect.whitespace:
            return record.split(None, index + 1)
        delimiter = self.dialect.delimiter.encode(self.dialect.encoding)
        return record.rstrip(b"\r\n").split(delimiter, index + 1)


@dataclass
class PartitionStats:
    """What the split of one file did: records and physical lines per partition."""

    file: str
    header_lines: int = 0
    records: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    no_key_records: int = 0

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready summary."""
        return {
            "file": self.file,
            "records": int(sum(self.records)),
            "physical_lines": int(sum(self.lines)) + self.header_lines,
            "records_per_partition": list(self.records),
            "records_without_customer_id": self.no_key_records,
        }


def part_dir(root: str | Path, partition: int) -> Path:
    """Folder holding the raw part files of one partition."""
    return Path(root) / f"part-{partition:05d}"


def lines_path(root: str | Path, partition: int, name: str) -> Path:
    """Sidecar of original line numbers of part file ``name`` (outside the part folder)."""
    return Path(root) / "lines" / f"part-{partition:05d}" / f"{name}.lines"


# --- keys ---------------------------------------------------------------------------------


class RecordKeys:
    """The partition of each record of one file, from its customer-id field.

    The same for the local splitter and the Spark executors, so a record lands in the same
    partition whichever engine reads it. Raw id bytes are cached (ids repeat across orders).
    """

    def __init__(self, layout: CsvLayout, index: int, n_partitions: int) -> None:
        self.layout = layout
        self.index = index
        self.n_partitions = n_partitions
        self._quote = layout.quote
        self._cache: dict[bytes, int] = {}

    def partition(self, record: bytes, n_lines: int) -> int:
        """Return the record's partition, or -1 when it has no customer id."""
        # Called once per record of the export: attributes are read once, into locals.
        index = self.index
        if n_lines == 1 and self._quote not in record:  # fast path: no quoting to undo
            fields = self.layout.plain_fields(record, index)
            key = fields[index] if len(fields) > index else b""
        else:
            key = _key_of(record, index, self.layout).encode("latin-1")
        part = self._cache.get(key)
        if part is None:
            text = _decode_key(key, self.layout.dialect)
            part = partition_of(text, self.n_partitions) if normalise_id(text) else -1
            if len(self._cache) > 2_000_000:  # bound memory on huge id spaces
                self._cache.clear()
            self._cache[key] = part
        return part


def _decode_key(key: bytes, dialect: Dialect) -> str:
    """Decode a raw id as the reader does: the encoding, then the fallback, then latin-1.

    So a fullwidth or Arabic-Indic id folds to the partition of its ASCII spelling (a key only
    latin-1 decodes belongs to a record clean rejects as ``encoding_error`` anyway).
    """
    if key.isascii():
        return key.decode("ascii")
    for encoding in (dialect.encoding, dialect.encoding_fallback):
        if encoding is not None:
            try:
                return key.decode(encoding)
            except UnicodeDecodeError:
                pass
    return key.decode("latin-1")


def _key_of(record: bytes, index: int, layout: CsvLayout) -> str:
    """Extract the raw customer-id field of one record (latin-1 keeps every byte)."""
    if layout.quote not in record:
        fields = layout.plain_fields(record, index)
        return fields[index].decode("latin-1") if len(fields) > index else ""
    row = layout.dialect.split(record.decode("latin-1").rstrip("\r\n")) or []
    return row[index] if len(row) > index else ""


def read_header(handle: BinaryIO, path: str | Path, layout: CsvLayout) -> tuple[bytes, int]:
    """Read the header line from ``handle``; return it and the index of the id column."""
    header = handle.readline()
    if not header:
        raise InputError(f"{path}: input file is empty")
    text = header.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    names = [name.strip() for name in layout.dialect.split(text) or []]
    wanted = (layout.key_column,) if isinstance(layout.key_column, str) else layout.key_column
    for candidate in wanted:
        if candidate in names:
            return header, names.index(candidate)
    raise InputError(
        f"{path}: customer id column {' or '.join(map(repr, wanted))} not found in header "
        f"(found: {', '.join(names)}; wrong delimiter?)"
    )


# --- the export, split whole (local engine) or rebuilt from records (Spark engine) ---------


@dataclass(frozen=True)
class ExportFile:
    """One delimited file of an export and where its part file goes in a partition folder."""

    path: str
    table: str
    name: str  # ``in-<input index>/<relative path>``, ``.gz`` stripped
    layout: CsvLayout


@dataclass(frozen=True)
class ExportListing:
    """The files of an export, found exactly as the source adapter finds them."""

    # per original input: (index, "dir" or "file", name of the lone file or "")
    entries: list[tuple[int, str, str]]
    files: list[ExportFile]


def split_csv(
    path: str | Path,
    out_root: str | Path,
    layout: CsvLayout,
    n_partitions: int,
    out_name: str | None = None,
) -> PartitionStats:
    """Stream ``path`` into ``out_root/part-NNNNN/<out_name>`` by hash of customer id.

    Every partition gets the header line (so an empty partition is a header-only file) and a
    sidecar (:func:`lines_path`) of int64 original line numbers, one per physical line after
    the header. Bytes are copied verbatim: encodings, BOMs and bad rows are clean's business.
    """
    path = Path(path)
    name = out_name or _stripped(path.name)
    stats = PartitionStats(file=str(path), records=[0] * n_partitions, lines=[0] * n_partitions)
    with (
        io.open_binary(path) as source,
        io.PartWriters(
            [part_dir(out_root, p) / name for p in range(n_partitions)],
            [lines_path(out_root, p, name) for p in range(n_partitions)],
        ) as writers,
    ):
        header, index = read_header(source, path, layout)
        stats.header_lines = 1
        writers.write_header(header)
        partition = RecordKeys(layout, index, n_partitions).partition
        records, lines, write_line = stats.records, stats.lines, writers.write_line
        line_no = FIRST_BODY_LINE
        for n_lines, record in iter_records(source, layout.quote):
            part = partition(record, n_lines)
            if part < 0:
                stats.no_key_records += 1
                part = NO_KEY_PARTITION
            if n_lines == 1:
                write_line(part, record, line_no)
            else:
                writers.write(part, record, range(line_no, line_no + n_lines))
            records[part] += 1
            lines[part] += n_lines
            line_no += n_lines
    logger.debug("split %s: %d records into %d partitions", path, sum(stats.records), n_partitions)
    return stats


def write_partition(
    root: str | Path,
    partition: int,
    files: Sequence[tuple[str, bytes]],
    records: Iterable[tuple[int, int, int, bytes]],
) -> None:
    """Write one partition's part files and sidecars as :func:`split_csv` does.

    ``files`` holds ``(name, header)`` per file of the export; ``records`` holds
    ``(file, first line number, physical lines, raw bytes)`` in original order per file.
    Every file gets its part file, header-only when no record of it is in the partition.
    """
    with io.PartWriters(
        [part_dir(root, partition) / name for name, _ in files],
        [lines_path(root, partition, name) for name, _ in files],
    ) as writers:
        for index, (_, header) in enumerate(files):
            writers.write(index, header, range(0))  # the header has no sidecar entry
        for file, line, n_lines, record in records:
            writers.write(file, record, range(line, line + n_lines))


@dataclass
class ExportSplit:
    """Where the part files of a split export are, and what the split did."""

    n_partitions: int
    # per original input: (index, "dir" or "file", name of the lone file or "")
    entries: list[tuple[int, str, str]]
    files: list[PartitionStats]

    def part_inputs(self, root: str | Path, partition: int) -> list[Path]:
        """Return the adapter inputs of one partition, shaped like the ``--input`` list."""
        folder = part_dir(root, partition)
        return [
            folder / f"in-{index}" / name if kind == "file" else folder / f"in-{index}"
            for index, kind, name in self.entries
        ]

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready summary."""
        return {"partitions": self.n_partitions, "files": [f.as_dict() for f in self.files]}


def _stripped(name: str) -> str:
    return name[:-3] if name.endswith(".gz") else name


def list_export(source_config: str | Path, inputs: list[Path]) -> ExportListing:
    """List every delimited file of an export (files and/or folders) with its id layout.

    Files are found exactly as the source adapter finds them (the config's globs; a lone file
    is the transactions table), so each part folder reads like the original export.
    """
    from pipeline.sources.csv_mapping import find_files, load_source_config
    from pipeline.sources.reading import detect_format

    config = load_source_config(source_config)
    entries: list[tuple[int, str, str]] = []
    found: list[tuple[Path, str, str]] = []  # (file, table, name inside in-<i>/)
    table: str
    for index, path in enumerate(inputs):
        if path.is_dir():
            entries.append((index, "dir", ""))
            for table, spec in config.tables.items():
                for file in find_files(path, spec):
                    relative = _stripped(file.relative_to(path).as_posix())
                    found.append((file, table, f"in-{index}/{relative}"))
        elif path.exists():
            entries.append((index, "file", _stripped(path.name)))
            found.append((path, "transactions", f"in-{index}/{_stripped(path.name)}"))
        else:
            raise InputError(f"{path}: input not found")
    if not any(table == "transactions" for _, table, _ in found):  # the clean stage's rule
        patterns = list(config.tables["transactions"].files)
        shown = ", ".join(map(str, inputs))
        raise InputError(f"{shown}: no transactions file (looked for {patterns})")
    files = []
    for file, table, name in found:
        if detect_format(file) != "csv":
            raise InputError(
                f"{file}: only delimited text (CSV, CSV.gz) is split for scoring; "
                "convert Parquet/.xlsx exports to CSV first"
            )
        key = config.tables[table].columns.get("customer_id", "customer_id")  # type: ignore[index]
        layout = CsvLayout(key, config.dialect)
        files.append(ExportFile(str(file), table, name, layout))
    return ExportListing(entries, files)


def split_export(
    source_config: str | Path, inputs: list[Path], out_root: str | Path, n_partitions: int
) -> ExportSplit:
    """Split every file of an export (files and/or folders) into ``n_partitions`` part folders."""
    listing = list_export(source_config, inputs)
    stats = [
        split_csv(f.path, out_root, f.layout, n_partitions, out_name=f.name) for f in listing.files
    ]
    return ExportSplit(n_partitions, listing.entries, stats)
