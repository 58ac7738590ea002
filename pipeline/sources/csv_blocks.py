"""Block-wise CSV reading: a vectorised fast path beside the careful record-by-record reader.

The file is read in blocks of whole physical lines. In each block, lines that cannot change
the quote state and hold no quote character (the common case) are split on the delimiter with
Arrow compute kernels, all at once; the other lines (any line with a quote character, or inside
a quoted record that spans lines) go through :class:`RecordAssembler`, the reader's record rule
applied one line at a time. A block that does not decode strictly in the dialect's encoding, or
a dialect whose encoding is not a simple ASCII-compatible one, is read entirely the careful way
(per-line decoding with the fallback encoding, ``encoding_error`` rejects). Both paths give the
same rows, line numbers, ``raw`` text and rejects, in file order (a property test checks it):
for a line without quote characters the careful reader's split is ``text.split(delimiter)``.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import io
from pipeline.cleaning.reasons import Reason
from pipeline.sources.dialect import BLANKS

if TYPE_CHECKING:
    from pipeline.sources.dialect import Dialect

BOM = b"\xef\xbb\xbf"
BLOCK_BYTES = 4 * 2**20
# Encodings where each byte 0x0A is a line break and decoding a block equals decoding its lines.
FAST_CODECS = frozenset({"utf-8", "ascii", "latin-1", "iso8859-1", "cp1252"})

Record = tuple[int, str, bool, int]  # start line, text, decoded cleanly, fallback-decoded lines
RejectRow = tuple[str, int, str, str]


def blocks(path: Path, size: int = BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
    """Yield (number of the first line, bytes of whole physical lines); a leading BOM is dropped.

    Every block but possibly the last ends with a line break; line numbers start at 1 (header).
    """
    number, tail, first = 1, b"", True
    with io.open_binary(path) as handle:
        while True:
            data = handle.read(max(size, len(BOM)) if first else size)
            if not data:
                if tail:
                    yield number, tail
                return
            if first:  # the first read holds at least the BOM's length
                data, first = data.removeprefix(BOM), False
            data = tail + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                tail = data
                continue
            block, tail = data[:cut], data[cut:]
            yield number, block
            number += block.count(b"\n")


def block_lines(block: bytes) -> list[bytes]:
    """Split a block into physical lines without their line breaks (CR LF or LF)."""
    lines = block.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line.rstrip(b"\r") for line in lines]


class RecordAssembler:
    """The record rule, one physical line at a time: a record ends where quotes balance."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.quote = dialect.quotechar.encode("ascii")
        self.in_quotes = False
        self.parts: list[str] = []
        self.start, self.ok, self.fallbacks = 0, True, 0

    def feed(self, number: int, line: bytes) -> Record | None:
        """Take one line (no line break); return the record it completes, if any."""
        if not self.in_quotes:
            if not line:
                return None
            self.parts, self.start, self.ok, self.fallbacks = [], number, True, 0
        dialect = self.dialect
        try:
            text = line.decode(dialect.encoding)
        except UnicodeDecodeError:
            if dialect.encoding_fallback is None:
                text, self.ok = line.decode(dialect.encoding, errors="replace"), False
            else:
                text = line.decode(dialect.encoding_fallback, errors="replace")
                self.fallbacks += 1
        self.parts.append(text)
        if self.quote in line and line.count(self.quote) % 2:
            self.in_quotes = not self.in_quotes
        if self.in_quotes:
            return None
        return self.start, "\n".join(self.parts), self.ok, self.fallbacks

    def finish(self) -> Record | None:
        """Return the record left open by an unbalanced quote running to the end of the file."""
        if not self.in_quotes:
            return None
        self.in_quotes = False
        return self.start, "\n".join(self.parts), self.ok, self.fallbacks


def fast_codec(dialect: Dialect) -> bool:
    """Whether blocks in this dialect's encoding may be decoded whole."""
    return codecs.lookup(dialect.encoding).name in FAST_CODECS


def _lines_array(text: str) -> pa.Array:
    """Split decoded block text on line feeds into an Arrow string array (no Python objects)."""
    return pc.list_flatten(pc.split_pattern(pa.array([text], pa.string()), "\n"))


def split_fast(
    lines: pa.Array, numbers: np.ndarray, width: int, dialect: Dialect, source_file: str
) -> tuple[list[pa.Array], pa.Array, pa.Array, list[RejectRow]]:
    """Split non-empty quote-free lines into ``width`` string columns; wrong counts are rejects.

    Returns (columns, line numbers, raw text) of the accepted lines and the rejects. The split
    is :meth:`Dialect.split`'s for a line without quote characters.
    """
    if dialect.whitespace:
        fields = pc.split_pattern_regex(pc.utf8_trim(lines, characters=BLANKS), "[ \t]+")
    else:
        fields = pc.split_pattern(lines, dialect.delimiter)
    good = pc.equal(pc.list_value_length(fields), width).to_numpy(zero_copy_only=False)
    rejects: list[RejectRow] = []
    if not good.all():
        bad = ~good
        rejects = [
            (source_file, int(n), Reason.MALFORMED_ROW.value, raw)
            for n, raw in zip(numbers[bad], lines.filter(pa.array(bad)).to_pylist(), strict=True)
        ]
        fields, lines, numbers = (
            fields.filter(pa.array(good)),
            lines.filter(pa.array(good)),
            numbers[good],
        )
    columns = (
        [pc.list_element(fields, j) for j in range(width)]
        if len(fields)
        else [pa.array([], pa.string()) for _ in range(width)]
    )
    return columns, pa.array(numbers, pa.int64()), lines, rejects


