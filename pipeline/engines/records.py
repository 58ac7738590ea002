"""Records of delimited text and the byte ranges that let several readers share one file.

The record rule is the reader's (:mod:`pipeline.sources.records`: a line ends at LF, CRLF or a
bare CR; a record ends at a line end outside quotes; a record over the record limit is too
long and never held whole), applied to raw bytes by
:func:`pipeline.sources.records.raw_records`. After the header, a physical line starts a new
record iff the number of quote characters in the body before it is even. So a reader dropped
at any byte offset finds the next record start once it knows two numbers about that offset:
the quote parity and the line number. The Spark engine's executors read byte ranges of one
file in parallel this way:

1. :func:`plan_ranges` cuts each file's body into :class:`ByteRange` s (a gzip or a UTF-16/32
   file is one);
2. :func:`count_range` counts quotes and line breaks per range (a cheap first pass);
3. :func:`place_ranges` takes prefix sums of those counts (tiny data, on the driver);
4. :func:`read_range` skips to the first line start of even parity and reads every record that
   starts before the range's end (the last one may run past it).

The local splitter (:mod:`pipeline.engines.partitioning`) reads a file whole with
:func:`file_records`, so both engines cut the same records with the same line numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline import io
from pipeline.config import MAX_RECORD_BYTES
from pipeline.sources.records import RawRecord, blocks, raw_records

#: The line number of the first line after a one-line header.
FIRST_BODY_LINE = 2


def file_records(
    path: str | Path, limit: int = MAX_RECORD_BYTES, quotechar: str = '"'
) -> Iterator[RawRecord]:
    """Yield every raw record of a file, its header first (UTF-16/32 arrive as UTF-8)."""
    return raw_records(blocks(Path(path), limit=limit, quotechar=quotechar), limit, quotechar)


@dataclass(frozen=True)
class ByteRange:
    """A slice of one file's body: its reader owns every record that starts in ``[start, end)``.

    ``quote_parity`` and ``first_line`` describe byte ``start``: the parity of the quotes in
    the body before it, and the line number of the physical line holding it (set by
    :func:`place_ranges`; a file's first range starts the body: parity 0, line 2).
    """

    file: int
    start: int
    end: float = math.inf
    quote_parity: int = 0
    first_line: int = FIRST_BODY_LINE


def plan_ranges(
    file: int, body_start: int, size: int, range_bytes: int, splittable: bool
) -> list[ByteRange]:
    """Cut one file's body ``[body_start, size)`` into ranges of about ``range_bytes``.

    A file that cannot be read from an offset (gzip) is one range; so is a short one. The last
    range has no end, so that it reads whatever the file holds when it is read.
    """
    body = max(size - body_start, 0)
    pieces = max(1, math.ceil(body / range_bytes)) if splittable else 1
    starts = [body_start + body * i // pieces for i in range(pieces)]
    ends: list[float] = [*starts[1:], math.inf]
    return [ByteRange(file, s, e) for s, e in zip(starts, ends, strict=True)]


def count_range(
    path: str | Path, start: int, end: float, quote: bytes = b'"', chunk_bytes: int = 8 << 20
) -> tuple[int, int]:
    """Count the quote characters and the line breaks (LF, CRLF, bare CR) in ``[start, end)``.

    A CRLF is counted where its LF is, so a CRLF cut by a range end counts once.
    """
    quotes = breaks = 0
    last = b""
    with open(path, "rb") as handle:
        handle.seek(start)
        left = end - start
        while left > 0:
            chunk = handle.read(int(min(chunk_bytes, left)))
            if not chunk:
                break
            quotes += chunk.count(quote)
            breaks += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
            if last == b"\r" and chunk.startswith(b"\n"):
                breaks -= 1  # a CRLF across two reads
            last = chunk[-1:]
            left -= len(chunk)
        if last == b"\r" and handle.read(1) == b"\n":
            breaks -= 1  # the LF after the range's end counts this CRLF
    return quotes, breaks


def place_ranges(ranges: Sequence[ByteRange], counts: Sequence[tuple[int, int]]) -> list[ByteRange]:
    """Give each range the quote parity and line number at its start (prefix sums per file).

    ``counts[i]`` is :func:`count_range` of ``ranges[i]`` (the last range of a file may have
    any count: nothing follows it); the first range of each file holds its body's first line.
    """
    placed: list[ByteRange] = []
    quotes = newlines = 0
    first = FIRST_BODY_LINE
    for i, item in enumerate(ranges):
        if i == 0 or ranges[i - 1].file != item.file:
            quotes = newlines = 0
            first = item.first_line  # the body's first line (after the header's lines)
        placed.append(replace(item, quote_parity=quotes % 2, first_line=first + newlines))
        quotes += counts[i][0]
        newlines += counts[i][1]
    return placed


def read_range(
    path: str | Path,
    item: ByteRange,
    body_start: int,
    quotechar: str = '"',
    limit: int = MAX_RECORD_BYTES,
) -> Iterator[RawRecord]:
    """Yield the raw records that start in one range (:data:`RawRecord` s, offsets absolute).

    ``body_start`` is the offset of the first byte after the header. A range that is the whole
    body (a gzip or UTF-16/32 file, or a short one) is read from the start of the file with the
    local splitter's :func:`file_records`, header skipped.
    """
    if item.start <= body_start and item.end == math.inf:
        records = file_records(path, limit, quotechar)
        next(records, None)  # the header
        yield from records
        return
    partial = False
    if item.start > body_start:
        with io.open_binary(path) as handle:
            handle.seek(item.start - 1)
            before, here = handle.read(1), handle.read(1)
        # a line starts after an LF, or after a CR that is not the first half of a CRLF
        partial = not (before == b"\n" or (before == b"\r" and here != b"\n"))
    source = blocks(
        Path(path), limit=limit, quotechar=quotechar, start=item.start, first_line=item.first_line
    )
    for line, n_lines, raw, too_long, offset in raw_records(
        source, limit, quotechar, in_quotes=bool(item.quote_parity), partial=partial
    ):
        if item.start + offset >= item.end:
            return
        yield line, n_lines, raw, too_long, item.start + offset
