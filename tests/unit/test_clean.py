"""The clean core: value parsers, clean_tables on tiny in-memory tables, and its invariants."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.clean import clean_export, clean_tables, default_as_of
from pipeline.cleaning.parsing import (
    fold_id,
    fold_ids,
    normalise_ids,
    parse_bool,
    parse_number,
    parse_timestamp,
)
from pipeline.cleaning.reasons import Reason
from pipeline.cleaning.rules import CleanRules
from pipeline.sources.csv_mapping import (
    FileInfo,
    RawTables,
    empty_rejects,
    load_source_config,
    read_export,
)

REPO = Path(__file__).resolve().parents[2]
CONFIG = load_source_config(REPO / "configs" / "sources" / "online_retail.yaml")
AS_OF = pd.Timestamp("2011-12-31", tz="UTC")
RULES = CleanRules(date_formats={"order_ts": "%Y-%m-%d %H:%M:%S"}, non_product_codes=("POST",))


def strings(values: list[str | None]) -> pd.Series:
    return pd.Series(values, dtype="string")


# --- parsers -------------------------------------------------------------------------------------


def test_ids_are_normalised_once() -> None:
    ids = normalise_ids(
        strings(["17850.0", " 17850", "17850", "", "NaN", None, "A-7"]), RULES.id_nulls
    )
    assert ids.tolist() == ["17850", "17850", "17850", pd.NA, pd.NA, pd.NA, "A-7"]


#: The zero of some Unicode decimal digit families (category Nd), fullwidth and math bold too.
DIGIT_ZEROS = [0x30, 0x660, 0x6F0, 0x966, 0x9E6, 0xE50, 0xFF10, 0x1D7CE, 0x1D7EC]
FORMAT_CHARACTERS = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\ufeff", "\u00ad"]


@settings(max_examples=200, deadline=None)
@given(
    number=st.integers(0, 10**12),
    zeros=st.lists(st.sampled_from(DIGIT_ZEROS), min_size=1, max_size=13),
    inserts=st.lists(st.tuples(st.integers(0, 14), st.sampled_from(FORMAT_CHARACTERS)), max_size=3),
    float_suffix=st.booleans(),
)
def test_any_unicode_spelling_of_a_numeric_id_is_its_ascii_digits(
    number: int, zeros: list[int], inserts: list[tuple[int, str]], float_suffix: bool
) -> None:
    digits = str(number)
    spelt = [chr(zeros[i % len(zeros)] + int(d)) for i, d in enumerate(digits)]
    for position, char in inserts:
        spelt.insert(min(position, len(spelt)), char)
    text = " " + "".join(spelt) + (".0" if float_suffix else "") + "\u3000"
    assert normalise_ids(strings([text]), RULES.id_nulls).tolist() == [digits]
    folded, changed = fold_ids(strings([text, digits]))
    assert changed == 1 and folded.iloc[1] == digits


def test_ascii_ids_take_no_unicode_path_and_other_scripts_are_kept() -> None:
    folded, changed = fold_ids(strings(["17850", " 17850.0", None, "M\u00fcller", "\u5f20\u4e09"]))
    assert changed == 0
    assert folded.tolist() == ["17850", " 17850.0", pd.NA, "M\u00fcller", "\u5f20\u4e09"]
    assert fold_id("\uff2d\uff55") == "Mu"  # fullwidth letters: NFKC


def test_numbers_are_strict() -> None:
    values, bad = parse_number(strings(["3", "-2.5", "1e3", "12 pcs", "N/A", "1,234.50", "", None]))
    assert values.tolist()[:3] == [3.0, -2.5, 1000.0]
    assert bad.tolist() == [False, False, False, True, True, True, False, False]


def test_decimal_comma_refuses_a_dot() -> None:
    values, bad = parse_number(strings(["1,5", "1.234,5", "7"]), decimal=",")
    assert values.iloc[0] == 1.5 and values.iloc[2] == 7.0
    assert bad.tolist() == [False, True, False]


def test_timestamps_follow_the_explicit_format_and_the_dst_rule() -> None:
    stamps, bad = parse_timestamp(
        strings(
            ["14/09/2024 10:00", "09/14/2024 10:00", "31/03/2024 02:30", "27/10/2024 02:30", ""]
        ),
        "%d/%m/%Y %H:%M",
        "Europe/Paris",
    )
    assert bad.tolist() == [False, True, False, False, False]
    assert str(stamps.dtype) == "datetime64[us, UTC]"
    assert [str(s) for s in stamps] == [
        "2024-09-14 08:00:00+00:00",
        "NaT",
        "2024-03-31 01:00:00+00:00",  # gap: moved forward to 03:00 CEST
        "2024-10-27 00:30:00+00:00",  # overlap: first occurrence (CEST)
        "NaT",
    ]


def test_timestamps_with_mixed_utc_offsets_are_read_each_with_its_own() -> None:
    # a local export across the October DST change: two offsets in one column, plus "Z"
    stamps, bad = parse_timestamp(
        strings(["2024-10-26T10:00:00+02:00", "2024-10-28T10:00:00+01:00", "2024-10-28T10:00:00Z"]),
        "%Y-%m-%dT%H:%M:%S%z",
        "Europe/Paris",
    )
    assert not bad.any()
    assert [str(s) for s in stamps] == [
        "2024-10-26 08:00:00+00:00",
        "2024-10-28 09:00:00+00:00",
        "2024-10-28 10:00:00+00:00",
    ]


def test_booleans() -> None:
    values, bad = parse_bool(strings(["true", "No", "1", "", "maybe"]))
    assert values.tolist() == [True, False, True, pd.NA, pd.NA]
    assert bad.tolist() == [False, False, False, False, True]


def test_default_as_of_is_the_next_utc_midnight() -> None:
    assert default_as_of(pd.Timestamp("2024-05-01 13:45", tz="Europe/Paris")) == pd.Timestamp(
        "2024-05-02", tz="UTC"
    )


# --- clean_tables --------------------------------------------------------------------------------


def raw_lines(rows: list[tuple[str, str, str, str, str, str]]) -> RawTables:
    """Build raw transactions: (order_id, sku, quantity, order_ts, unit_price, customer_id)."""
    columns = ["order_id", "sku", "quantity", "order_ts", "unit_price", "customer_id"]
    frame = pd.DataFrame(rows, columns=columns).astype("string")
    frame.insert(0, "source_file", pd.Series(["t.csv"] * len(rows), dtype="string"))
    frame["line_number"] = pd.Series(range(2, len(rows) + 2), dtype="int64")
    frame["raw"] = pd.Series([",".join(r) for r in rows], dtype="string")
    return RawTables(
        {"transactions": frame},
        empty_rejects(),
        (FileInfo("t.csv", "transactions", len(rows), "x", 0),),
        "test",
    )


NUMBER_TEXT = st.one_of(
    st.sampled_from(["1e20", "1e308", "1e309", "-1e309", "9" * 400, "inf", "NaN", "0", "-3"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(10**30), 10**30).map(str),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["1", "2", "C3"]), NUMBER_TEXT, NUMBER_TEXT, st.sampled_from("789")
        ),
        min_size=1,
        max_size=12,
    )
)
def test_no_number_sinks_the_table_or_reaches_it_infinite(
    lines: list[tuple[str, str, str, str]],
) -> None:
    raw = raw_lines(
        [
            (order, "A", quantity, "2011-01-01 10:00:00", price, customer)
            for order, quantity, price, customer in lines
        ]
    )
    result = clean_tables(raw, RULES, AS_OF)  # validated by the schemas, which refuse inf
    assert result.manifest["rows_read"] == result.manifest["accepted"] + result.manifest["rejected"]
    orders = result.tables["orders"]
    assert (orders["gross_amount"] <= len(lines) * RULES.max_amount).all()
    assert (orders["n_items"] <= len(lines) * RULES.max_quantity + 1).all()


def test_lines_are_aggregated_per_invoice_and_inputs_not_mutated() -> None:
    raw = raw_lines(
        [
            ("1", "A", "2", "2011-01-01 10:00:00", "1.5", "7"),  # order 1, first product
            ("1", "B", "1", "2011-01-01 10:00:00", "4", "7.0"),  # order 1, second product, float id
            ("1", "POST", "1", "2011-01-01 10:00:00", "9", "7"),  # postage: not spend
            ("C2", "A", "-1", "2011-01-03 10:00:00", "1.5", "7"),  # a cancellation
        ]
    )
    before = raw.tables["transactions"].copy()
    result = clean_tables(raw, RULES, AS_OF)
    pd.testing.assert_frame_equal(raw.tables["transactions"], before)
    orders = result.tables["orders"]
    assert orders[
        ["customer_id", "order_id", "gross_amount", "n_items", "n_distinct_products"]
    ].values.tolist() == [["7", "1", 7.0, 3, 2]]
    assert result.tables["returns"][["return_id", "amount"]].values.tolist() == [["C2", 1.5]]
    assert result.manifest["transactions"]["non_product_lines"] == 1
    assert len(result.rejects) == 0


def test_without_order_ids_each_customer_timestamp_is_one_order() -> None:
    raw = raw_lines(
        [
            ("-", "A", "2", "2011-01-01 10:00:00", "1.5", "7"),
            ("-", "B", "1", "2011-01-01 10:00:00", "4", "7"),  # same instant: the same purchase
            ("-", "A", "1", "2011-01-02 09:00:00", "2", "7"),
            ("-", "A", "1", "2011-01-01 10:00:00", "3", "8"),  # another customer, same instant
        ]
    )
    raw.tables["transactions"] = raw.tables["transactions"].drop(columns="order_id")
    result = clean_tables(raw, RULES, AS_OF)
    orders = result.tables["orders"].sort_values(["customer_id", "order_ts"])
    assert orders[["customer_id", "gross_amount", "n_items"]].values.tolist() == [
        ["7", 7.0, 3],
        ["7", 2.0, 1],
        ["8", 3.0, 1],
    ]
    assert orders["order_id"].str.startswith("2011-01-0").all()
    assert result.manifest["transactions"]["order_id_rule"].startswith("derived: one order per")
    assert len(result.rejects) == 0
    with_ids = clean_tables(
        raw_lines([("1", "A", "2", "2011-01-01 10:00:00", "1.5", "7")]), RULES, AS_OF
    )
    assert with_ids.manifest["transactions"]["order_id_rule"] == "from the export"


def test_first_failing_rule_wins() -> None:
    raw = raw_lines(
        [
            ("1", "A", "x", "bad", "1", ""),  # no id, bad date and bad quantity: missing id first
            ("2", "A", "x", "bad", "1", "7"),  # bad date before bad quantity
        ]
    )
    result = clean_tables(raw, RULES, AS_OF)
    assert result.rejects["reason_code"].tolist() == [Reason.MISSING_CUSTOMER_ID, Reason.BAD_DATE]


def test_a_lost_row_fails_loudly() -> None:
    raw = raw_lines([("1", "A", "1", "2011-01-01 10:00:00", "1", "7")])
    liar = RawTables(
        raw.tables, raw.rejects, (FileInfo("t.csv", "transactions", 2, "x", 0),), "test"
    )
    with pytest.raises(
        Exception, match="reconciliation failed: rows read 2 != accepted 1 \\+ rejected 0"
    ):
        clean_tables(liar, RULES, AS_OF)


# --- property: no row lost, clean is idempotent ---------------------------------------------------

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
GOOD = st.builds(
    lambda inv, sku, qty, day, price, cid: (
        f"{inv},{sku},THING,{qty},2010-0{day}-01 10:00:00,{price},{cid},UK"
    ),
    st.integers(500000, 500030).map(str) | st.integers(500000, 500010).map(lambda i: f"C{i}"),
    st.sampled_from(["85048", "22041", "POST", "M"]),
    st.integers(-5, 50),
    st.integers(1, 9),
    st.sampled_from(["0", "1.25", "3", "-1"]),
    st.sampled_from(["17850", "17850.0", " 17851", "", "12345"]),
)
BAD = st.sampled_from(
    [
        "1,2,3",  # too few fields
        '500001,85048,"OPEN QUOTE,1,2010-01-01 10:00:00,1,17850,UK',  # unbalanced quote
        "500001,85048,A,B,C,1,2,3,4,5",  # too many fields
        "500002,85048,THING,12 pcs,2010-01-01 10:00:00,1,17850,UK",
        "500003,85048,THING,1,01/01/2010,1,17850,UK",
        "500004,85048,THING,1,2030-01-01 10:00:00,1,17850,UK",
        '500005,85048,"MULTI\nLINE",1,2010-01-01 10:00:00,1,17850,UK',
        "",  # an empty line is not a record
    ]
)


def clean_text(text: str, chunk_rows: int | None = None) -> tuple[object, int]:
    """Clean ``text`` in memory, or streamed in chunks of ``chunk_rows`` records."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.csv"
        path.write_text(text, encoding="utf-8")
        if chunk_rows is None:
            result = clean_tables(read_export(CONFIG, [path]), CONFIG.rules, AS_OF)
        else:
            config = CONFIG.model_copy(update={"chunk_rows": chunk_rows})
            result = clean_export(config, [path], AS_OF)
    return result, text.count("\n")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(GOOD | BAD, min_size=0, max_size=30), st.booleans(), st.sampled_from([1, 4]))
