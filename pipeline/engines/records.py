"""Records of delimited text and the byte ranges that let several readers share one file.

The record rule (:func:`iter_records`, the rule of :mod:`pipeline.sources.reading`): after the
header, a physical line starts a new record iff the number of quote characters in the body
before it is even. So a reader dropped at any byte offset finds the next record start once it
knows two numbers about that offset: the quote parity and the line number. The Spark engine's
executors read byte ranges of one file in parallel this way:

1. :func:`plan_ranges` cuts each file's body into :class:`ByteRange` s (a gzip file is one);
2. :func:`count_range` counts quotes and newlines per range (a cheap first pass);
3. :func:`place_ranges` takes prefix sums of those counts (tiny data, on the driver);
4. :func:`read_range` skips to the first line start of even parity and reads every record that
   starts before the range's end (the last one may run past it).

The local splitter (:mod:`pipeline.engines.partitioning`) reads a file whole with the same
:func:`iter_records`, so both engines cut the same records with the same line numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from pipeline import io

#: The line number of the first line after the header.
FIRST_BODY_LINE = 2


def iter_records(
    lines: Iterable[bytes], quote: bytes = b'"', limit: float = math.inf
) -> Iterator[tuple[int, bytes]]:
    """Group physical lines into records: ``(number of physical lines, raw bytes)``.

    The record rule of :mod:`pipeline.sources.reading`: a line with an odd number of quote
    characters opens a quoted field that continues on the next line, and the record ends where
    the quotes balance again (an unbalanced quote runs to the end of the file as one record,
    which clean rejects as ``malformed_row``, exactly as on the unsplit file). ``lines`` must
    start at a record start; the records that start ``limit`` bytes or more after it are not
    read (the end of a byte range).
    """
    pending: list[bytes] = []
    quotes = 0
    offset = 0
    ranged = limit != math.inf  # a whole file (the local splitter) skips the byte count
    for line in lines:
        if not pending:
            if ranged:
                if offset >= limit:
                    return
                offset += len(line)
            count = line.count(quote)
            if count % 2 == 0:
                yield 1, line
                continue
            pending, quotes = [line], count
            continue
        if ranged:
            offset += len(line)
        pending.append(line)
        quotes += line.count(quote)
        if quotes % 2 == 0:
            yield len(pending), b"".join(pending)
            pending, quotes = [], 0
    if pending:
        yield len(pending), b"".join(pending)


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
    """Count the quote characters and the newlines of ``path`` in ``[start, end)``."""
    quotes = newlines = 0
    with open(path, "rb") as handle:
        handle.seek(start)
        left = end - start
        while left > 0:
            chunk = handle.read(int(min(chunk_bytes, left)))
            if not chunk:
                break
            quotes += chunk.count(quote)
            newlines += chunk.count(b"\n")
            left -= len(chunk)
    return quotes, newlines


def place_ranges(ranges: Sequence[ByteRange], counts: Sequence[tuple[int, int]]) -> list[ByteRange]:
    """Give each range the quote parity and line number at its start (prefix sums per file).

    ``counts[i]`` is :func:`count_range` of ``ranges[i]`` (the last range of a file may have
    any count: nothing follows it).
    """
    placed: list[ByteRange] = []
    quotes = newlines = 0
    for i, item in enumerate(ranges):
        if i == 0 or ranges[i - 1].file != item.file:
            quotes = newlines = 0
        placed.append(replace(item, quote_parity=quotes % 2, first_line=FIRST_BODY_LINE + newlines))
        quotes += counts[i][0]
        newlines += counts[i][1]
    return placed


def _first_record_start(
    handle: BinaryIO, item: ByteRange, body_start: int, quote: bytes
) -> tuple[int, int] | None:
    """Move ``handle`` to the first record start at or after ``item.start``.

    Returns that offset and its line number, or None when no record starts in the range.
    """
    position, line, parity = item.start, item.first_line, item.quote_parity
    handle.seek(max(position - 1, body_start))
    # inside a line (the byte before is no newline): the line belongs to an earlier record
    skip = position > body_start and handle.read(1) != b"\n"
    while skip or parity:  # then, inside a quoted field: continuation lines
        if position >= item.end:
            return None
        rest = handle.readline()
        if not rest.endswith(b"\n"):
            return None  # the end of the file, inside a line or a field
        position += len(rest)
        line += 1
        parity ^= rest.count(quote) & 1
        skip = False
    return (position, line) if position < item.end else None


def read_range(
    path: str | Path, item: ByteRange, body_start: int, quote: bytes = b'"'
) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(first line number, physical lines, raw bytes)`` of the records of one range.

    ``body_start`` is the offset of the first byte after the header (in the decompressed
    stream for gzip, which is read as one range from the body start).
    """
    with io.open_binary(path) as handle:
        found = _first_record_start(handle, item, body_start, quote)
        if found is None:
            return
        position, line = found
        for n_lines, record in iter_records(handle, quote, item.end - position):
            yield line, n_lines, record
            line += n_lines
