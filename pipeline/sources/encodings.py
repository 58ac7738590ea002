"""The bottom of the text readers: a raw file as UTF-8-compatible bytes, and the binary test.

Everything that reads delimited text (the record reader, the independent counter, ``loyalty
inspect``) works on bytes where a line break is the byte LF or CR: UTF-8 and the 8-bit
encodings. UTF-16 and UTF-32 are not: their line breaks are two or four bytes, and a ``0x0A``
byte may be half of another character. A file that starts with a UTF-16 or UTF-32 byte-order
mark is therefore transcoded to UTF-8 by :func:`open_text` as it is read (``.gz`` is
decompressed first), so the layers above see UTF-8 and keep their line numbers (a line break
stays one line break) and their byte offsets within the transcoded text. Code units that do not
decode (a lone surrogate, a truncated last unit) become the byte ``0xFF``, never valid UTF-8, so
the reader quarantines their line as ``encoding_error`` instead of guessing.

Without a byte-order mark such a file is not read: ASCII text in UTF-16 has a NUL byte in every
other position, which :func:`binary_reason` reports as binary, naming the likely encoding.
"""

from __future__ import annotations

import codecs
import io as stdio
from functools import cache
from pathlib import Path
from typing import BinaryIO

from pipeline import io

UTF8_BOM = b"\xef\xbb\xbf"
# Longest first: the UTF-32LE mark starts with the UTF-16LE one.
WIDE_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
# What an undecodable code unit becomes: U+DCFF, written by surrogateescape as the byte 0xFF.
_INVALID = "loyalty.invalid-unit"
_READ_BYTES = 2**20
# C0 control bytes other than tab, line feed and carriage return, and DEL: text has (almost)
# none of them, binary data a tenth of its bytes.
CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def wide_codec(head: bytes) -> str | None:
    """Return the UTF-16/UTF-32 codec named by a leading byte-order mark, if any."""
    return next((codec for bom, codec in WIDE_BOMS if head.startswith(bom)), None)


def bom_length(codec: str) -> int:
    """Length of the byte-order mark of a wide codec."""
    return 4 if codec.startswith("utf-32") else 2


def codec_label(codec: str) -> str:
    """``utf-16-le`` -> ``UTF-16LE`` (the name iconv and editors use)."""
    family, _, order = codec.upper().rpartition("-")
    return family + order


@cache
def _register_invalid_handler() -> None:
    """Register the decode error handler once, on first use (never at import)."""

    def invalid(exc: UnicodeError) -> tuple[str, int]:
        if not isinstance(exc, UnicodeDecodeError):
            raise exc
        return "\udcff", exc.end

    codecs.register_error(_INVALID, invalid)


class _Utf8Transcoder(stdio.RawIOBase):
    """A raw stream of UTF-8 bytes decoded incrementally from a wide-Unicode stream."""

    def __init__(self, source: BinaryIO, codec: str) -> None:
        _register_invalid_handler()
        self._source = source
        self._decoder = codecs.getincrementaldecoder(codec)(errors=_INVALID)
        self._buffer = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer and not self._eof:
            data = self._source.read(_READ_BYTES)
            self._eof = not data
            text = self._decoder.decode(data, final=self._eof)
            self._buffer = memoryview(text.encode("utf-8", "surrogateescape"))
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        self._source.close()
        super().close()


def open_text(path: Path) -> BinaryIO:
    """Open a text file as bytes in UTF-8 or its own 8-bit encoding (see the module doc).

    A UTF-16/UTF-32 file (by its byte-order mark) is transcoded and loses its mark; any other
    file is returned as it is, a UTF-8 byte-order mark included (the callers drop it).
    """
    handle: BinaryIO = io.open_binary(path)
    try:
        codec = wide_codec(handle.read(4))
        handle.seek(bom_length(codec) if codec else 0)  # a .gz rewinds cheaply at its start
        if codec is None:
            return handle
        return stdio.BufferedReader(_Utf8Transcoder(handle, codec), _READ_BYTES)  # type: ignore[return-value]
    except BaseException:
        handle.close()
        raise


def binary_reason(head: bytes) -> str | None:
    """Say why the head of a (decompressed) file is not text, or None when it is text.

    Binary: more than half of the head's non-empty lines hold a control byte
    (:data:`CONTROL_BYTES`; random or compressed bytes have one every ten). One NUL or control
    byte in a text line does not make a file binary: the reader judges that line on its own
    (``nul_byte``). UTF-16/UTF-32 without a byte-order mark is named as such.
    """
    if wide_codec(head) is not None:
        return None
    lines = [line for line in head.splitlines() if line]
    dirty = sum(1 for line in lines if line != line.translate(None, CONTROL_BYTES))
    if not lines or dirty * 2 <= len(lines):
        return None
    sample = head[:400]
    if len(sample) >= 8 and sample[1::2].count(0) * 10 >= len(sample[1::2]) * 9:
        return _wide_hint("UTF-16LE")
    if len(sample) >= 8 and sample[0::2].count(0) * 10 >= len(sample[0::2]) * 9:
        return _wide_hint("UTF-16BE")
    return "binary file, not delimited text (unsupported format)"


def _wide_hint(label: str) -> str:
    family = label[:6]
    return (
        f"binary file: looks like {family} text ({label}) without a byte-order mark; the reader "
        f"reads UTF-16/UTF-32 only with one: convert it, e.g. iconv -f {label} -t UTF-8"
    )