def quoted_mask(lines: pa.Array, quotechar: str, in_quotes: bool) -> np.ndarray:
    """Lines the careful reader must see: with a quote char, or inside a quoted record."""
    counts = pc.count_substring(lines, quotechar).to_numpy(zero_copy_only=False)
    odd = (counts % 2).astype(np.int64)
    inside = ((np.cumsum(odd) - odd + int(in_quotes)) % 2) == 1
    return (counts > 0) | inside


def decode_block(block: bytes, dialect: Dialect) -> pa.Array | None:
    """Decode a block into Arrow string lines (trailing CRs trimmed); None if it cannot."""
    try:
        text = block.decode(dialect.encoding)
    except UnicodeDecodeError:
        return None
    lines = _lines_array(text)
    if text.endswith("\n"):  # the empty piece after the last line break is not a line
        lines = lines.slice(0, len(lines) - 1)
    return pc.utf8_rtrim(lines, characters="\r")


def split_record(text: str, dialect: Dialect) -> list[str] | None:
    """Split one record into fields; None when its quoting is malformed (the dialect's rule)."""
    return dialect.split(text)


def strings_table(
    header: tuple[str, ...], rows: list[list[str]], lines: list[int], raws: list[str]
) -> pa.Table:
    """Turn one chunk of split records into an Arrow table (compact; the lists can go)."""
    transposed = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    arrays = [pa.array(values, type=pa.string()) for values in transposed]
    arrays += [pa.array(lines, type=pa.int64()), pa.array(raws, type=pa.string())]
    return pa.Table.from_arrays(arrays, names=[*header, "line_number", "raw"])


class BlockParser:
    """Turn blocks of whole lines into (rows table, rejects), fast where exact, else careful."""

    def __init__(self, dialect: Dialect, source_file: str, fast: bool = True) -> None:
        self.dialect, self.source_file = dialect, source_file
        self.fast = fast and fast_codec(dialect)
        self.assembler = RecordAssembler(dialect)
        self.header: tuple[str, ...] = ()
        self.fallback_lines = 0

    def careful(
        self, records: list[Record]
    ) -> tuple[pa.Table | None, list[tuple[str, int, str, str]]]:
        """Split records one by one (the careful reader); return rows table and rejects."""
        width, name = len(self.header), self.source_file
        rejects: list[tuple[str, int, str, str]] = []
        rows: list[list[str]] = []
        lines: list[int] = []
        raws: list[str] = []
        for start, text, ok, fallbacks in records:
            self.fallback_lines += fallbacks
            if not ok:
                rejects.append((name, start, Reason.ENCODING_ERROR.value, text))
                continue
            values = split_record(text, self.dialect)
            if values is None or len(values) != width:
                rejects.append((name, start, Reason.MALFORMED_ROW.value, text))
                continue
            rows.append(values)
            lines.append(start)
            raws.append(text)
        return (strings_table(self.header, rows, lines, raws) if rows else None), rejects

    def block(
        self, number: int, data: bytes
    ) -> tuple[pa.Table | None, list[tuple[str, int, str, str]]]:
        """Return the rows (in file order) and rejects of one block of whole lines."""
        feed = self.assembler.feed
        decoded = decode_block(data, self.dialect) if self.fast else None
        if decoded is None:
            lines = block_lines(data)
            records = [r for i, line in enumerate(lines) if (r := feed(number + i, line))]
            return self.careful(records)
        mask = quoted_mask(decoded, self.dialect.quotechar, self.assembler.in_quotes)
        records = []
        encoding = self.dialect.encoding
        for i, text in zip(
            np.flatnonzero(mask), decoded.filter(pa.array(mask)).to_pylist(), strict=True
        ):
            record = feed(number + int(i), text.encode(encoding))
            if record is not None:
                records.append(record)
        careful, rejects = self.careful(records)
        keep = ~mask & (pc.binary_length(decoded).to_numpy(zero_copy_only=False) > 0)
        numbers = np.arange(number, number + len(decoded), dtype=np.int64)[keep]
        columns, line_numbers, raws, fast_rejects = split_fast(
            decoded.filter(pa.array(keep)),
            numbers,
            len(self.header),
            self.dialect,
            self.source_file,
        )
        table = pa.Table.from_arrays(
            [*columns, line_numbers, raws], names=[*self.header, "line_number", "raw"]
        )
        if careful is not None:
            table = pa.concat_tables([table, careful])
            table = table.take(pc.sort_indices(table["line_number"]))
        if rejects and fast_rejects:
            rejects = sorted(rejects + fast_rejects, key=lambda row: row[1])
        return table, rejects or fast_rejects
