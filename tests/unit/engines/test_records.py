"""The record rule and byte ranges: reading a file in K ranges is reading it whole."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.engines.records import (
    ByteRange,
    count_range,
    iter_records,
    place_ranges,
    plan_ranges,
    read_range,
)

HEADER = b"id,text,customer_id\n"


def _lines(body: bytes) -> list[bytes]:
    """Physical lines as a binary file yields them: split after each \\n, never at \\r."""
    parts = body.split(b"\n")
    return [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _reference(body: bytes) -> list[tuple[int, int, bytes]]:
    """Records of the whole body by the rule alone: (first line, lines, bytes)."""
    out, line = [], 2
    for n_lines, record in iter_records(_lines(body)):
        out.append((line, n_lines, record))
        line += n_lines
    return out


def _read_in_ranges(path: Path, starts: list[int]) -> list[tuple[int, int, bytes]]:
    """Read ``path`` as ranges starting at ``starts`` (the first is the body start)."""
    ends: list[float] = [*starts[1:], math.inf]
    ranges = [ByteRange(0, s, e) for s, e in zip(starts, ends, strict=True)]
    counts = [count_range(path, r.start, r.end) for r in ranges]
    out: list[tuple[int, int, bytes]] = []
    for item in place_ranges(ranges, counts):
        out.extend(read_range(path, item, starts[0]))
    return out


# Bodies from the characters that matter: quotes, both line ends, delimiters, plain bytes.
bodies = st.lists(
    st.sampled_from([b"a", b"1", b",", b'"', b'""', b"\n", b"\r\n", b"\r"]), max_size=60
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(body=bodies, data=st.data())
@example(body=b'1,"two\nlines",7\r\n2,plain,8\r\n3,"last, no newline",9', data=None)
@example(body=b'1,ok,7\n2,"unbalanced,8\n3,after,9\n4,more,10\n', data=None)
@example(body=b'1,"a\n\n\nb",7\n2,"x""y",8\n', data=None)
def test_k_ranges_read_exactly_the_records_of_the_whole_file(
    tmp_path_factory: pytest.TempPathFactory, body: bytes, data: st.DataObject | None
) -> None:
    path = tmp_path_factory.mktemp("ranges") / "t.csv"
    path.write_bytes(HEADER + body)
    start, size = len(HEADER), len(HEADER) + len(body)
    if data is None:  # the explicit examples: cut at every byte
        cuts = list(range(start + 1, size))
    else:
        cuts = sorted(set(data.draw(st.lists(st.integers(start, size), max_size=8))))
    starts = [start, *(c for c in cuts if c > start)]
    expected = _reference(body)
    assert _read_in_ranges(path, starts) == expected
    assert b"".join(record for _, _, record in expected) == body  # nothing lost, nothing added


@settings(max_examples=100, deadline=None)
@given(body=bodies, range_bytes=st.integers(1, 40))
def test_planned_ranges_read_the_whole_file(
    tmp_path_factory: pytest.TempPathFactory, body: bytes, range_bytes: int
) -> None:
    path = tmp_path_factory.mktemp("plan") / "t.csv"
    path.write_bytes(HEADER + body)
    ranges = plan_ranges(0, len(HEADER), len(HEADER) + len(body), range_bytes, splittable=True)
    assert ranges[-1].end == math.inf
    assert len(ranges) == max(1, math.ceil(len(body) / range_bytes))
    assert _read_in_ranges(path, [r.start for r in ranges]) == _reference(body)


def test_each_record_is_owned_by_the_range_it_starts_in(tmp_path: Path) -> None:
    body = b'1,a,7\n2,"b\nc",8\n3,d,9\n'
    path = tmp_path / "t.csv"
    path.write_bytes(HEADER + body)
    second = len(HEADER) + len(b"1,a,7\n")  # exactly where record 2 starts
    inside = second + len(b'2,"b\n')  # its second physical line: record 3 is the next start
    assert [r[0] for r in _read_in_ranges(path, [len(HEADER), second])] == [2, 3, 5]
    first, *rest = place_ranges(
        [ByteRange(0, len(HEADER), second), ByteRange(0, second, inside), ByteRange(0, inside)],
        [count_range(path, len(HEADER), second), count_range(path, second, inside), (0, 0)],
    )
    assert [line for line, _, _ in read_range(path, first, len(HEADER))] == [2]
    assert [line for line, _, _ in read_range(path, rest[0], len(HEADER))] == [3]
    assert rest[1].quote_parity == 1 and rest[1].first_line == 4  # inside the quoted field
    assert [line for line, _, _ in read_range(path, rest[1], len(HEADER))] == [5]


def test_a_range_inside_one_long_record_reads_nothing(tmp_path: Path) -> None:
    body = b'1,"' + b"x\n" * 50 + b'",7\n2,b,8\n'
    path = tmp_path / "t.csv"
    path.write_bytes(HEADER + body)
    starts = [len(HEADER), len(HEADER) + 20, len(HEADER) + 40]
    records = _read_in_ranges(path, starts)
    assert [(line, n) for line, n, _ in records] == [(2, 51), (53, 1)]
    ranges = [ByteRange(0, s, e) for s, e in zip(starts, [*starts[1:], math.inf], strict=True)]
    middle = place_ranges(ranges, [count_range(path, r.start, r.end) for r in ranges])[1]
    assert (middle.quote_parity, middle.first_line) == (1, 10)  # 8 newlines before it
    assert list(read_range(path, middle, len(HEADER))) == []


def test_a_gzip_file_is_one_range_read_from_its_body(tmp_path: Path) -> None:
    body = b'1,"two\nlines",7\n2,b,8'
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(HEADER + body))
    (only,) = plan_ranges(3, len(HEADER), path.stat().st_size, 4, splittable=False)
    assert (only.file, only.start, only.end) == (3, len(HEADER), math.inf)
    assert list(read_range(path, only, len(HEADER))) == _reference(body)


def test_an_empty_body_is_one_range_without_records(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(HEADER)
    (only,) = plan_ranges(0, len(HEADER), len(HEADER), 10, splittable=True)
    assert list(read_range(path, only, len(HEADER))) == []
