"""The vectorised block reader gives exactly the careful reader's frames (csv_blocks)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import InputError
from pipeline.sources.reading import CsvReader, Dialect
from pipeline.sources.record_count import count_csv_records

# Awkward pieces: delimiters, quotes (balanced, doubled, unbalanced), bare CRs, empty lines,
# spaces, non-ASCII UTF-8, a BOM in the middle, bytes that are not UTF-8, a stray semicolon, NUL,
# a run that a small record limit finds too long.
PIECES = [
    b"a",
    b"17850",
    b",",
    b",",
    b'"',
    b'""',
    b"\r",
    b" ",
    b"\xc3\xa9",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\x81",
    b";",
    b"x y",
    b"=1+2",
    b"\t",
    b"||",
    b"|",
    b"\x00",
    b"aaaaaaaaaaaa",
]
LINE = st.lists(st.sampled_from(PIECES), max_size=8).map(b"".join)
ENDINGS = st.sampled_from([b"\n", b"\r\n", b"\n\n", b"\r"])


Read = tuple[tuple[str, ...], pd.DataFrame, pd.DataFrame, int]


def _read(
    path: Path, dialect: Dialect, fast: bool, block_bytes: int, chunk_rows: int, limit: int = 2**20
) -> Read | str:
    """Everything a reader yields, or the error it raises."""
    try:
        reader = CsvReader(
            path,
            dialect,
            "f.csv",
            chunk_rows,
            block_bytes=block_bytes,
            fast=fast,
            max_record_bytes=limit,
        )
    except InputError as exc:
        return str(exc)
    parts = list(reader.chunks())
    rows = pd.concat([r for r, _ in parts], ignore_index=True)
    rejects = pd.concat([r for _, r in parts], ignore_index=True)
    assert all(len(r) <= chunk_rows for r, _ in parts)
    return reader.header, rows, rejects, reader.fallback_lines


def _assert_same(fast: Read | str, careful: Read | str) -> None:
    if isinstance(careful, str):
        assert fast == careful
        return
    assert isinstance(fast, tuple) and isinstance(careful, tuple)
    assert fast[0] == careful[0]
    pd.testing.assert_frame_equal(fast[1], careful[1])
    pd.testing.assert_frame_equal(fast[2], careful[2])
    assert fast[3] == careful[3]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    bom=st.booleans(),
    header=st.sampled_from([b"a,b,c", b'"a","b,x",c', b"a;b", b"  a b\t c", b"a||b||c"]),
    lines=st.lists(st.tuples(LINE, ENDINGS), max_size=25),
    last_newline=st.booleans(),
    block_bytes=st.sampled_from([1, 7, 16, 64, 4096]),
    chunk_rows=st.sampled_from([1, 3, 50]),
    limit=st.sampled_from([10, 2**20]),
    dialect=st.sampled_from(
        [
            Dialect(),
            Dialect(encoding_fallback=None),
            Dialect(encoding="latin-1", encoding_fallback=None),
            Dialect(delimiter=";"),
            Dialect(delimiter="whitespace"),
            Dialect(delimiter="||"),
        ]
    ),
)
def test_fast_reader_equals_careful_reader(
    tmp_path: Path,
    bom: bool,
    header: bytes,
    lines: list[tuple[bytes, bytes]],
    last_newline: bool,
    block_bytes: int,
    chunk_rows: int,
    limit: int,
    dialect: Dialect,
) -> None:
    body = b"".join(line + end for line, end in lines)
    text = (b"\xef\xbb\xbf" if bom else b"") + header + b"\n" + body
    if not last_newline:
        text = text.rstrip(b"\n")
    path = tmp_path / "f.csv"
    path.write_bytes(text)
    fast = _read(path, dialect, True, block_bytes, chunk_rows, limit)
    careful = _read(path, dialect, False, 2**20, 10**6, limit)
    _assert_same(fast, careful)
    if not isinstance(careful, str):  # RECON: the independent counter agrees with the parser
        assert count_csv_records(path) == len(careful[1]) + len(careful[2])


@pytest.mark.parametrize("block_bytes", [5, 32, 2**20])
def test_fast_reader_keeps_line_numbers_raw_and_rejects(tmp_path: Path, block_bytes: int) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(
        b"\xef\xbb\xbfa,b\r\n"
        b"1,2\r\n"  # line 2: plain row, CRLF
        b"\n"  # line 3: empty, not a record
        b"3,4,5\n"  # line 4: too many fields -> malformed_row
        b'"6\n7",8\n'  # lines 5-6: one quoted record over two lines
        b"9,\xe9\n"  # line 7: not UTF-8 -> cp1252 fallback
        b"10,11"  # line 8: no final line break
    )
    result = _read(path, Dialect(), True, block_bytes, 50)
    assert not isinstance(result, str)
    header, rows, rejects, fallbacks = result
    assert header == ("a", "b")
    assert rows["line_number"].tolist() == [2, 5, 7, 8]
    assert rows["a"].tolist() == ["1", "6\n7", "9", "10"]
    assert rows["b"].tolist() == ["2", "8", "é", "11"]
    assert rows["raw"].tolist() == ["1,2", '"6\n7",8', "9,é", "10,11"]
    assert rejects[["line_number", "reason_code", "raw"]].values.tolist() == [
        [4, "malformed_row", "3,4,5"]
    ]
    assert fallbacks == 1
