"""Splitting one record into fields: one character, several characters, runs of blanks."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pipeline.sources.dialect import Dialect

WHITESPACE = Dialect(delimiter="whitespace")
DOUBLE_PIPE = Dialect(delimiter="||")


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("17850 20101201 15.30", ["17850", "20101201", "15.30"]),
        ("  17850\t\t20101201   15.30  ", ["17850", "20101201", "15.30"]),  # padded, mixed
        ('17850 "gift card" 15.30', ["17850", "gift card", "15.30"]),  # a quoted blank
        ('17850 "say ""hi""" 1', ["17850", 'say "hi"', "1"]),  # doubled quote
        ("", [""]),
    ],
)
def test_whitespace_splits_on_runs_of_blanks(text: str, fields: list[str]) -> None:
    assert WHITESPACE.split(text) == fields


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("a||b||c", ["a", "b", "c"]),
        ("a||||c", ["a", "", "c"]),  # an empty field between two delimiters
        ("a||b||", ["a", "b", ""]),  # a trailing empty field
        ('"x||y"||z', ["x||y", "z"]),  # the delimiter inside quotes
        ('a||"b""c"', ["a", 'b"c']),
        ('a|b||"c\nd"', ["a|b", "c\nd"]),  # a single pipe is text; a quoted line break
    ],
)
def test_a_delimiter_of_several_characters_is_literal(text: str, fields: list[str]) -> None:
    assert DOUBLE_PIPE.split(text) == fields


@pytest.mark.parametrize("text", ['a||"b"x||c', 'a||"open', ' "b"x y'])
def test_malformed_quoting_is_none(text: str) -> None:
    # Text after a closing quote (before the next delimiter), or a quote never closed.
    dialect = WHITESPACE if text.startswith(" ") else DOUBLE_PIPE
    assert dialect.split(text) is None


FIELD = st.text(alphabet='ab ,"\n|', max_size=6)


@given(st.lists(FIELD, min_size=1, max_size=5))
def test_several_characters_read_what_quoting_wrote(fields: list[str]) -> None:
    # Quote every field as a writer would; reading it back gives the fields.
    text = "||".join('"' + field.replace('"', '""') + '"' for field in fields)
    assert DOUBLE_PIPE.split(text) == fields


@given(st.lists(FIELD, min_size=1, max_size=5))
def test_one_character_is_the_csv_module(fields: list[str]) -> None:
    text = ",".join('"' + field.replace('"', '""') + '"' for field in fields)
    assert Dialect().split(text) == next(csv.reader([text], strict=True)) == fields


@pytest.mark.parametrize(
    ("delimiter", "message"),
    [
        ("   ", "delimiter: whitespace"),  # blanks only: the fix is named
        ("a\nb", "line break"),
        ('"|', "quotechar"),
        ("0123456789", "longer than 8"),
    ],
)
def test_unusable_delimiters_are_refused_with_the_fix(delimiter: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Dialect(delimiter=delimiter)


def test_joiner_rebuilds_a_record_whitespace_with_one_blank() -> None:
    assert WHITESPACE.joiner == " " and DOUBLE_PIPE.joiner == "||"
