from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import io
from pipeline.cleaning.parsing import normalise_id, normalise_ids
from pipeline.engines.partitioning import (
    NO_KEY_PARTITION,
    CsvLayout,
    RecordKeys,
    lines_path,
    part_dir,
    partition_of,
    partition_series,
    read_header,
    split_csv,
    write_partition,
)
from pipeline.engines.records import ByteRange, count_range, place_ranges, read_range
from pipeline.errors import InputError
from pipeline.sources.dialect import Dialect

HEADER = b"invoice,description,quantity,customer_id\n"
ROWS = [
    b"1,plain line,2,17850\n",  # the reference customer
    b"2,float id,1,17850.0\n",  # same customer written as a float: same partition
    b"3,padded id,1, 17850\n",  # same customer with a leading space: same partition
    b'4,"quoted, with comma",1,12000\n',  # quoted field with a delimiter before the id
    b'5,"two\nline description",1,12000\n',  # quoted newline: one record, two physical lines
    b"6,no id,1,\n",  # missing id: goes to the no-key partition for clean to quarantine
    b"7,caf\xe9 latin-1 bytes,1,13000\n",  # not UTF-8: bytes copied verbatim
]


def _write(tmp_path: Path, rows: list[bytes]) -> Path:
    path = tmp_path / "transactions.csv"
    path.write_bytes(HEADER + b"".join(rows))
    return path


def _parts(root: Path, n: int) -> list[bytes]:
    return [(part_dir(root, p) / "transactions.csv").read_bytes() for p in range(n)]


def test_ids_written_differently_share_a_partition() -> None:
    assert normalise_id(" 17850.0") == "17850"
    assert {partition_of(x, 16) for x in ["17850", "17850.0", " 17850", "17850."]} == {
        partition_of("17850", 16)
    }


def test_partition_series_matches_scalar() -> None:
    ids = pd.Series(["a", "17850.0", None, "b"], dtype="string")
    assert list(partition_series(ids, 5)) == [
        partition_of("a", 5),
        partition_of("17850", 5),
        0,
        partition_of("b", 5),
    ]


def test_split_keeps_every_record_verbatim_with_its_line_number(tmp_path: Path) -> None:
    source = _write(tmp_path, ROWS)
    stats = split_csv(source, tmp_path / "parts", CsvLayout("customer_id"), 4)
    parts = _parts(tmp_path / "parts", 4)
    assert all(part.startswith(HEADER) for part in parts)
    body = b"".join(part[len(HEADER) :] for part in parts)
    assert sorted(body.splitlines(keepends=True)) == sorted(
        b"".join(ROWS).splitlines(keepends=True)
    )
    assert stats.as_dict()["records"] == len(ROWS)
    assert stats.as_dict()["physical_lines"] == 1 + len(ROWS) + 1  # header + one extra line
    assert stats.no_key_records == 1
    # the three spellings of 17850 are in the same part, in input order
    home = part_dir(tmp_path / "parts", partition_of("17850", 4)) / "transactions.csv"
    text = home.read_bytes()
    assert text.index(ROWS[0]) < text.index(ROWS[1]) < text.index(ROWS[2])
    # the multi-line record stays whole, and its lines map back to lines 6 and 7
    home = part_dir(tmp_path / "parts", partition_of("12000", 4)) / "transactions.csv"
    assert ROWS[4] in home.read_bytes()
    numbers = list(
        io.read_line_numbers(
            lines_path(tmp_path / "parts", partition_of("12000", 4), "transactions.csv")
        )
    )
    assert numbers[-2:] == [6, 7]


def test_header_only_file_gives_header_only_parts(tmp_path: Path) -> None:
    source = _write(tmp_path, [])
    split_csv(source, tmp_path / "parts", CsvLayout("customer_id"), 3)
    assert _parts(tmp_path / "parts", 3) == [HEADER] * 3


def test_empty_file_and_missing_id_column_are_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="input file is empty"):
        split_csv(empty, tmp_path / "parts", CsvLayout("customer_id"), 2)
    with pytest.raises(InputError, match="'Customer ID' not found"):
        split_csv(_write(tmp_path, ROWS), tmp_path / "p2", CsvLayout("Customer ID"), 2)


@settings(max_examples=30, deadline=None)
@given(
    ids=st.lists(st.sampled_from(["1", "2", "2.0", " 3", "x", "", "17850"]), max_size=40),
    n=st.integers(1, 6),
)
def test_no_record_is_lost_or_duplicated(
    tmp_path_factory: pytest.TempPathFactory, ids: list[str], n: int
) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    rows = [f"{i},d,1,{cid}\n".encode() for i, cid in enumerate(ids)]
    split_csv(_write(tmp, rows), tmp / "parts", CsvLayout("customer_id"), n)
    parts = _parts(tmp / "parts", n)
    body = [line for part in parts for line in part.splitlines(keepends=True)[1:]]
    assert sorted(body) == sorted(rows)
    for p, part in enumerate(parts):
        for line in part.splitlines()[1:]:
            assert partition_of(line.split(b",")[3].decode(), n) == p


