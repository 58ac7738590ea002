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
    file_records,
    place_ranges,
    plan_ranges,
    read_range,
)
from pipeline.sources.dialect import Dialect
from pipeline.sources.record_count import count_csv_records
from pipeline.sources.records import LongLine, RecordAssembler, block_lines, blocks, raw_records

HEADER = b"id,text,customer_id\n"
Row = tuple[int, int, bytes, bool]


def _reference(path: Path, limit: int = 2**20) -> list[Row]:
    """Records of the whole body as the local splitter reads them: (line, lines, bytes, long)."""
    return [record[:4] for record in list(file_records(path, limit))[1:]]


def _read_in_ranges(path: Path, starts: list[int], limit: int = 2**20) -> list[Row]:
    """Read ``path`` as ranges starting at ``starts`` (the first is the body start)."""
    ends: list[float] = [*starts[1:], math.inf]
    ranges = [ByteRange(0, s, e) for s, e in zip(starts, ends, strict=True)]
    counts = [count_range(path, r.start, r.end) for r in ranges]
    out: list[Row] = []
    for item in place_ranges(ranges, counts):
        out.extend(record[:4] for record in read_range(path, item, starts[0], '"', limit))
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
@example(body=b"1,a,7\r2,b,8\r\n3,c,9\n4,d,10\r", data=None)  # bare CRs, mixed
@example(body=b'1,"x\ry",7\r2,b,8\r\r3,c,9', data=None)
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
    expected = _reference(path)
    assert _read_in_ranges(path, starts) == expected
    # nothing lost, nothing added: the independent counter finds as many records
    assert len(expected) == count_csv_records(path)
    assert b"".join(r for _, _, r, _ in expected) == b"".join(
        line for line in body.splitlines(keepends=True) if line.strip(b"\r\n")
    ) or any(n > 1 for _, n, _, _ in expected)  # blank lines inside quotes stay


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
    assert _read_in_ranges(path, [r.start for r in ranges]) == _reference(path)


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
    assert [r[0] for r in read_range(path, first, len(HEADER))] == [2]
    assert [r[0] for r in read_range(path, rest[0], len(HEADER))] == [3]
    assert rest[1].quote_parity == 1 and rest[1].first_line == 4  # inside the quoted field
    assert [r[0] for r in read_range(path, rest[1], len(HEADER))] == [5]


def test_a_range_inside_one_long_record_reads_nothing(tmp_path: Path) -> None:
    body = b'1,"' + b"x\n" * 50 + b'",7\n2,b,8\n'
    path = tmp_path / "t.csv"
    path.write_bytes(HEADER + body)
    starts = [len(HEADER), len(HEADER) + 20, len(HEADER) + 40]
    records = _read_in_ranges(path, starts)
    assert [(line, n) for line, n, _, _ in records] == [(2, 51), (53, 1)]
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
    expected = [(2, 2, b'1,"two\nlines",7\n', False), (4, 1, b"2,b,8", False)]
    assert [r[:4] for r in read_range(path, only, len(HEADER))] == expected


def test_an_empty_body_is_one_range_without_records(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(HEADER)
    (only,) = plan_ranges(0, len(HEADER), len(HEADER), 10, splittable=True)
    assert list(read_range(path, only, len(HEADER))) == []


@settings(max_examples=200, deadline=None)
@given(
    body=bodies,
    limit=st.integers(1, 12),
    size=st.integers(1, 16),
    data=st.data(),
)
def test_raw_records_cut_where_the_reader_cuts(
    tmp_path_factory: pytest.TempPathFactory,
    body: bytes,
    limit: int,
    size: int,
    data: st.DataObject,
) -> None:
    """One rule: the splitter's raw records start and run over the limit as the reader's do."""
    path = tmp_path_factory.mktemp("rule") / "t.csv"
    path.write_bytes(HEADER + body)
    assembler = RecordAssembler(Dialect(), limit)
    expected = []
    for number, block in blocks(path, size, limit):
        if isinstance(block, LongLine):
            found = [assembler.feed_long(number, block)]
        else:
            found = [assembler.feed(number + i, line) for i, line in enumerate(block_lines(block))]
        expected += [(r.start, r.too_long) for r in found if r is not None]
    last = assembler.finish()
    expected += [(last.start, last.too_long)] if last is not None else []
    got = list(raw_records(blocks(path, size, limit), limit))
    assert [(r[0], r[3]) for r in got] == expected
    whole = HEADER + body
    for _, _, raw, too_long, offset in got:  # verbatim bytes at their offsets
        assert too_long or whole[offset : offset + len(raw)] == raw
    # and read in ranges, with the same small limit
    start = len(HEADER)
    cuts = sorted(set(data.draw(st.lists(st.integers(start, len(whole)), max_size=6))))

    def shown(rows: list) -> list:  # the head kept of a too-long record is a preview only
        return [(line, n, b"" if long else raw, long) for line, n, raw, long, *_ in rows]

    ranged = _read_in_ranges(path, [start, *(c for c in cuts if c > start)], limit)
    assert shown(ranged) == shown(got[1:])


def test_a_crlf_cut_by_a_range_end_is_one_line_break(tmp_path: Path) -> None:
    body = b"1,a,7\r\n2,b,8\r3,c,9\n"
    path = tmp_path / "t.csv"
    path.write_bytes(HEADER + body)
    cut = len(HEADER) + body.index(b"\n")  # between the CR and the LF of the first CRLF
    assert count_range(path, len(HEADER), cut) == (0, 0)
    assert count_range(path, cut, math.inf) == (0, 3)
    assert _read_in_ranges(path, [len(HEADER), cut]) == [
        (2, 1, b"1,a,7\r\n", False),
        (3, 1, b"2,b,8\r", False),
        (4, 1, b"3,c,9\n", False),
    ]


def test_a_record_over_the_limit_is_read_through_in_ranges(tmp_path: Path) -> None:
    long = b"2," + b"x" * 5000 + b",8\n"
    body = b"1,a,7\n" + long + b"3,c,9\n"
    path = tmp_path / "t.csv"
    path.write_bytes(HEADER + body)
    start = len(HEADER)
    for cuts in ([], [start + 10], [start + 10, start + 3000], [start + 6 + len(long)]):
        records = _read_in_ranges(path, [start, *cuts], limit=100)
        assert [(line, too_long) for line, _, _, too_long in records] == [
            (2, False),
            (3, True),
            (4, False),
        ]
        assert records[1][2] == long[:1024]  # only the head is kept
