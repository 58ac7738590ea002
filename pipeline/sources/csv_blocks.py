"""Block-wise CSV reading: a vectorised fast path beside the careful record-by-record reader.

The file is read (through :func:`pipeline.sources.encodings.open_text`, so UTF-16/32 arrive as
UTF-8) in blocks of whole physical lines; a line ends at LF, CRLF or a bare CR. In each block,
lines that cannot change the quote state and hold no quote character (the common case) are
split on the delimiter with Arrow compute kernels, all at once; the other lines (any line with a
quote character, inside a quoted record that spans lines, longer than the record limit or
holding a NUL) go through :class:`RecordAssembler`, the reader's record rule applied one line at
a time. A block that does not decode strictly in the dialect's encoding, that has a bare CR, or
a dialect whose encoding is not a simple ASCII-compatible one, is read entirely the careful way
(per-line decoding with the fallback encoding, ``encoding_error`` rejects). Both paths give the
same rows, line numbers, ``raw`` text and rejects, in file order (a property test checks it):
for a line without quote characters the careful reader's split is ``text.split(delimiter)``.

Record length: a record longer than ``max_record_bytes`` is rejected as ``record_too_long``
with its start line and its first :data:`RAW_PREVIEW_BYTES` bytes, and is never held whole:
a physical line that outgrows the limit before its line break is skipped by :func:`blocks`
(which keeps only its head, its length and its quote count) and the assembler stops keeping
the text of a multi-line record once it passes the limit. Time and memory stay linear in the
file and bounded by the block size plus the limit, whatever the longest line.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.cleaning.reasons import Reason
from pipeline.config import MAX_RECORD_BYTES
from pipeline.sources.dialect import BLANKS
from pipeline.sources.encodings import UTF8_BOM, open_text

if TYPE_CHECKING:
    from pipeline.sources.dialect import Dialect

BOM = UTF8_BOM
BLOCK_BYTES = 4 * 2**20
# The head of a record_too_long record kept as its ``raw`` text.
RAW_PREVIEW_BYTES = 1024
# Encodings where each byte 0x0A is a line break and decoding a block equals decoding its lines.
FAST_CODECS = frozenset({"utf-8", "ascii", "latin-1", "iso8859-1", "cp1252"})
_LINE_ENDINGS = ("\r\n", "\n", "\r")

RejectRow = tuple[str, int, str, str]


class Record(NamedTuple):
    """One record as the assembler cut it."""

    start: int  # physical line where it starts
    text: str  # its lines with their inner line breaks (a preview when too long)
    ok: bool  # every line decoded in the encoding or the fallback
    fallbacks: int  # lines decoded with the fallback encoding
    too_long: bool  # longer than the record limit


@dataclass(frozen=True)
class LongLine:
    """A physical line that outgrew the record limit before its line break (text not kept)."""

    head: bytes  # its first RAW_PREVIEW_BYTES bytes
    length: int  # bytes, without the line break
    quotes: int  # quote characters in it (their parity decides whether the record goes on)
    ending: bytes  # its line break; b"" at the end of the file


Block = bytes | LongLine


def line_breaks(data: bytes) -> int:
    """Count the line breaks (LF, CRLF, bare CR) in a block of whole lines."""
    if b"\r" not in data:
        return data.count(b"\n")
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _last_break_end(data: bytes | bytearray, start: int = 0) -> int:
    """Offset just after the last line break at or after ``start`` that is surely complete.

    0 if none. A CR as the very last byte may be the first half of a CRLF: it waits.
    """
    return max(data.rfind(b"\n", start), data.rfind(b"\r", start, len(data) - 1)) + 1


def _first_break(data: bytes | bytearray) -> int:
    """Offset of the first CR or LF, or -1."""
    found = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
    return min(found) if found else -1


def _skip_line(
    handle: BinaryIO, start: bytes | bytearray, size: int, quote: bytes
) -> tuple[LongLine, bytes]:
    """Read to the end of an over-long line without keeping it; return it and what follows."""
    head, length, quotes, chunk = b"", 0, 0, start
    while True:
        i = _first_break(chunk)
        piece = chunk if i < 0 else chunk[:i]
        if len(head) < RAW_PREVIEW_BYTES:
            head += piece[: RAW_PREVIEW_BYTES - len(head)]
        length += len(piece)
        quotes += piece.count(quote)
        if i < 0:
            chunk = handle.read(size)
            if not chunk:
                return LongLine(bytes(head), length, quotes, b""), b""
            continue
        if chunk[i] == 0x0A:
            return LongLine(bytes(head), length, quotes, b"\n"), bytes(chunk[i + 1 :])
        rest = bytes(chunk[i + 1 :]) or handle.read(size)  # is the CR half of a CRLF?
        if rest.startswith(b"\n"):
            return LongLine(bytes(head), length, quotes, b"\r\n"), rest[1:]
        return LongLine(bytes(head), length, quotes, b"\r"), rest


def _grow_line(
    handle: BinaryIO, data: bytes, size: int, limit: int
) -> tuple[bytes | bytearray, bool]:
    """Read on until ``data`` (no line break yet) has one or outgrows the limit.

    Returns the grown bytes and whether they end the file. Each read is searched once and
    appended to one buffer, so a long line costs linear time.
    """
    grown = bytearray(data)
    while len(grown) <= limit + 1:  # past limit + 1 it is too long even if it ends in a CR
        more = handle.read(size)
        if not more:
            return grown, True
        grown += more
        if _last_break_end(grown, len(grown) - len(more) - 1):
            break
    return grown, False


def blocks(
    path: Path,
    size: int = BLOCK_BYTES,
    limit: int = MAX_RECORD_BYTES,
    quotechar: str = '"',
) -> Iterator[tuple[int, Block]]:
    """Yield (number of the first line, block): bytes of whole physical lines, or a LongLine.

    A leading UTF-8 BOM is dropped. Every bytes block but possibly the last ends with a line
    break; line numbers start at 1 (header). A line still without its line break past
    ``limit`` bytes is read through and yielded as a :class:`LongLine`, so no more than about
    ``2 * size + limit`` bytes are ever held.
    """
    quote = quotechar.encode("ascii")
    number, tail = 1, b""
    with open_text(path) as handle:
        data = handle.read(max(size, len(BOM)))
        data = data.removeprefix(BOM) or (handle.read(size) if data else b"")
        while data:
            data = tail + data if tail else data
            cut = _last_break_end(data)
            if cut == 0:
                grown, at_end = _grow_line(handle, data, size, limit)
                if at_end:
                    yield number, bytes(grown)
                    return
                cut = _last_break_end(grown)
                if cut == 0:
                    long_line, rest = _skip_line(handle, grown, size, quote)
                    yield number, long_line
                    number, tail = number + 1, b""
                    data = rest or handle.read(size)
                    continue
                data = bytes(grown)
            block, tail = data[:cut], data[cut:]
            yield number, block
            number += line_breaks(block)
            data = handle.read(size)
        if tail:
            yield number, tail


def block_lines(block: bytes) -> list[bytes]:
    """Split a block into physical lines, each with its line break (LF, CRLF or CR)."""
    return block.splitlines(keepends=True)


class RecordAssembler:
    """The record rule, one physical line at a time: a record ends where quotes balance.

    Line breaks inside a record are kept as they are in the file (a CRLF stays a CRLF), as
    Python's csv module keeps them in a quoted field.
    """

    def __init__(self, dialect: Dialect, limit: int = MAX_RECORD_BYTES) -> None:
        self.dialect, self.limit = dialect, limit
        self.quote = dialect.quotechar.encode("ascii")
        self.in_quotes = False
        self.parts: list[str] = []
        self.start, self.ok, self.fallbacks, self.size, self.too_long = 0, True, 0, 0, False

    def _decode(self, line: bytes) -> str:
        dialect = self.dialect
        try:
            return line.decode(dialect.encoding)
        except UnicodeDecodeError:
            if dialect.encoding_fallback is None:
                self.ok = False
                return line.decode(dialect.encoding, errors="replace")
            self.fallbacks += 1
            return line.decode(dialect.encoding_fallback, errors="replace")

    def feed(self, number: int, line: bytes) -> Record | None:
        """Take one line with its line break; return the record it completes, if any."""
        body = line.rstrip(b"\r\n")
        if not body and not self.in_quotes:
            return None
        quotes = body.count(self.quote) if self.quote in body else 0
        return self._add(number, body, len(body), quotes, line[len(body) :])

    def feed_long(self, number: int, line: LongLine) -> Record | None:
        """Take an over-long line (its head only); return the record it completes, if any."""
        return self._add(number, line.head, line.length, line.quotes, line.ending)

    def _add(
        self, number: int, body: bytes, length: int, quotes: int, ending: bytes
    ) -> Record | None:
        if not self.in_quotes:
            self.parts, self.start, self.ok, self.fallbacks = [], number, True, 0
            self.size, self.too_long = 0, False
        if quotes % 2:
            self.in_quotes = not self.in_quotes
        self.size += length + (len(ending) if self.in_quotes else 0)
        if not self.too_long:
            if self.size > self.limit:  # keep a preview; the rest is counted, not kept
                preview = "".join(self.parts)
                if len(preview) < RAW_PREVIEW_BYTES:
                    preview += body[:RAW_PREVIEW_BYTES].decode(self.dialect.encoding, "replace")
                self.parts = [preview[:RAW_PREVIEW_BYTES]]
                self.too_long = True
            else:
                self.parts.append(self._decode(body))
                if self.in_quotes:
                    self.parts.append(ending.decode("ascii"))
        if self.in_quotes:
            return None
        return self._record()

    def _record(self) -> Record:
        if self.parts and self.parts[-1] in _LINE_ENDINGS:
            self.parts.pop()  # an unclosed quote at the end of the file: no final break
        text = "".join(self.parts)
        if self.too_long:
            text += f"... [truncated: a record of {self.size:,} bytes]"
        return Record(self.start, text, self.ok, self.fallbacks, self.too_long)

    def finish(self) -> Record | None:
        """Return the record left open by an unbalanced quote running to the end of the file."""
        if not self.in_quotes:
            return None
        self.in_quotes = False
        return self._record()


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
