"""The bounded head of one raw file: encoding, dialect, header and a sample of its records.

At most :data:`HEAD_BYTES` bytes and :data:`SAMPLE_RECORDS` records are read, whatever the
file's size (``.gz`` is decompressed on the fly). Records are assembled by the reader's rule
(a record ends at a line break outside quotes) and split by the reader's own splitter
(:meth:`pipeline.sources.dialect.Dialect.split`), so a delimiter that the sniffer accepts is
one the pipeline reads the same way.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from pipeline import io
from pipeline.cleaning.parsing import NUMBER
from pipeline.errors import InputError
from pipeline.sources.dialect import WHITESPACE, Dialect
from pipeline.sources.encodings import codec_label, open_text, wide_codec
from pipeline.sources.inspect.guess import Guess, confidence_of, percent
from pipeline.sources.reading import FileFormat, check_header, detect_format, read_errors, read_file
from pipeline.sources.records import BOM

SAMPLE_RECORDS = 20_000
HEAD_BYTES = 16 * 2**20
# Records that choose the delimiter (the first ones, header included).
SNIFF_RECORDS = 500
SINGLE_DELIMITERS = (",", ";", "\t", "|")
# Tie-break between delimiters that split as well: multi-character ones (not listed) first.
PRIORITY = {WHITESPACE: 0, ",": 1, "|": 2, ";": 3, "\t": 4}
# Bytes that cp1252 leaves undefined: a file holding them is latin-1 rather than cp1252.
CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")
_DATA_LIKE = re.compile(rf"^(?:{NUMBER}|[+-]?\d+,\d+|\d{{1,4}}[-/.]\d{{1,2}}[-/.]\d{{1,4}}.*)$")
_MULTI = re.compile(r"[^\w\s\"']{2,3}")


@dataclass(frozen=True)
class Encoding:
    """The encoding guess, the fallback for lines that do not decode, and the UTF-8 BOM."""

    guess: Guess[str]
    fallback: str | None
    bom: bool


@dataclass(frozen=True)
class Sample:
    """What the head of one file says about it; ``rows`` holds the sampled records as text."""

    path: Path
    source_file: str
    format: FileFormat
    encoding: Encoding
    delimiter: Guess[str]
    quotechar: Guess[str]
    header: tuple[str, ...]
    rows: pd.DataFrame  # one string column per header name
    malformed: int  # sampled records with another number of fields than the header
    truncated: bool  # the file goes on after the sample

    def dialect(self) -> Dialect:
        """Return the guessed dialect as the reader's model."""
        return Dialect(
            encoding=self.encoding.guess.value,
            encoding_fallback=self.encoding.fallback,
            delimiter=self.delimiter.value,
            quotechar=self.quotechar.value,
        )


def read_head(path: Path, source_file: str, limit: int = HEAD_BYTES) -> tuple[bytes, bool]:
    """Return the first ``limit`` bytes cut after the last whole line, and whether more follow.

    UTF-16/UTF-32 (by their byte-order mark) come transcoded to UTF-8, as the reader sees them.
    """
    with read_errors(source_file), open_text(path) as handle:
        head = handle.read(limit + 1)
    if len(head) <= limit:
        return head, False
    cut = max(head.rfind(b"\n", 0, limit), head.rfind(b"\r", 0, limit - 1)) + 1
    return (head[:cut] if cut else head[:limit]), True


