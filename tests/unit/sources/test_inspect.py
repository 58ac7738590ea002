"""The sniffers of `loyalty inspect`, each on a few hand-written values or lines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Params
from pipeline.errors import InputError
from pipeline.features.defaults import fit_timeline
from pipeline.features.gaps import Gaps
from pipeline.sources.inspect.cadence import suggest_cadence
from pipeline.sources.inspect.matching import header_match, match_roles, words
from pipeline.sources.inspect.proposal import parse_columns, source_name
from pipeline.sources.inspect.roles import TRANSACTIONS
from pipeline.sources.inspect.rules import (
    guess_cancellation,
    guess_non_product_codes,
    guess_return_link,
)
from pipeline.sources.inspect.sample import (
    assemble_records,
    looks_like_data,
    sniff_delimiter,
    sniff_encoding,
)
from pipeline.sources.inspect.values import profile_column, sniff_decimal, sniff_timestamp


def strings(values: list[str | None]) -> pd.Series:
    return pd.Series(values, dtype="string")


# --- encoding -------------------------------------------------------------------------------


def test_utf8_with_a_bom_is_utf8_and_says_so() -> None:
    guess = sniff_encoding("\ufeffclient;ville\nA1;Besançon\n".encode())
    assert (guess.guess.value, guess.guess.confidence, guess.bom) == ("utf-8", "high", True)
    assert "byte-order mark" in guess.guess.evidence


def test_cp1252_bytes_make_a_cp1252_file() -> None:
    head = "client;ville\nA1;Besançon\nA2;Zürich €\n".encode("cp1252")
    guess = sniff_encoding(head)
    assert guess.guess.value == "cp1252" and guess.fallback == "latin-1"


def test_a_few_latin1_lines_among_utf8_use_the_fallback() -> None:
    lines = ["client;ville", *(f"A{i};Besançon" for i in range(5))]
    head = "\n".join(lines).encode() + "\nA9;Zürich\n".encode("latin-1")
    guess = sniff_encoding(head)
    assert (guess.guess.value, guess.guess.confidence, guess.fallback) == (
        "utf-8",
        "medium",
        "cp1252",
    )


def test_a_wide_byte_order_mark_is_named_and_read_as_utf8() -> None:
    # the head comes transcoded to UTF-8 (pipeline.sources.encodings.open_text)
    guess = sniff_encoding("client,ville\nA1,Besançon\n".encode(), wide="utf-16-le")
    assert (guess.guess.value, guess.guess.confidence, guess.fallback) == ("utf-8", "high", None)
    assert "UTF-16LE byte-order mark" in guess.guess.evidence


# --- dialect --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("id,date,total\n1,2024-01-01 10:00,3.5\n2,2024-01-02 11:00,4\n", ","),
        ("id;date;total\n1;2024-01-01 10:00;3,5\n2;2024-01-02 11:00;4,0\n", ";"),
        ("id\tdate\ttotal\n1\t2024-01-01\t3.5\n2\t2024-01-02\t4\n", "\t"),
        ("id|date|total\n1|2024-01-01|3.5\n2|2024-01-02|4\n", "|"),
        # the single '|' splits too (with empty fields between): the longer delimiter wins
        ("id||date||total\n1||2024-01-01||3.5\n2||2024-01-02||4\n", "||"),
        ("  id    date    total\n   1  20240101    3.5\n  22  20240102   14.0\n", "whitespace"),
        # a comma inside quotes is no delimiter
        ('id,name,total\n1,"Smith, J",3.5\n2,"Doe, A",4\n', ","),
    ],
)
def test_the_delimiter_that_splits_every_line_alike_wins(text: str, delimiter: str) -> None:
    records = assemble_records(text.splitlines(), '"', 100)
    guess = sniff_delimiter(records)
    assert guess.value == delimiter
    assert guess.confidence == "high"


def test_a_single_column_is_not_delimited_text() -> None:
    with pytest.raises(InputError, match="no delimiter splits"):
        sniff_delimiter(["total", "3.5", "4"])


def test_a_quoted_line_break_stays_in_its_record() -> None:
    records = assemble_records(["id,note", '1,"two', 'lines"', "", "2,x"], '"', 10)
    assert records == ["id,note", '1,"two\nlines"', "2,x"]


def test_a_header_made_of_values_is_data() -> None:
    assert looks_like_data(("17850", "01/12/2010 08:26", "2,55", "WHITE MUG")) == [
        "17850",
        "01/12/2010 08:26",
        "2,55",
    ]
    assert looks_like_data(("CustomerID", "InvoiceDate", "Price 2")) == []


# --- values ---------------------------------------------------------------------------------


def test_a_day_above_12_decides_day_first() -> None:
    # 03/09 fits both orders; 14/09 only day-first: never swapped silently
    guess = sniff_timestamp(strings(["03/09/2024 10:00", "14/09/2024 11:00", "01/10/2024 09:30"]))
    assert guess is not None and guess.value == "%d/%m/%Y %H:%M"
    assert guess.confidence == "high" and "day above 12" in guess.evidence


def test_a_day_above_12_in_second_place_decides_month_first() -> None:
    guess = sniff_timestamp(strings(["12/1/2010 8:26", "12/13/2010 9:00", "1/4/2011 10:05"]))
    assert guess is not None and guess.value == "%m/%d/%Y %H:%M"


def test_without_a_day_above_12_time_order_decides_with_medium_confidence() -> None:
    # read month-first these are Jan 2, Jan 3, Jan 4, Feb 1: in order; day-first they jump back
    guess = sniff_timestamp(strings(["01/02/2024", "01/03/2024", "01/04/2024", "02/01/2024"]))
    assert guess is not None and (guess.value, guess.confidence) == ("%m/%d/%Y", "medium")


def test_without_any_evidence_the_day_month_order_is_low_confidence() -> None:
    guess = sniff_timestamp(strings(["03/09/2024", "03/09/2024", "03/09/2024"]))
    assert guess is not None and guess.confidence == "low" and "CHECK" in guess.evidence


@pytest.mark.parametrize(
    ("values", "fmt"),
    [
        (["20240105", "20241231"], "%Y%m%d"),
        (["2024-01-05T10:00:00Z", "2024-07-05T11:00:00+02:00"], "%Y-%m-%dT%H:%M:%S%z"),
        (["2024-01-05 10:00:00", "2024-01-06 23:59:59"], "%Y-%m-%d %H:%M:%S"),
        (["05.01.2024 10:00", "31.12.2024 09:15"], "%d.%m.%Y %H:%M"),
        (["1/5/2024 10:00 PM", "1/13/2024 9:00 AM"], "%m/%d/%Y %I:%M %p"),
    ],
)
def test_timestamp_formats(values: list[str], fmt: str) -> None:
    guess = sniff_timestamp(strings(values))
    assert guess is not None and guess.value == fmt


@pytest.mark.parametrize(
    "values", [["17850", "13047", "12583"], ["12.50", "3.99"], ["WHITE MUG", "RED CUP"]]
)
def test_ids_prices_and_text_are_no_timestamps(values: list[str]) -> None:
    assert sniff_timestamp(strings(values)) is None


def test_decimal_comma_against_decimal_point() -> None:
    comma = sniff_decimal({"Betrag": strings(["12,50", "3,99", "7"]), "id": strings(["1", "2"])})
    assert (comma.value, comma.confidence) == (",", "high")
    point = sniff_decimal({"total": strings(["12.50", "3.99"])})
    assert point.value == "."
    grouped = sniff_decimal({"total": strings(["1.234,50", "12,00"])})
    assert grouped.value == "," and "thousands separators" in grouped.evidence


# --- roles ----------------------------------------------------------------------------------


def test_header_words_undo_camel_case_and_accents() -> None:
    assert words("CustomerID") == ("customer", "id")
    assert words("Qté commandée") == ("qte", "commandee")
    assert words("unit_price") == ("unit", "price")


@pytest.mark.parametrize(
    ("header", "role"),
    [
        ("Customer ID", "customer_id"),
        ("Kundennummer", "customer_id"),
        ("client", "customer_id"),
        ("member_id", "customer_id"),
        ("InvoiceDate", "order_ts"),
        ("Datum", "order_ts"),
        ("fecha", "order_ts"),
        ("Montant", "amount"),
        ("Betrag", "amount"),
        ("Menge", "quantity"),
        ("Prix unitaire", "unit_price"),
        ("Preis", "unit_price"),
        ("InvoiceNo", "order_id"),
    ],
)
def test_multilingual_headers_name_their_role(header: str, role: str) -> None:
    by_name = {r.name: r for r in TRANSACTIONS}
    assert header_match(header, by_name[role])[0] > 0


def test_a_date_header_is_no_order_id_and_a_delivery_date_no_order_time() -> None:
    by_name = {r.name: r for r in TRANSACTIONS}
    assert header_match("InvoiceDate", by_name["order_id"])[0] == 0
    assert header_match("delivery date", by_name["order_ts"])[0] == 0


def _match(rows: dict[str, list[str]]) -> dict[str, str]:
    frame = pd.DataFrame(rows, dtype="string")
    profiles = {c: profile_column(c, frame[c], ".") for c in frame.columns}
    return {r: m.column for r, m in match_roles("transactions", profiles, frame).matches.items()}


def test_roles_from_headers_checked_by_values() -> None:
    rows = {
        # 3 customers with repeats; each invoice has one customer (so it is the order id)
        "client": ["A1", "A1", "A2", "A2", "A3", "A3"],
        "facture": ["F1", "F1", "F2", "F3", "F4", "F4"],
        "date": ["2024-01-01"] * 2 + ["2024-01-02", "2024-01-03"] + ["2024-01-04"] * 2,
        "qty": ["1", "2", "1", "3", "1", "1"],
        "prix": ["2.50", "3.00", "1.99", "4.00", "9.99", "0.50"],
        # a header that says "amount" over text is not an amount
        "total": ["x", "y", "z", "x", "y", "z"],
    }
    assert _match(rows) == {
        "customer_id": "client",
        "order_ts": "date",
        "order_id": "facture",
        "quantity": "qty",
        "unit_price": "prix",
    }


def test_a_customer_id_and_a_timestamp_are_found_by_their_values_alone() -> None:
    rows = {
        "col1": [f"C{i % 12}" for i in range(60)],
        "col2": [f"2024-01-{1 + i % 28:02d}" for i in range(60)],
        "col3": [f"{i + 0.5}" for i in range(60)],
    }
    assert _match(rows) == {"customer_id": "col1", "order_ts": "col2", "amount": "col3"}


def test_a_quantity_without_a_price_is_no_amount() -> None:
    rows = {"customer": ["A", "A", "B", "B"], "date": ["20240101"] * 4, "qty": ["1", "2", "1", "2"]}
    assert "quantity" not in _match(rows)


# --- rules ----------------------------------------------------------------------------------


def test_c_invoices_with_negative_quantities_are_cancellations() -> None:
    ids = strings(["536365", "536365", "C536379", "536380", "C536381"])
    quantity = pd.Series([6.0, 2.0, -1.0, 3.0, -2.0])
    guess = guess_cancellation(ids, quantity)
    assert (guess.value, guess.confidence) == ("C", "high")
    assert guess_return_link(ids, "C").value == "none"  # C536379 is no sale's id minus C


def test_a_return_that_names_its_sale_links_by_stripping_the_prefix() -> None:
    ids = strings(["1001", "1002", "R1001", "1003"])
    assert guess_return_link(ids, "R").value == "strip_prefix"


def test_a_common_prefix_is_no_cancellation_marker() -> None:
    # every id starts with INV; CR starts fewer: the marker is CR, never C or INV
    ids = strings(["INV1", "INV2", "INV3", "CR4"])
    assert guess_cancellation(ids, None).value == "CR"
    assert guess_cancellation(strings(["INV1", "INV2"]), None).value is None


def test_negative_lines_without_a_marker_are_reported() -> None:
    guess = guess_cancellation(strings(["1", "2", "3"]), pd.Series([1.0, -1.0, 2.0]))
    assert guess.value is None and "quarantines" in guess.evidence
    no_ids = guess_cancellation(None, pd.Series([1.0, -1.0]))
    assert no_ids.value is None and "no order id" in no_ids.evidence


def test_service_codes_are_proposed_as_non_products() -> None:
    sku = strings(["85123A", "71053", "POST", "M", "22423", "DHL1"])
    description = strings(["MUG", "LANTERN", "POSTAGE", "Manual", "CAKE STAND", "shipping fee"])
    guess = guess_non_product_codes(sku, description)
    assert guess.value == ("DHL1", "M", "POST")
    assert guess.confidence == "low"


# --- names, --column, cadence ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("stem", "name"),
    [
        ("Online Retail II", "online_retail_ii"),
        ("2024-export", "source_2024_export"),
        ("Bestellungen (März)", "bestellungen_m_rz"),
        ("x" * 60, "x" * 40),
    ],
)
def test_source_names_are_valid_data_source_values(stem: str, name: str) -> None:
    assert source_name(stem) == name


def test_column_options() -> None:
    assert parse_columns(["order_ts=Buchungsdatum", "feedback.score=Sterne", "order_id="]) == {
        "transactions": {"order_ts": "Buchungsdatum", "order_id": None},
        "feedback": {"score": "Sterne"},
    }
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="--column 'when=Datum'"):
        parse_columns(["when=Datum"])


def _gaps(days: int, n: int = 200) -> Gaps:
    return Gaps(np.full(n, float(days)), n)


DAY = pd.Timestamp("2023-01-01", tz="UTC")


def test_the_settings_are_the_features_stages_own_choice() -> None:
    # Two years of fortnightly buyers: what fit_timeline chooses, word for word.
    gaps, last = _gaps(14), DAY + pd.Timedelta(days=730)
    cadence = suggest_cadence(DAY, last, gaps, Params())
    chosen = fit_timeline(
        DAY, last.normalize() + pd.Timedelta(days=1), Params().features, Params().labels, gaps
    )
    assert cadence.fits and cadence.choices == chosen.choices
    assert {c.param for c in cadence.choices} >= {
        "labels.targets.churn.horizon_days",
        "features.min_history_days",
    }


def test_an_explicit_param_is_kept_as_it_is() -> None:
    params = Params.model_validate({"features": {"min_history_days": 90, "step_months": 1}})
    cadence = suggest_cadence(DAY, DAY + pd.Timedelta(days=730), _gaps(14), params)
    assert "features.min_history_days" not in {c.param for c in cadence.choices}


def test_a_far_too_short_export_says_why_no_split_fits() -> None:
    cadence = suggest_cadence(DAY, DAY + pd.Timedelta(days=40), _gaps(5), Params())
    assert not cadence.fits and cadence.problem