def test_scalar_normalisation_agrees_with_clean() -> None:
    raw = ["17850", " 17850.0", "17850.", "17850.00 ", "A-17", " x1.0", "1.5", "0017850", "\t42\t"]
    cleaned = normalise_ids(pd.Series(raw, dtype="string"), ())
    assert [normalise_id(x) for x in raw] == list(cleaned)


UNICODE_17850 = [
    "\uff11\uff17\uff18\uff15\uff10",  # fullwidth
    "\u0661\u0667\u0668\u0665\u0660",  # Arabic-Indic
    "178\u200b50",  # zero-width space
    "\ufeff17850.0",  # BOM, float spelling
    "\u3000\u0967\u096d\u096e\u096b\u0966",  # ideographic space, Devanagari
]


def test_unicode_spellings_of_an_id_land_in_its_partition(tmp_path: Path) -> None:
    """Scoring splits by the folded id, so a customer's lines meet in one partition."""
    n = 16
    assert {normalise_id(x) for x in UNICODE_17850} == {"17850"}
    rows = [f"{i},x,1,{x}\n".encode() for i, x in enumerate(["17850", *UNICODE_17850])]
    split_csv(_write(tmp_path, rows), tmp_path / "parts", CsvLayout("customer_id"), n)
    counts = [len(part.splitlines()) - 1 for part in _parts(tmp_path / "parts", n)]
    assert counts[partition_of("17850", n)] == len(rows)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_scalar_normalisation_agrees_with_clean_on_any_text(raw: str) -> None:
    cleaned = normalise_ids(pd.Series([raw], dtype="string"), ())
    assert normalise_id(raw) == ("" if pd.isna(cleaned.iloc[0]) else cleaned.iloc[0])


def _rebuild_from_ranges(
    source: Path, root: Path, n: int, starts: list[int], limit: int = 2**20
) -> None:
    """What the Spark engine does: read ranges, key records, rebuild each partition's folder."""
    layout = CsvLayout("customer_id", max_record_bytes=limit)
    header = read_header(source, layout)
    body_start = header.body_start
    starts = [body_start, *(s for s in starts if s > body_start)]
    ranges = [ByteRange(0, s, e) for s, e in zip(starts, [*starts[1:], math.inf], strict=True)]
    counts = [count_range(source, r.start, r.end) for r in ranges]
    keys = RecordKeys(layout, header.key_index, n)
    by_part: dict[int, list[tuple[int, int, int, bytes, bool]]] = {p: [] for p in range(n)}
    for item in place_ranges(ranges, counts):
        for line, n_lines, record, too_long, _ in read_range(source, item, body_start, '"', limit):
            part = -1 if too_long else keys.partition(record, n_lines)
            by_part[NO_KEY_PARTITION if part < 0 else part].append(
                (0, line, n_lines, record, too_long)
            )
    for p, records in by_part.items():
        write_partition(root, p, [("transactions.csv", header.raw, layout)], sorted(records))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(
                ["plain", '"quoted, comma"', '"two\nlines"', '"a ""b"""', '"open', "x" * 30, "\x00"]
            ),
            st.sampled_from(["1", "2.0", " 3", '"4"', "", "17850"]),
            st.sampled_from(["\n", "\r\n", "\r", "\n\n"]),
        ),
        max_size=25,
    ),
    n=st.integers(1, 4),
    data=st.data(),
)
def test_ranges_rebuild_the_very_part_files_of_the_whole_split(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[str, str, str]],
    n: int,
    data: st.DataObject,
) -> None:
    tmp = tmp_path_factory.mktemp("rebuild")
    body = b"".join(f"{i},{text},1,{cid}{end}".encode() for i, (text, cid, end) in enumerate(rows))
    source = _write(tmp, [body.removesuffix(b"\n")])  # last line without its newline
    size = source.stat().st_size
    starts = sorted(set(data.draw(st.lists(st.integers(0, size), max_size=6))))
    limit = 40  # the row of 30 x's is over it
    split_csv(source, tmp / "whole", CsvLayout("customer_id", max_record_bytes=limit), n)
    _rebuild_from_ranges(source, tmp / "ranged", n, starts, limit)
    for p in range(n):
        name = "transactions.csv"
        assert (part_dir(tmp / "ranged", p) / name).read_bytes() == (
            part_dir(tmp / "whole", p) / name
        ).read_bytes()
        assert list(io.read_line_numbers(lines_path(tmp / "ranged", p, name))) == list(
            io.read_line_numbers(lines_path(tmp / "whole", p, name))
        )


@pytest.mark.parametrize(
    ("dialect", "record"),
    [
        (Dialect(delimiter="whitespace"), b"  7 2024-01-05   17850 \r\n"),
        (Dialect(delimiter="whitespace"), b'7 "a b" 17850\n'),  # quoted blank before the id
        (Dialect(delimiter="||"), b"7||x|y||17850\n"),
        (Dialect(delimiter="||"), b'7||"x||y"||17850\n'),
    ],
)
def test_the_id_field_is_found_under_every_delimiter(dialect: Dialect, record: bytes) -> None:
    # The partitioner splits with the reader's rule, so a customer's lines meet in one part.
    keys = RecordKeys(CsvLayout("customer_id", dialect), 2, 4)
    assert keys.partition(record, 1) == partition_of("17850", 4)


