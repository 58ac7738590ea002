"""Streaming hash partitioning of a raw export by customer id.

A partition is ``crc32(normalised customer_id) mod n``, the project's one customer hash
(:func:`pipeline.features.partition.customer_partition`): stable across runs, machines and Python
versions (unlike ``hash()``), so a customer always lands in the same partition and every
partition can be cleaned, featurised and scored on its own.

Delimited text files are split record by record (:mod:`pipeline.engines.records`, the clean
reader's record rule: LF, CRLF and bare CR end lines; a record over ``clean.max_record_bytes``
is never held) without parsing them into a DataFrame: each raw record (its original bytes,
including quoted multi-line records) is appended to the part file of its partition. Memory
holds one write buffer, never the input, so an export larger than memory splits in bounded
memory. Each part file starts with the original header, so a partition folder looks exactly
like the export and goes through the same source adapter and clean rules. The original line
number of every physical line is kept in a sidecar so that rejects found in a part can name the
line of the original file.

Three kinds of record are not copied verbatim, so that clean on the part gives what clean on
the whole file gives (:func:`part_lines`): a record over the limit becomes a placeholder of
``limit + 1`` bytes (clean rejects it as ``record_too_long``, as on the whole file); a record
with a NUL byte becomes a three-line placeholder with one NUL (``nul_byte``), so that a part
holding many of them never looks like a binary file; and the records of a UTF-16/UTF-32 file,
read as UTF-8 by the reader's transcoder, are written back in the file's own encoding with its
byte-order mark (an undecodable unit stays undecodable: ``encoding_error``). Lines without
bytes outside quotes (blank lines) are no records and are not written.

Two ways to the same part folders: :func:`split_export` streams each file whole (local engine);
the Spark engine's executors read byte ranges, key each record with the same
:class:`RecordKeys` and rebuild one partition's folder with :func:`write_partition`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.cleaning.parsing import normalise_id
from pipeline.config import MAX_RECORD_BYTES
from pipeline.engines.records import file_records
from pipeline.errors import InputError
from pipeline.features.partition import customer_partition
from pipeline.sources.dialect import Dialect
from pipeline.sources.encodings import CONTROL_BYTES, UTF8_BOM, WIDE_BOMS, wide_codec

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
    """How to read one delimited export file and find its customer id (first name found wins).

    ``max_record_bytes`` is clean's record limit (``clean.max_record_bytes``); ``wide`` the
    UTF-16/UTF-32 codec of a file with that byte-order mark (read as UTF-8, so ``dialect``
    is then UTF-8 without a fallback, as the reader makes it).
    """

    key_column: str | tuple[str, ...]
    dialect: Dialect = Dialect()
    max_record_bytes: int = MAX_RECORD_BYTES
    wide: str | None = None

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
        # The fast path's split, as plain_fields does it (None: runs of blanks).
        dialect = layout.dialect
        self._delimiter = None if dialect.whitespace else dialect.delimiter.encode(dialect.encoding)

    def partition(self, record: bytes, n_lines: int) -> int:
        """Return the record's partition, or -1 when it has no customer id."""
        # Called once per record of the export: attributes are read once, into locals.
        index = self.index
        if n_lines == 1 and self._quote not in record:  # fast path: no quoting to undo
            delimiter = self._delimiter
            if delimiter is None:
                fields = record.split(None, index + 1)
            else:
                fields = record.rstrip(b"\r\n").split(delimiter, index + 1)
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


class FileHeader(NamedTuple):
    """The header record of one file and where its body starts."""

    raw: bytes  # as the reader sees it (UTF-8 for a wide file, no byte-order mark)
    key_index: int
    body_start: int  # offset of the body in the (decompressed) file
    body_line: int  # line number of the body's first line