def test_no_row_is_lost_and_clean_is_idempotent(
    lines: list[str], duplicate_first: bool, chunk_rows: int
) -> None:
    if duplicate_first and lines:
        lines = [lines[0], *lines]
    text = "\n".join([HEADER, *lines]) + "\n"
    result, _ = clean_text(text)
    # streaming in chunks gives the same rejects and tables as cleaning in one piece
    streamed, _ = clean_text(text, chunk_rows)
    pd.testing.assert_frame_equal(streamed.rejects, result.rejects)
    for name in ("orders", "returns"):
        pd.testing.assert_frame_equal(streamed.tables[name], result.tables[name])
    assert streamed.manifest == result.manifest
    manifest = result.manifest
    (entry,) = manifest["inputs"]
    assert entry["rows_read"] == entry["accepted"] + entry["rejected"]
    # every record start line is either accepted or rejected, never both and never lost
    rejected_lines = set(result.rejects["line_number"])
    assert len(rejected_lines) == len(result.rejects)
    everything = _accepted_records(text, set())
    assert entry["rows_read"] == len(everything)
    assert entry["accepted"] == len(_accepted_records(text, rejected_lines))
    accepted_lines = sum(len(t) for t in result.tables.values())
    assert accepted_lines <= entry["accepted"]  # aggregation only merges lines

    # idempotent: the accepted records, written again, are all accepted and give the same tables
    if '"OPEN QUOTE' in text:
        return  # an unclosed quote swallows the rest of the file; nothing to re-clean safely
    kept = _accepted_records(text, rejected_lines)
    again, _ = clean_text("\n".join([HEADER, *kept]) + "\n")
    assert len(again.rejects) == 0
    for name in ("orders", "returns"):
        pd.testing.assert_frame_equal(again.tables[name], result.tables[name])


def _accepted_records(text: str, rejected_lines: set[int]) -> list[str]:
    """Split text into records by start line (the reader's rule); keep the accepted ones."""
    records: list[tuple[int, str]] = []
    open_quote = False
    for number, line in enumerate(text.split("\n")[:-1], start=1):
        if not open_quote:
            if not line:
                continue
            records.append((number, line))
        else:
            start, previous = records[-1]
            records[-1] = (start, previous + "\n" + line)
        if line.count('"') % 2:
            open_quote = not open_quote
    return [record for start, record in records[1:] if start not in rejected_lines]