def sniff_encoding(head: bytes, wide: str | None = None) -> Encoding:
    """Guess the encoding from the lines of the head: UTF-8, or cp1252 / latin-1.

    ``wide`` is the UTF-16/UTF-32 codec of the file's byte-order mark, when it has one (the
    head is then already transcoded to UTF-8).
    """
    bom = head.startswith(BOM)
    lines = [line for line in head.removeprefix(BOM).splitlines() if line]
    non_ascii = [line for line in lines if not line.isascii()]
    invalid = [line for line in non_ascii if not _decodes(line, "utf-8")]
    note = "; a UTF-8 byte-order mark (the reader drops it)" if bom else ""
    if wide is not None:
        evidence = (
            f"a {codec_label(wide)} byte-order mark: the reader decodes the file as "
            f"{codec_label(wide)} whatever this says; the text inside is read as UTF-8"
        )
        return Encoding(Guess("utf-8", "high", evidence), None, False)
    if not non_ascii:
        evidence = f"all {len(lines):,} sampled lines are ASCII (the same in UTF-8 and cp1252)"
        return Encoding(Guess("utf-8", "high", evidence + note), "cp1252", bom)
    if not invalid:
        evidence = f"all {len(non_ascii):,} sampled lines with non-ASCII characters are valid UTF-8"
        return Encoding(Guess("utf-8", "high", evidence + note), "cp1252", bom)
    eight_bit = "latin-1" if any(CP1252_UNDEFINED & set(line) for line in invalid) else "cp1252"
    if len(invalid) < len(non_ascii) / 2:
        evidence = (
            f"{len(invalid):,} of {len(non_ascii):,} sampled lines with non-ASCII bytes are not "
            f"UTF-8: read as {eight_bit} by the fallback (clean warns and counts them)"
        )
        return Encoding(Guess("utf-8", "medium", evidence + note), eight_bit, bom)
    evidence = (
        f"{len(invalid):,} of {len(non_ascii):,} sampled lines with non-ASCII bytes are not UTF-8; "
        f"they decode as {eight_bit} (a Western European 8-bit export; check a few accented "
        "names in the clean tables)"
    )
    fallback = "latin-1" if eight_bit == "cp1252" else None
    return Encoding(Guess(eight_bit, "medium", evidence), fallback, bom)


def _decodes(line: bytes, encoding: str) -> bool:
    try:
        line.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def decode_lines(head: bytes, encoding: Encoding) -> list[str]:
    """Decode the head line by line as the reader does (the fallback where a line fails)."""
    out = []
    for line in head.removeprefix(BOM).splitlines():
        try:
            text = line.decode(encoding.guess.value)
        except UnicodeDecodeError:
            text = line.decode(encoding.fallback or encoding.guess.value, errors="replace")
        out.append(text)
    return out


def assemble_records(lines: list[str], quotechar: str, limit: int) -> list[str]:
    """Join physical lines into records by the reader's quote-parity rule (empty lines skipped)."""
    records: list[str] = []
    parts: list[str] = []
    for line in lines:
        if not parts and not line:
            continue
        parts.append(line)
        if "\n".join(parts).count(quotechar) % 2 == 0:
            records.append("\n".join(parts))
            parts = []
            if len(records) >= limit:
                break
    return records


def _dialect(delimiter: str, quotechar: str) -> Dialect | None:
    """Return the reader's dialect for a candidate delimiter; None when the reader refuses it."""
    try:
        return Dialect(delimiter=delimiter, quotechar=quotechar)
    except ValidationError:
        return None


def _label(delimiter: str) -> str:
    return {"\t": "tab", WHITESPACE: "runs of spaces/tabs"}.get(delimiter, repr(delimiter))


def sniff_delimiter(records: list[str], quotechar: str = '"') -> Guess[str]:
    """Choose the delimiter that splits the first records into one number of fields (2+).

    Candidates: ``,`` ``;`` tab ``|``, runs of blanks (``whitespace``) and any 2-3 character
    run of punctuation in the first line (``||``, ``::``). The best share of lines with the
    usual field count wins; on a tie a multi-character delimiter beats its single characters
    and tab beats whitespace.
    """
    head = records[:SNIFF_RECORDS]
    if not head:
        raise ValueError("no records to sniff")
    multi = sorted(set(_MULTI.findall(head[0])) - set(SINGLE_DELIMITERS))
    ranked: list[tuple[float, int, str, int, int]] = []
    for candidate in (*SINGLE_DELIMITERS, WHITESPACE, *multi):
        scored = _consistency(head, candidate, quotechar)
        if scored is not None:
            width, agree = scored
            priority = PRIORITY.get(candidate, len(PRIORITY))
            ranked.append((agree / len(head), priority, candidate, width, agree))
    eligible = [item for item in ranked if item[3] >= 2 and item[0] >= 0.9]
    if not eligible:
        tried = ", ".join(_label(c) for c in (*SINGLE_DELIMITERS, WHITESPACE, *multi))
        raise InputError(
            f"no delimiter splits the first {len(head):,} lines into one number of fields "
            f"(tried {tried}); is it delimited text with a header?"
        )
    eligible.sort(key=lambda item: (item[0], item[1]), reverse=True)
    share, _, delimiter, width, agree = eligible[0]
    evidence = f"{agree:,} of {len(head):,} sampled lines split into {width} fields on "
    evidence += _label(delimiter)
    if len(eligible) > 1:
        other = eligible[1]
        evidence += f" (next best: {_label(other[2])}, {percent(other[4], len(head))} of lines)"
    return Guess(delimiter, confidence_of(share), evidence)