def read_header(path: str | Path, layout: CsvLayout) -> FileHeader:
    """Read the header record of ``path`` (the reader's rule) and find the id column."""
    limit, quotechar = layout.max_record_bytes, layout.dialect.quotechar
    header = next(file_records(path, limit, quotechar), None)
    if header is None:
        raise InputError(f"{path}: input file is empty")
    line, n_lines, raw, too_long, offset = header
    if too_long:
        raise InputError(
            f"{path}:{line}: the header is longer than {limit:,} bytes "
            "(clean.max_record_bytes); is this delimited text?"
        )
    if b"\x00" in raw:
        raise InputError(f"{path}:{line}: NUL byte in the header")
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    names = [name.strip() for name in layout.dialect.split(text) or []]
    wanted = (layout.key_column,) if isinstance(layout.key_column, str) else layout.key_column
    for candidate in wanted:
        if candidate in names:
            with io.open_binary(path) as handle:
                bom = len(UTF8_BOM) if handle.read(3) == UTF8_BOM else 0
            start = offset + len(raw) + (0 if layout.wide else bom)
            return FileHeader(raw, names.index(candidate), start, line + n_lines)
    raise InputError(
        f"{path}: customer id column {' or '.join(map(repr, wanted))} not found in header "
        f"(found: {', '.join(names)}; wrong delimiter?)"
    )


def part_lines(raw: bytes, too_long: bool, layout: CsvLayout) -> list[bytes]:
    """Return the physical lines a record is written as in its part file (see the module doc).

    Verbatim, except a record over the limit (a placeholder of ``limit + 1`` bytes, its head
    kept where it is harmless) and a record holding a NUL (three lines, one NUL).
    """
    quote = layout.quote
    if too_long:
        limit = layout.max_record_bytes
        head = raw.translate(None, CONTROL_BYTES + b"\r\n" + quote)[: limit + 1]
        return [head + b" " * (limit + 1 - len(head)) + b"\n"]
    if b"\x00" in raw:
        return [quote + b"\n", b".\n", b"\x00" + quote + b"\n"]
    return [raw]


def part_encoder(layout: CsvLayout) -> tuple[bytes, Callable[[bytes], bytes] | None]:
    """Return the byte-order mark and the encoder of part files of a wide file (else none).

    Records of a UTF-16/UTF-32 file arrive as UTF-8 from the transcoder, an undecodable unit as
    the byte 0xFF; they are written back in the file's codec, 0xFF as a lone surrogate, which
    the reader again finds undecodable.
    """
    codec = layout.wide
    if codec is None:
        return b"", None
    bom = next(mark for mark, name in WIDE_BOMS if name == codec)

    def encode(data: bytes) -> bytes:
        return data.decode("utf-8", "surrogateescape").encode(codec, "surrogatepass")

    return bom, encode


