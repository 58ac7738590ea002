"""Block-wise CSV reading: a vectorised fast path beside the careful record-by-record reader.

Blocks of whole physical lines come from :func:`pipeline.sources.records.blocks`. In each
block, lines that cannot change the quote state and hold no quote character (the common case)
are split on the delimiter with Arrow compute kernels, all at once; the other lines (any line
with a quote character, inside a quoted record that spans lines, longer than the record limit
or holding a NUL) go through :class:`~pipeline.sources.records.RecordAssembler`, the reader's
record rule applied one line at a time. A block that does not decode strictly in the dialect's
encoding, that has a bare CR (a line end the Arrow split on LF does not see), or a dialect
whose encoding is not a simple ASCII-compatible one, is read entirely the careful way (per-line
decoding with the fallback encoding, ``encoding_error`` rejects). Both paths give the same
rows, line numbers, ``raw`` text and rejects, in file order (a property test checks it): for a
line without quote characters the careful reader's split is ``text.split(delimiter)``.
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.cleaning.reasons import Reason
from pipeline.config import MAX_RECORD_BYTES
from pipeline.sources.dialect import BLANKS
from pipeline.sources.records import Block, LongLine, Record, RecordAssembler, block_lines

if TYPE_CHECKING:
    from pipeline.sources.dialect import Dialect

# Encodings where each byte 0x0A is a line break and decoding a block equals decoding its lines.
FAST_CODECS = frozenset({"utf-8", "ascii", "latin-1", "iso8859-1", "cp1252"})

RejectRow = tuple[str, int, str, str]


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


def decode_block(block: bytes, dialect: Dialect) -> tuple[pa.Array, bool] | None:
    """Decode a block into Arrow string lines, each with its CR if it ends in CRLF.

    Returns (lines, whether the last line has its line break); None when the block does not
    decode strictly or has a bare CR (a line end the Arrow split on LF does not see).
    """
    if b"\r" in block and block.count(b"\r") != block.count(b"\r\n"):
        return None
    try:
        text = block.decode(dialect.encoding)
    except UnicodeDecodeError:
        return None
    lines = _lines_array(text)
    ends = text.endswith("\n")
    if ends:  # the empty piece after the last line break is not a line
        lines = lines.slice(0, len(lines) - 1)
    return lines, ends


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

    def __init__(
        self,
        dialect: Dialect,
        source_file: str,
        fast: bool = True,
        limit: int = MAX_RECORD_BYTES,
    ) -> None:
        self.dialect, self.source_file, self.limit = dialect, source_file, limit
        self.fast = fast and fast_codec(dialect)
        self.assembler = RecordAssembler(dialect, limit)
        self.header: tuple[str, ...] = ()
        self.fallback_lines = 0

    def careful(self, records: list[Record]) -> tuple[pa.Table | None, list[RejectRow]]:
        """Split records one by one (the careful reader); return rows table and rejects.

        Reasons, first match: ``record_too_long``, ``nul_byte``, ``encoding_error``,
        ``malformed_row``.
        """
        width, name = len(self.header), self.source_file
        rejects: list[RejectRow] = []
        rows: list[list[str]] = []
        lines: list[int] = []
        raws: list[str] = []
        for start, text, ok, fallbacks, too_long in records:
            if too_long:
                rejects.append((name, start, Reason.RECORD_TOO_LONG.value, text))
                continue
            self.fallback_lines += fallbacks
            if "\x00" in text:
                rejects.append((name, start, Reason.NUL_BYTE.value, text))
                continue
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

    def block(self, number: int, data: Block) -> tuple[pa.Table | None, list[RejectRow]]:
        """Return the rows (in file order) and rejects of one block of whole lines."""
        if isinstance(data, LongLine):
            record = self.assembler.feed_long(number, data)
            return self.careful([record] if record is not None else [])
        feed = self.assembler.feed
        decoded = decode_block(data, self.dialect) if self.fast else None
        if decoded is None:
            lines = block_lines(data)
            records = [r for i, line in enumerate(lines) if (r := feed(number + i, line))]
            return self.careful(records)
        with_cr, ends = decoded
        has_cr = b"\r" in data
        trimmed = pc.utf8_rtrim(with_cr, characters="\r") if has_cr else with_cr
        lengths = pc.binary_length(trimmed).to_numpy(zero_copy_only=False)
        mask = quoted_mask(trimmed, self.dialect.quotechar, self.assembler.in_quotes)
        mask |= lengths > self.limit
        if b"\x00" in data:
            mask |= pc.match_substring(trimmed, "\x00").to_numpy(zero_copy_only=False)
        records = []
        encoding, last = self.dialect.encoding, len(with_cr) - 1
        for i, text in zip(
            np.flatnonzero(mask), with_cr.filter(pa.array(mask)).to_pylist(), strict=True
        ):
            line = text.encode(encoding) + (b"\n" if ends or i != last else b"")
            record = feed(number + int(i), line)
            if record is not None:
                records.append(record)
        careful, rejects = self.careful(records)
        keep = ~mask & (lengths > 0)
        numbers = np.arange(number, number + len(trimmed), dtype=np.int64)[keep]
        columns, line_numbers, raws, fast_rejects = split_fast(
            trimmed.filter(pa.array(keep)),
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