def _consistency(records: list[str], delimiter: str, quotechar: str) -> tuple[int, int] | None:
    """Return (usual field count, lines with it) under a delimiter; None if unreadable."""
    dialect = _dialect(delimiter, quotechar)
    if dialect is None:
        return None
    widths: Counter[int] = Counter()
    for text in records:
        fields = dialect.split(text)
        widths[-1 if fields is None else len(fields)] += 1
    width, agree = widths.most_common(1)[0]
    return width, agree


def sniff_quotechar(records: list[str]) -> Guess[str]:
    """``"`` unless fields are quoted with ``'`` only."""
    double = sum(text.count('"') for text in records)
    single = sum(len(re.findall(r"(?:^|[,;\t| ])'[^']*'(?=[,;\t| ]|$)", text)) for text in records)
    if double == 0 and single > len(records) / 10:
        return Guess("'", "medium", f"{single:,} fields quoted with ' and none with \"")
    if double:
        return Guess('"', "high", f'{double:,} " characters in the sampled lines')
    return Guess('"', "medium", "no quoted field in the sample; the usual quote")


def looks_like_data(header: tuple[str, ...]) -> list[str]:
    """Header cells that look like values (numbers, dates): the first line is then data."""
    return [name for name in header if _DATA_LIKE.match(name.strip())]


def sample_file(path: Path, source_file: str, limit: int = SAMPLE_RECORDS) -> Sample:
    """Read the head of one file and guess its encoding, dialect and header."""
    if path.is_dir():
        raise InputError(f"{source_file}: a folder; give the export's files (one per table)")
    if not path.is_file():
        raise InputError(f"{source_file}: file not found")
    with read_errors(source_file):
        kind = detect_format(path)
        with io.open_binary(path) as handle:
            wide = wide_codec(handle.read(4))
    if kind != "csv":
        return _sample_table(path, source_file, kind, limit)
    head, truncated = read_head(path, source_file)
    encoding = sniff_encoding(head, wide)
    lines = decode_lines(head, encoding)
    records = assemble_records(lines, '"', limit + 1)
    if not records:
        raise InputError(f"{source_file}: input file is empty")
    quotechar = sniff_quotechar(records[:SNIFF_RECORDS])
    try:
        delimiter = sniff_delimiter(records, quotechar.value)
    except InputError as exc:
        raise InputError(f"{source_file}: {exc.message}") from exc
    dialect = Dialect(delimiter=delimiter.value, quotechar=quotechar.value)
    first = dialect.split(records[0]) or []
    header = check_header(first, source_file)
    data_like = looks_like_data(header)
    if data_like:
        raise InputError(
            f"{source_file}:1: the first line looks like data ({', '.join(data_like[:3])}), not "
            "a header; the pipeline maps columns by name: add a header line"
        )
    split = [dialect.split(text) for text in records[1:]]
    good = [fields for fields in split if fields is not None and len(fields) == len(header)]
    rows = pd.DataFrame(good or None, columns=list(header), dtype="string")
    truncated = truncated or len(records) > limit
    return Sample(
        path,
        source_file,
        "csv",
        encoding,
        delimiter,
        quotechar,
        header,
        rows.reset_index(drop=True),
        len(split) - len(good),
        truncated,
    )


def _sample_table(path: Path, source_file: str, kind: FileFormat, limit: int) -> Sample:
    """Sample a Parquet file or workbook (its first table): there is no dialect to guess."""
    frame = read_file(path, Dialect(), source_file)[0]
    rows = frame.rows.drop(columns=["line_number", "raw"]).head(limit).astype("string")
    unused = f"not used for {kind} files"
    return Sample(
        path,
        source_file,
        kind,
        Encoding(Guess("utf-8", "high", unused), "cp1252", False),
        Guess(",", "high", unused),
        Guess('"', "high", unused),
        frame.header,
        rows.reset_index(drop=True),
        0,
        frame.rows_read > limit,
    )