# --- clean on the parts reads what clean on the whole file reads ----------------------------


def _read_whole(path: Path, limit: int) -> tuple[list, list, int]:
    from pipeline.sources.reading import read_csv_file

    frame = read_csv_file(path, Dialect(), "t.csv", max_record_bytes=limit)
    rows = sorted(zip(frame.rows["line_number"], frame.rows["raw"], strict=True))
    rejects = sorted(zip(frame.rejects["line_number"], frame.rejects["reason_code"], strict=True))
    return rows, rejects, frame.rows_read


def _read_parts(root: Path, n: int, limit: int) -> tuple[list, list, int]:
    """Read every part as clean does, naming lines by the sidecar (part line 2 is entry 0)."""
    from pipeline.sources.reading import read_csv_file

    rows, rejects, counted = [], [], 0
    for p in range(n):
        name = "transactions.csv"
        frame = read_csv_file(part_dir(root, p) / name, Dialect(), name, max_record_bytes=limit)
        numbers = io.read_line_numbers(lines_path(root, p, name))
        rows += [
            (int(numbers[line - 2]), raw)
            for line, raw in zip(frame.rows["line_number"], frame.rows["raw"], strict=True)
        ]
        rejects += [
            (int(numbers[line - 2]), reason)
            for line, reason in zip(
                frame.rejects["line_number"], frame.rejects["reason_code"], strict=True
            )
        ]
        counted += frame.rows_read
    return sorted(rows), sorted(rejects), counted


AWKWARD = ["plain", '"q, c"', '"two\nlines"', '"a ""b"""', '"open', "x" * 90, "n\x00ul", "caf\xe9"]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(AWKWARD),
            st.sampled_from(["1", "2.0", "", "17850", "x"]),
            st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\r\r\n"]),
        ),
        max_size=30,
    ),
    n=st.integers(1, 4),
    codec=st.sampled_from(["utf-8", "utf-16-le", "utf-32-be"]),
)
def test_clean_reads_the_parts_as_it_reads_the_whole_file(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[str, str, str]],
    n: int,
    codec: str,
) -> None:
    """Same rows and rejects (reasons, original line numbers) and RECON, part by part.

    Mixed line ends (bare CRs too), a record over the limit, NUL bytes (many in one part never
    make it look binary), blank lines, and UTF-16/UTF-32 with a byte-order mark.
    """
    from pipeline.sources.encodings import WIDE_BOMS

    tmp = tmp_path_factory.mktemp("parts")
    text = "invoice,text,customer_id\n" + "".join(
        f"{i},{t},{cid}{end}" for i, (t, cid, end) in enumerate(rows)
    )
    bom = next((mark for mark, name in WIDE_BOMS if name == codec), b"")
    data = bom + text.encode(codec if bom else "latin-1")
    source = tmp / "transactions.csv"
    source.write_bytes(data)
    limit = 64  # the row of 90 x's is over it
    wide = codec if bom else None
    dialect = Dialect(encoding="utf-8", encoding_fallback=None) if wide else Dialect()
    layout = CsvLayout("customer_id", dialect, max_record_bytes=limit, wide=wide)
    split_csv(source, tmp / "parts", layout, n)
    assert _read_parts(tmp / "parts", n, limit) == _read_whole(source, limit)


def test_a_long_record_is_read_through_and_quarantined_as_too_long(tmp_path: Path) -> None:
    """Over the limit with no line break for 3 MB: never held whole; its id is not read."""
    long = b"9,x" + b"y" * (3 << 20) + b",17850\n"
    source = _write(tmp_path, [ROWS[0], long, ROWS[3]])
    layout = CsvLayout("customer_id", max_record_bytes=1 << 20)
    stats = split_csv(source, tmp_path / "parts", layout, 4)
    assert stats.no_key_records == 1 and stats.as_dict()["records"] == 3
    rows, rejects, counted = _read_parts(tmp_path / "parts", 4, 1 << 20)
    assert rejects == [(3, "record_too_long")]
    assert [line for line, _ in rows] == [2, 4] and counted == 3
    stub = (part_dir(tmp_path / "parts", NO_KEY_PARTITION) / "transactions.csv").read_bytes()
    assert len(stub) < len(HEADER) + (1 << 20) + 100  # a placeholder, not the record


def test_bare_cr_records_go_to_their_own_partitions(tmp_path: Path) -> None:
    n = 8
    source = tmp_path / "transactions.csv"
    source.write_bytes(HEADER.replace(b"\n", b"\r") + b"1,a,1,17850\r2,b,1,12000\r3,c,1,13000")
    split_csv(source, tmp_path / "parts", CsvLayout("customer_id"), n)
    for cid, line in (("17850", 2), ("12000", 3), ("13000", 4)):
        p = partition_of(cid, n)
        assert cid.encode() in (part_dir(tmp_path / "parts", p) / "transactions.csv").read_bytes()
        assert line in list(
            io.read_line_numbers(lines_path(tmp_path / "parts", p, "transactions.csv"))
        )