class PartFile:
    """Write records of one export file into its part file of each partition."""

    def __init__(self, writers: io.PartWriters, layout: CsvLayout) -> None:
        self.writers, self.layout = writers, layout
        self.bom, self.encode = part_encoder(layout)

    def header(self, index: int | None, raw: bytes) -> None:
        """Write the header to part file ``index`` (every one when None)."""
        data = self.bom + (self.encode(raw) if self.encode else raw)
        if index is None:
            self.writers.write_header(data)
        else:
            self.writers.write(index, data, range(0))  # the header has no sidecar entry

    def record(self, part: int, line: int, n_lines: int, raw: bytes, too_long: bool) -> None:
        """Append one record (placeholders and encoding as :func:`part_lines` says)."""
        encode = self.encode
        if not too_long and b"\x00" not in raw:
            if encode is not None:
                raw = encode(raw)
            if n_lines == 1:
                self.writers.write_line(part, raw, line)
            else:
                self.writers.write(part, raw, range(line, line + n_lines))
            return
        for piece in part_lines(raw, too_long, self.layout):  # each line names the start
            self.writers.write_line(part, encode(piece) if encode else piece, line)


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
    the header. Bytes are copied verbatim (encodings and bad rows are clean's business), but
    for the placeholders of :func:`part_lines` and the re-encoding of a wide file. A record
    over the limit goes to the no-key partition: its id is past what is read of it.
    """
    path = Path(path)
    name = out_name or _stripped(path.name)
    stats = PartitionStats(file=str(path), records=[0] * n_partitions, lines=[0] * n_partitions)
    header = read_header(path, layout)
    with io.PartWriters(
        [part_dir(out_root, p) / name for p in range(n_partitions)],
        [lines_path(out_root, p, name) for p in range(n_partitions)],
    ) as writers:
        out = PartFile(writers, layout)
        out.header(None, header.raw)
        stats.header_lines = header.body_line - 1
        partition = RecordKeys(layout, header.key_index, n_partitions).partition
        records, lines = stats.records, stats.lines
        write_line, write = writers.write_line, out.record
        plain = layout.wide is None  # bytes go to the part as they are
        source = file_records(path, layout.max_record_bytes, layout.dialect.quotechar)
        next(source, None)  # the header, read above
        for line, n_lines, raw, too_long, _ in source:
            if n_lines == 1 and plain and not too_long and b"\x00" not in raw:
                part = partition(raw, 1)
                if part < 0:
                    stats.no_key_records += 1
                    part = NO_KEY_PARTITION
                write_line(part, raw, line)
                records[part] += 1
                lines[part] += 1
                continue
            part = -1 if too_long else partition(raw, n_lines)
            if part < 0:
                stats.no_key_records += 1
                part = NO_KEY_PARTITION
            write(part, line, n_lines, raw, too_long)
            records[part] += 1
            lines[part] += n_lines
    logger.debug("split %s: %d records into %d partitions", path, sum(stats.records), n_partitions)
    return stats


def write_partition(
    root: str | Path,
    partition: int,
    files: Sequence[tuple[str, bytes, CsvLayout]],
    records: Iterable[tuple[int, int, int, bytes, bool]],
) -> None:
    """Write one partition's part files and sidecars as :func:`split_csv` does.

    ``files`` holds ``(name, header, layout)`` per file of the export; ``records`` holds
    ``(file, first line number, physical lines, raw bytes, too long)`` in original order per
    file. Every file gets its part file, header-only when no record of it is in the partition.
    """
    with io.PartWriters(
        [part_dir(root, partition) / name for name, _, _ in files],
        [lines_path(root, partition, name) for name, _, _ in files],
    ) as writers:
        outs = [PartFile(writers, layout) for _, _, layout in files]
        for index, (_, header, _) in enumerate(files):
            outs[index].header(index, header)
        for file, line, n_lines, record, too_long in records:
            outs[file].record(file, line, n_lines, record, too_long)


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


def list_export(
    source_config: str | Path, inputs: list[Path], max_record_bytes: int = MAX_RECORD_BYTES
) -> ExportListing:
    """List every delimited file of an export (files and/or folders) with its id layout.

    Files are found exactly as the source adapter finds them (the config's globs; a lone file
    is the transactions table), so each part folder reads like the original export.
    ``max_record_bytes`` is clean's record limit (``clean.max_record_bytes``).
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
        with io.open_binary(file) as handle:
            wide = wide_codec(handle.read(4))
        dialect = config.dialect
        if wide is not None:  # read as UTF-8 by the transcoder, as the reader does
            dialect = dialect.model_copy(update={"encoding": "utf-8", "encoding_fallback": None})
        layout = CsvLayout(key, dialect, max_record_bytes, wide)
        files.append(ExportFile(str(file), table, name, layout))
    return ExportListing(entries, files)


def split_export(
    source_config: str | Path,
    inputs: list[Path],
    out_root: str | Path,
    n_partitions: int,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> ExportSplit:
    """Split every file of an export (files and/or folders) into ``n_partitions`` part folders."""
    listing = list_export(source_config, inputs, max_record_bytes)
    stats = [
        split_csv(f.path, out_root, f.layout, n_partitions, out_name=f.name) for f in listing.files
    ]
    return ExportSplit(n_partitions, listing.entries, stats)
