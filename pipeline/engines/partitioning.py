"""Streaming hash partitioning of a raw export by customer id.

A partition is ``crc32(normalised customer_id) mod n``: stable across runs, machines and Python
versions (unlike ``hash()``), so a customer always lands in the same partition and every
partition can be cleaned, featurised and scored on its own.

Delimited text files are split record by record without parsing them into a DataFrame: each
raw record (its original bytes, including quoted multi-line records) is appended to the part
file of its partition. Memory holds one write buffer, never the input, so an export larger than
memory splits in bounded memory. Each part file starts with the original header, so a
partition folder looks exactly like the export and goes through the same source adapter and
clean rules. The original line number of every physical line is kept in a sidecar so that
rejects found in a part can name the line of the original file.
"""

from __future__ import annotations

import csv
import logging
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.cleaning.parsing import normalise_id
from pipeline.errors import InputError

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
    return zlib.crc32(key.encode("utf-8")) % n_partitions


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
    delimiter: str = ","
    quotechar: str = '"'


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


def iter_records(lines: Iterable[bytes], quote: bytes = b'"') -> Iterator[tuple[int, bytes]]:
    """Group physical lines into records: ``(number of physical lines, raw bytes)``.

    The record rule of :mod:`pipeline.sources.reading`: a line with an odd number of quote
    characters opens a quoted field that continues on the next line, and the record ends where
    the quotes balance again (an unbalanced quote runs to the end of the file as one record,
    which clean rejects as ``malformed_row``, exactly as on the unsplit file).
    """
    pending: list[bytes] = []
    quotes = 0
    for line in lines:
        if not pending:
            count = line.count(quote)
            if count % 2 == 0:
                yield 1, line
                continue
            pending, quotes = [line], count
            continue
        pending.append(line)
        quotes += line.count(quote)
        if quotes % 2 == 0:
            yield len(pending), b"".join(pending)
            pending, quotes = [], 0
    if pending:
        yield len(pending), b"".join(pending)


def _key_of(record: bytes, index: int, layout: CsvLayout) -> str:
    """Extract the raw customer-id field of one record (latin-1 keeps every byte)."""
    delimiter = layout.delimiter.encode("ascii")
    if layout.quotechar.encode("ascii") not in record:
        fields = record.rstrip(b"\r\n").split(delimiter, index + 1)
        return fields[index].decode("latin-1") if len(fields) > index else ""
    text = record.decode("latin-1")
    try:
        row = next(csv.reader(text.splitlines(keepends=True), delimiter=layout.delimiter,
                              quotechar=layout.quotechar))
    except (csv.Error, StopIteration):
        return ""
    return row[index] if len(row) > index else ""


def _header_index(header: bytes, path: Path, layout: CsvLayout) -> int:
    text = header.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    names = next(csv.reader([text], delimiter=layout.delimiter, quotechar=layout.quotechar), [])
    names = [name.strip() for name in names]
    wanted = (layout.key_column,) if isinstance(layout.key_column, str) else layout.key_column
    for candidate in wanted:
        if candidate in names:
            return names.index(candidate)
    raise InputError(
        f"{path}: customer id column {' or '.join(map(repr, wanted))} not found in header "
        f"(found: {', '.join(names)}; wrong delimiter?)"
    )


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
    name = out_name or (path.name[:-3] if path.name.endswith(".gz") else path.name)
    stats = PartitionStats(file=str(path), records=[0] * n_partitions, lines=[0] * n_partitions)
    quote = layout.quotechar.encode("ascii")
    with io.open_binary(path) as source, io.PartWriters(
        [part_dir(out_root, p) / name for p in range(n_partitions)],
        [lines_path(out_root, p, name) for p in range(n_partitions)],
    ) as writers:
        header = source.readline()
        if not header:
            raise InputError(f"{path}: input file is empty")
        stats.header_lines = 1
        writers.write_header(header)
        index = _header_index(header, path, layout)
        delimiter = layout.delimiter.encode("ascii")
        cache: dict[bytes, int] = {}  # raw id bytes -> partition (-1: no id)
        records, lines, write_line = stats.records, stats.lines, writers.write_line
        line_no = 1  # the header is line 1
        for n_lines, record in iter_records(source, quote):
            line_no += 1
            if n_lines == 1 and quote not in record:  # the fast path: no quoting to undo
                fields = record.split(delimiter, index + 1)
                key = fields[index] if len(fields) > index else b""
            else:
                key = _key_of(record, index, layout).encode("latin-1")
            part = cache.get(key)
            if part is None:
                text = key.decode("latin-1")
                part = partition_of(text, n_partitions) if normalise_id(text) else -1
                if len(cache) > 2_000_000:  # bound memory on huge id spaces
                    cache.clear()
                cache[key] = part
            if part < 0:
                stats.no_key_records += 1
                part = NO_KEY_PARTITION
            if n_lines == 1:
                write_line(part, record, line_no)
            else:
                writers.write(part, record, range(line_no, line_no + n_lines))
            records[part] += 1
            lines[part] += n_lines
            line_no += n_lines - 1
    logger.debug("split %s: %d records into %d partitions", path, sum(stats.records), n_partitions)
    return stats


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


def split_export(
    source_config: str | Path, inputs: list[Path], out_root: str | Path, n_partitions: int
) -> ExportSplit:
    """Split every file of an export (files and/or folders) into ``n_partitions`` part folders.

    Files are found exactly as the source adapter finds them (the config's globs; a lone file
    is the transactions table), so each part folder reads like the original export.
    """
    from pipeline.sources.csv_mapping import find_files, load_source_config
    from pipeline.sources.reading import detect_format

    config = load_source_config(source_config)
    entries: list[tuple[int, str, str]] = []
    jobs: list[tuple[Path, str, str]] = []  # (file, table, name inside in-<i>/)
    table: str
    for index, path in enumerate(inputs):
        if path.is_dir():
            entries.append((index, "dir", ""))
            for table, spec in config.tables.items():
                for file in find_files(path, spec):
                    relative = _stripped(file.relative_to(path).as_posix())
                    jobs.append((file, table, f"in-{index}/{relative}"))
        elif path.exists():
            entries.append((index, "file", _stripped(path.name)))
            jobs.append((path, "transactions", f"in-{index}/{_stripped(path.name)}"))
        else:
            raise InputError(f"{path}: input not found")
    stats = []
    for file, table, name in jobs:
        if detect_format(file) != "csv":
            raise InputError(
                f"{file}: only delimited text (CSV, CSV.gz) is split for scoring; "
                "convert Parquet/.xlsx exports to CSV first"
            )
        key = config.tables[table].columns.get("customer_id", "customer_id")  # type: ignore[index]
        layout = CsvLayout(key, config.dialect.delimiter, config.dialect.quotechar)
        stats.append(split_csv(file, out_root, layout, n_partitions, out_name=name))
    return ExportSplit(n_partitions, entries, stats)
