"""The record rule against Python's csv module: line ends, quoted line breaks, blank lines.

On well-formed CSV (every quote character opens or closes a quoted field, doubled inside it) the
reader and the independent counter must cut exactly the records ``csv.reader`` cuts, with the
same fields and start lines, whatever mix of LF, CRLF and bare CR ends the lines and however
the text is encoded (UTF-8 with or without a BOM, UTF-16/UTF-32 with one, gzipped). Blank
lines, which csv returns as empty rows (``[]``), are not records; a line of blanks is one.
Malformed quoting is where the pipeline's quote-parity rule and csv part ways on purpose
(tests/unit/sources/test_csv_mapping.py).
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.sources.reading import CsvReader, Dialect
from pipeline.sources.record_count import count_csv_records

UNQUOTED = st.text(alphabet="ab1 é;|", max_size=4)
QUOTED = st.text(alphabet='ab,"\r\n é', max_size=6).map(lambda s: '"' + s.replace('"', '""') + '"')
ROW = st.lists(st.one_of(UNQUOTED, QUOTED), min_size=1, max_size=4).map(",".join)
END = st.sampled_from(["\n", "\r", "\r\n"])
# (codec, byte-order mark written by hand)
ENCODINGS = st.sampled_from(
    [("utf-8", ""), ("utf-8", "\ufeff"), ("utf-16-le", "\ufeff"), ("utf-32-be", "\ufeff")]
)
WIDTH = 3


def _csv_records(text: str) -> list[tuple[int, list[str]]]:
    """(start line, fields) of each record csv.reader reads, blank lines left out."""
    reader = csv.reader(io.StringIO(text, newline=""))
    out, before = [], 0
    for row in reader:
        if row:
            out.append((before + 1, row))
        before = reader.line_num
    return out


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(ROW, END, st.lists(END, max_size=2)), max_size=12),
    last_end=st.booleans(),
    encoding=ENCODINGS,
    packed=st.booleans(),
    block_bytes=st.sampled_from([1, 5, 64, 2**20]),
    fast=st.booleans(),
)
def test_reader_and_counter_cut_the_records_csv_cuts(
    tmp_path: Path,
    rows: list[tuple[str, str, list[str]]],
    last_end: bool,
    encoding: tuple[str, str],
    packed: bool,
    block_bytes: int,
    fast: bool,
) -> None:
    text = "h1,h2,h3\r\n" + "".join(row + end + "".join(blank) for row, end, blank in rows)
    if not last_end:
        text = text.rstrip("\r\n")
    codec, bom = encoding
    data = (bom + text).encode(codec)
    path = tmp_path / ("f.csv.gz" if packed else "f.csv")
    path.write_bytes(gzip.compress(data, mtime=0) if packed else data)

    expected = _csv_records(text)
    assert count_csv_records(path) == len(expected) - 1

    reader = CsvReader(path, Dialect(), "f.csv", 7, block_bytes=block_bytes, fast=fast)
    parts = list(reader.chunks())
    got = pd.concat([r for r, _ in parts], ignore_index=True)
    rejects = pd.concat([r for _, r in parts], ignore_index=True)
    assert reader.header == ("h1", "h2", "h3")
    body = expected[1:]
    good = [(line, fields) for line, fields in body if len(fields) == WIDTH]
    assert got["line_number"].tolist() == [line for line, _ in good]
    assert got[["h1", "h2", "h3"]].values.tolist() == [fields for _, fields in good]
    assert rejects["line_number"].tolist() == [line for line, f in body if len(f) != WIDTH]
    assert set(rejects["reason_code"]) <= {"malformed_row"}
