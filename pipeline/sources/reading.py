"""Robust reading of raw export files into string tables with provenance.

This is the reading edge of the source adapters: every file is read as text (no type guessing),
each record keeps its 1-based physical start line (header = line 1) and its original text, and
the records are counted a second time by
:func:`pipeline.sources.record_count.count_csv_records`, a byte-level reader that shares no code
with the parser, so that a record the parser merged or dropped is caught by the
reconciliation in the manifest.

Record rule (both readers): a record ends at a line break (LF, CRLF or a bare CR, mixed as they
come) outside double quotes; quotes are balanced by counting them (``""`` inside a quoted field
counts twice, so it never toggles). A line break inside a quoted field is part of the field, as
it is in the file. An unbalanced quote therefore makes one long record that ends where the
quotes balance again; it is rejected as ``malformed_row`` with all its lines in ``raw``. Empty
lines outside quotes are not records (Python's csv module returns them as empty rows). On
well-formed quoting this is exactly the csv module's record rule (a property test checks both).

Encodings: each physical line is decoded with ``dialect.encoding``; a line that fails is decoded
with ``dialect.encoding_fallback`` (counted, with a warning), or, without a fallback, the record is
rejected as ``encoding_error``. A UTF-8 byte-order mark is dropped; UTF-16 and UTF-32 with a
byte-order mark are transcoded to UTF-8 under the reader (:mod:`pipeline.sources.encodings`).

NUL bytes: a record holding one is rejected as ``nul_byte``, wherever it is in the file (a NUL
is what a crash or a zero-filled block leaves, and C-string tools cut text at it); a file whose
head is mostly control bytes is not text: ERR "binary file".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

from pipeline import io
from pipeline.cleaning.reasons import Reason
from pipeline.config import MAX_RECORD_BYTES
from pipeline.errors import InputError
from pipeline.sources.csv_blocks import BlockParser, split_record, strings_table
from pipeline.sources.dialect import Dialect
from pipeline.sources.encodings import binary_reason, bom_length, wide_codec
from pipeline.sources.record_count import count_csv_records
from pipeline.sources.records import BLOCK_BYTES, LongLine, Record, block_lines, blocks

logger = logging.getLogger(__name__)

FileFormat = Literal["csv", "parquet", "xlsx"]
REJECT_COLUMNS = ("source_file", "line_number", "reason_code", "raw")
CSV_SUFFIXES = (".csv", ".txt", ".tsv", ".csv.gz", ".txt.gz", ".tsv.gz")
SNIFF_BYTES = 8192


@dataclass(frozen=True)
class FileFrame:
    """One input file (or one sheet of a workbook) read as strings."""

    source_file: str
    header: tuple[str, ...]
    rows: pd.DataFrame  # one string column per header name, plus line_number and raw
    rejects: pd.DataFrame  # REJECT_COLUMNS: records that could not be split into fields
    rows_read: int  # records counted independently of the parser (header excluded)
    sha256: str
    fallback_lines: int = 0


def detect_format(path: Path) -> FileFormat:
    """Tell CSV, Parquet and .xlsx apart; refuse empty, binary and unsupported files."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    name = path.name.lower()
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head:
        raise InputError(f"{path}: input file is empty")
    if name.endswith((".parquet", ".pq")) or head.startswith(b"PAR1"):
        return "parquet"
    if name.endswith((".xlsx", ".xlsm")):
        return "xlsx"
    if name.endswith((".xls", ".ods", ".zip")) or head.startswith(
        (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
    ):
        raise InputError(f"{path}: unsupported format (expected CSV, CSV.gz, Parquet or .xlsx)")
    if name.endswith(".gz"):
        if not head.startswith(b"\x1f\x8b"):
            raise InputError(f"{path}: named .gz but not gzip-compressed")
        with io.open_binary(path) as handle:
            head = handle.read(SNIFF_BYTES)
        if not head:
            raise InputError(f"{path}: input file is empty")
    codec = wide_codec(head)
    if codec is not None:
        head = head[bom_length(codec) :].decode(codec, errors="replace").encode()
    reason = binary_reason(head)
    if reason is not None:
        raise InputError(f"{path}: {reason}")
    return "csv"


def _rejects_frame(rows: list[tuple[str, int, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(REJECT_COLUMNS))
    return frame.astype(
        {"source_file": "string", "line_number": "int64", "reason_code": "string", "raw": "string"}
    )


def _strings_frame(chunks: list[pa.Table]) -> pd.DataFrame:
    """Join chunks without copying the strings: pandas ``string`` columns backed by Arrow."""
    table = pa.concat_tables(chunks)
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)


def check_header(
    header: list[str], source_file: str, dialect: Dialect | None = None
) -> tuple[str, ...]:
    """Strip header names and refuse duplicate names (with a hint when the delimiter is why)."""
    names = tuple(name.strip() for name in header)
    seen: set[str] = set()
    duplicates = sorted({name for name in names if name in seen or seen.add(name)})  # type: ignore[func-returns-value]
    if duplicates:
        hint = ""
        if "" in duplicates and dialect is not None and dialect.delimiter.strip(" \t") == "":
            hint = (
                f" (the delimiter {dialect.delimiter!r} repeats between columns: "
                "set dialect.delimiter: whitespace for runs of spaces or tabs)"
            )
        raise InputError(f"{source_file}:1: duplicate column names {duplicates}{hint}")
    return names


class CsvReader:
    """Stream a delimited text file (optionally gzipped) in chunks of split records.

    The header is read on construction (so mapping errors come before any work);
    :meth:`chunks` yields (rows, read rejects) frames of at most ``chunk_rows`` records; after
    it is exhausted, :meth:`info` counts the records again (independently) and hashes the file.
    Blocks of lines are split by the vectorised fast path of :mod:`pipeline.sources.csv_blocks`
    where that gives the careful reader's result; ``fast=False`` reads every line carefully.
    A record longer than ``max_record_bytes`` is rejected as ``record_too_long``.
    """

    def __init__(
        self,
        path: Path,
        dialect: Dialect,
        source_file: str,
        chunk_rows: int = 50_000,
        block_bytes: int = BLOCK_BYTES,
        fast: bool = True,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
        self.path, self.dialect, self.source_file = path, dialect, source_file
        self.chunk_rows = chunk_rows
        with io.open_binary(path) as handle:
            self.wide_codec = wide_codec(handle.read(4))
        if self.wide_codec is not None:
            # Transcoded to UTF-8 below the reader: an undecodable unit is an encoding_error,
            # never an 8-bit guess.
            dialect = dialect.model_copy(update={"encoding": "utf-8", "encoding_fallback": None})
        self._parser = BlockParser(dialect, source_file, fast, max_record_bytes)
        self._assembler = self._parser.assembler
        self._blocks = blocks(path, block_bytes, max_record_bytes, dialect.quotechar)
        self._pending: tuple[int, bytes] | None = None
        first = self._header_record()
        if first is None:
            raise InputError(f"{source_file}: input file is empty")
        where = f"{source_file}:{first.start}"
        if first.too_long:
            raise InputError(
                f"{where}: the header is longer than {max_record_bytes:,} bytes "
                "(clean.max_record_bytes); is this delimited text?"
            )
        if "\x00" in first.text:
            raise InputError(f"{where}: NUL byte in the header")
        fields = split_record(first.text, dialect)
        if fields is None:
            raise InputError(f"{where}: unreadable header")
        self.header = self._parser.header = check_header(fields, source_file, dialect)
        self._parser.fallback_lines = first.fallbacks

    @property
    def fallback_lines(self) -> int:
        """Lines decoded with the fallback encoding so far."""
        return self._parser.fallback_lines

    def _header_record(self) -> Record | None:
        """Feed lines to the assembler until the first record; keep the rest of its block."""
        for number, block in self._blocks:
            if isinstance(block, LongLine):
                record = self._assembler.feed_long(number, block)
                if record is not None:
                    return record
                continue
            offset = 0
            for i, line in enumerate(block_lines(block)):
                offset += len(line)
                record = self._assembler.feed(number + i, line)
                if record is not None:
                    if offset < len(block):
                        self._pending = (number + i + 1, block[offset:])
                    return record
        return self._assembler.finish()

    def _all_blocks(self) -> Iterator[tuple[int, bytes | LongLine]]:
        if self._pending is not None:
            yield self._pending
            self._pending = None
        yield from self._blocks

    def chunks(self) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        """Yield (rows, rejects) per chunk; rows hold the header's columns, line_number, raw."""
        for number, block in self._all_blocks():
            table, rejects = self._parser.block(number, block)
            n_rows = 0 if table is None else table.num_rows
            if table is None or (n_rows == 0 and not rejects):
                if rejects:
                    yield (
                        _strings_frame([strings_table(self.header, [], [], [])]),
                        (_rejects_frame(rejects)),
                    )
                continue
            for offset in range(0, max(n_rows, 1), self.chunk_rows):
                part = table.slice(offset, self.chunk_rows)
                yield _strings_frame([part]), _rejects_frame(rejects if offset == 0 else [])
        last = self._assembler.finish()
        table, rejects = self._parser.careful([last] if last is not None else [])
        if table is None:
            table = strings_table(self.header, [], [], [])
        yield _strings_frame([table]), _rejects_frame(rejects)
        if self.fallback_lines:
            logger.warning(
                "%s: %d line(s) were not valid %s and were decoded as %s",
                self.source_file,
                self.fallback_lines,
                self.dialect.encoding,
                self.dialect.encoding_fallback,
            )

    def info(self) -> tuple[int, str]:
        """Return (records counted independently, sha256) of the file."""
        return count_csv_records(self.path, self.dialect.quotechar), io.file_sha256(self.path)


def read_csv_file(
    path: Path,
    dialect: Dialect,
    source_file: str,
    chunk_rows: int = 50_000,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> FileFrame:
    """Read a whole delimited text file into one frame (the chunks joined without copying)."""
    reader = CsvReader(path, dialect, source_file, chunk_rows, max_record_bytes=max_record_bytes)
    parts = list(reader.chunks())
    table = pa.concat_tables(
        [pa.Table.from_pandas(rows, preserve_index=False) for rows, _ in parts]
    )
    frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)
    frame = frame.astype({"line_number": "int64"})
    rejects = pd.concat([r for _, r in parts], ignore_index=True)
    rows_read, sha256 = reader.info()
    return FileFrame(
        source_file, reader.header, frame, rejects, rows_read, sha256, reader.fallback_lines
    )


def _cell_text(value: Any) -> str:
    """Render a typed cell (Parquet, Excel) as the text a CSV export would hold."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    return str(value)


def read_parquet_file(path: Path, dialect: Dialect, source_file: str) -> FileFrame:
    """Read a Parquet export as strings; ``line_number`` is the 1-based row plus one (header)."""
    import pyarrow.parquet as pq

    try:
        rows_read = pq.ParquetFile(path).metadata.num_rows
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise InputError(f"{source_file}: not a readable Parquet file ({exc})") from exc
    table = io.read_parquet(path)
    header = check_header([str(name) for name in table.columns], source_file)
    records = [
        [_cell_text(value) for value in row] for row in table.itertuples(index=False, name=None)
    ]
    raws = [dialect.joiner.join(values) for values in records]
    frame = _strings_frame([strings_table(header, records, list(range(2, len(records) + 2)), raws)])
    return FileFrame(
        source_file, header, frame, _rejects_frame([]), rows_read, io.file_sha256(path)
    )


def read_xlsx_file(path: Path, dialect: Dialect, source_file: str) -> list[FileFrame]:
    """Read every sheet of an .xlsx workbook; each sheet is one FileFrame named ``file[sheet]``."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile/openpyxl raise many types for a bad workbook
        raise InputError(f"{source_file}: not a readable .xlsx workbook ({exc})") from exc
    digest = io.file_sha256(path)
    frames = []
    try:
        for sheet in book.worksheets:
            name = f"{source_file}[{sheet.title}]"
            counted = sum(
                1 for row in sheet.iter_rows(values_only=True) if any(v is not None for v in row)
            )
            rows_iter = sheet.iter_rows(values_only=True)
            header_row = next(rows_iter, None)
            if header_row is None:
                continue
            header = check_header([_cell_text(v) for v in header_row], name)
            records, lines, raws = [], [], []
            rejects = []
            for number, row in enumerate(rows_iter, start=2):
                if all(v is None for v in row):
                    continue
                values = [_cell_text(v) for v in row]
                raw = dialect.joiner.join(values)
                if len(values) != len(header):
                    rejects.append((name, number, Reason.MALFORMED_ROW.value, raw))
                    continue
                records.append(values)
                lines.append(number)
                raws.append(raw)
            frame = _strings_frame([strings_table(header, records, lines, raws)])
            frames.append(
                FileFrame(name, header, frame, _rejects_frame(rejects), max(counted - 1, 0), digest)
            )
    finally:
        book.close()
    if not frames:
        raise InputError(f"{source_file}: input file is empty (no sheet has a header)")
    return frames


def read_file(
    path: Path,
    dialect: Dialect,
    source_file: str,
    chunk_rows: int = 50_000,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> list[FileFrame]:
    """Read any supported export file; a workbook gives one FileFrame per sheet."""
    with read_errors(source_file):
        kind = detect_format(path)
        if kind == "parquet":
            return [read_parquet_file(path, dialect, source_file)]
        if kind == "xlsx":
            return read_xlsx_file(path, dialect, source_file)
        return [read_csv_file(path, dialect, source_file, chunk_rows, max_record_bytes)]


@contextlib.contextmanager
def read_errors(source_file: str) -> Iterator[None]:
    """Turn I/O failures (truncated or corrupt .gz, unreadable file) into one-line errors."""
    try:
        yield
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{source_file}: cannot read the file ({exc})") from exc
