"""Physical lines and records of delimited text: the reader's record rule, in bounded memory.

A line ends at LF, CRLF or a bare CR (mixed as they come); :func:`blocks` reads a text file
(through :func:`pipeline.sources.encodings.open_text`, so UTF-16/32 arrive as UTF-8) in blocks
of whole lines, and :class:`RecordAssembler` joins lines into records: a record ends at a line
end outside quotes (quote parity), and the line breaks inside it are kept as they are.

Record length: a record longer than ``max_record_bytes`` is rejected as ``record_too_long``
with its start line and its first :data:`RAW_PREVIEW_BYTES` bytes, and is never held whole: a
physical line that outgrows the limit before its line break is read through by :func:`blocks`,
which keeps only its head, its length and its quote count (a :class:`LongLine`), and the
assembler stops keeping the text of a multi-line record once it passes the limit. Time and
memory stay linear in the file and bounded by the block size plus the limit, whatever the
longest line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from pipeline.config import MAX_RECORD_BYTES
from pipeline.sources.encodings import UTF8_BOM, open_text

if TYPE_CHECKING:
    from pipeline.sources.dialect import Dialect

BOM = UTF8_BOM
BLOCK_BYTES = 4 * 2**20
# The head of a record_too_long record kept as its ``raw`` text.
RAW_PREVIEW_BYTES = 1024
_LINE_ENDINGS = ("\r\n", "\n", "\r")


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
    start: int = 0,
    first_line: int = 1,
) -> Iterator[tuple[int, Block]]:
    """Yield (number of the first line, block): bytes of whole physical lines, or a LongLine.

    A leading UTF-8 BOM is dropped. Every bytes block but possibly the last ends with a line
    break; line numbers start at 1 (header). A line still without its line break past
    ``limit`` bytes is read through and yielded as a :class:`LongLine`, so no more than about
    ``2 * size + limit`` bytes are ever held. ``start`` > 0 begins at that byte offset (of the
    text as :func:`open_text` gives it), whose line is numbered ``first_line``; the first
    "line" is then what is left of the line holding the offset (a byte range's reader).
    """
    quote = quotechar.encode("ascii")
    number, tail = first_line, b""
    with open_text(path) as handle:
        if start:
            handle.seek(start)
            data = handle.read(size)
        else:
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


#: One raw record: (first physical line, physical lines, bytes, too long, byte offset).
#: The bytes are the record as in the file, line breaks included; for a record longer than
#: the limit they are its head only (:data:`RAW_PREVIEW_BYTES`). The offset is counted from
#: where the blocks start.
RawRecord = tuple[int, int, bytes, bool, int]


def raw_records(
    source: Iterable[tuple[int, Block]],
    limit: int = MAX_RECORD_BYTES,
    quotechar: str = '"',
    in_quotes: bool = False,
    partial: bool = False,
) -> Iterator[RawRecord]:
    """Cut :func:`blocks` into raw records by :class:`RecordAssembler`'s rule, without decoding.

    The same rule, on bytes (a property test holds the two together): a record ends at a line
    end (LF, CRLF, bare CR) outside quotes; a line with no bytes outside quotes is no record;
    a record over ``limit`` bytes (line breaks inside it counted, the last one not) is too long
    and only its head is kept. For a reader dropped inside a file (a byte range), ``in_quotes``
    says the quotes before the start are unbalanced and ``partial`` that the start is inside
    a line: lines up to the end of that earlier record are skipped. Linear time; memory
    bounded by the blocks and the limit.
    """
    quote = quotechar.encode("ascii")
    orphan = in_quotes or partial  # lines of a record that started before the blocks
    parts: list[bytes] = []
    head = b""
    start = lines_in = size = offset = at = 0
    over = False
    hold = limit + 2  # past this many bytes a record is too long whatever its last break
    for number, block in source:
        if isinstance(block, LongLine):
            n = block.length + len(block.ending)
            if not orphan and not in_quotes:
                start, lines_in, size, at, parts, head, over = number, 0, 0, offset, [], b"", False
            if block.quotes % 2:
                in_quotes = not in_quotes
            offset += n
            if orphan:
                orphan = in_quotes
                continue
            if not over:
                head, parts, over = (b"".join(parts) + block.head)[:RAW_PREVIEW_BYTES], [], True
            lines_in, size = lines_in + 1, size + n
            if not in_quotes:
                yield start, lines_in, head, True, at
            continue
        lines = block.splitlines(keepends=True)
        k, pos, free = 0, 0, not in_quotes and not orphan  # free: at a record start
        while k < len(lines):
            if free:
                # The common case: lines up to the one with the next quote character are
                # one-line records each.
                q = block.find(quote, pos)
                if q < 0:
                    j = len(lines)
                else:
                    cut = max(block.rfind(b"\n", pos, q), block.rfind(b"\r", pos, q), pos - 1) + 1
                    j = k + line_breaks(block[pos:cut])
                for i in range(k, j):
                    line = lines[i]
                    n = len(line)
                    if n > 2 or line.rstrip(b"\r\n"):
                        if n > limit and len(line.rstrip(b"\r\n")) > limit:
                            yield number + i, 1, line[:RAW_PREVIEW_BYTES], True, offset
                        else:
                            yield number + i, 1, line, False, offset
                    offset += n
                    pos += n
                k = j
                if k == len(lines):
                    break
            line = lines[k]
            n = len(line)
            k += 1
            pos += n
            if orphan:
                if line.count(quote) % 2:
                    in_quotes = not in_quotes
                offset += n
                orphan = in_quotes
                free = not in_quotes
                continue
            if not in_quotes:
                if n <= 2 and not line.rstrip(b"\r\n"):
                    offset += n
                    continue
                start, lines_in, size, at = number + k - 1, 0, 0, offset
                parts, head, over = [], b"", False
            if line.count(quote) % 2:
                in_quotes = not in_quotes
            offset += n
            lines_in += 1
            size += n
            if over:  # the text of a too-long record is not kept
                pass
            elif size <= hold:
                parts.append(line)
            else:
                head, parts, over = (b"".join(parts) + line)[:RAW_PREVIEW_BYTES], [], True
            free = not in_quotes
            if free:
                yield _raw_record(start, lines_in, parts, head, size, line, limit, at)
    if in_quotes and not orphan:  # an unbalanced quote runs to the end of the file
        yield start, lines_in, (head if over else b"".join(parts)), size > limit, at


def _raw_record(
    start: int,
    lines: int,
    parts: list[bytes],
    head: bytes,
    size: int,
    last: bytes,
    limit: int,
    at: int,
) -> RawRecord:
    length = size - (len(last) - len(last.rstrip(b"\r\n")))  # the last line break not counted
    if not parts:  # past the limit: only the head was kept
        return start, lines, head, True, at
    raw = b"".join(parts) if len(parts) > 1 else parts[0]
    if length > limit:
        return start, lines, raw[:RAW_PREVIEW_BYTES], True, at
    return start, lines, raw, False, at
