"""How a delimited text export is written: encoding, fallback encoding, delimiter, quote.

Its own module because every reader of raw text uses it: :mod:`pipeline.sources.reading` (the
careful record-by-record reader), :mod:`pipeline.sources.csv_blocks` (the block-wise fast path)
and the scoring partitioner (:mod:`pipeline.engines.partitioning`). Splitting a record into
fields lives here, once, so they all agree.

Delimiters: one character (``,``, ``;``, tab, ``|``), a literal string of several characters
(``||``, ``::``), or the word ``whitespace``: fields separated by runs of spaces and tabs, with
leading and trailing blanks ignored (a purchase log written by ``printf``). A whitespace log
cannot hold an empty field; a field with a blank inside is quoted.
"""

from __future__ import annotations

import codecs
import csv
import re
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WHITESPACE = "whitespace"
BLANKS = " \t"


class Dialect(BaseModel):
    """How a delimited text export is written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    encoding: str = "utf-8"
    encoding_fallback: str | None = "cp1252"
    # One character, a literal string of up to 8 characters, or "whitespace" (see module doc).
    delimiter: str = Field(default=",", min_length=1, max_length=10)
    quotechar: str = Field(default='"', min_length=1, max_length=1)

    @field_validator("encoding", "encoding_fallback")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                name = codecs.lookup(value).name
            except LookupError as exc:
                raise ValueError(f"unknown encoding {value!r}") from exc
            if name.startswith(("utf-16", "utf-32")):
                # Read from their byte-order mark whatever this says (pipeline.sources.encodings)
                raise ValueError(
                    f"encoding {value!r}: UTF-16 and UTF-32 files are read by their byte-order "
                    "mark whatever the dialect says; name the encoding of the text inside "
                    "(utf-8), or convert a file without a mark to UTF-8"
                )
        return value

    @field_validator("delimiter")
    @classmethod
    def _usable_delimiter(cls, value: str) -> str:
        if value == WHITESPACE:
            return value
        if len(value) > 8:
            raise ValueError(
                f"delimiter {value!r} is longer than 8 characters "
                f"(runs of spaces or tabs: delimiter: {WHITESPACE})"
            )
        if "\n" in value or "\r" in value:
            raise ValueError("delimiter cannot hold a line break")
        if value.strip(BLANKS) == "" and len(value) > 1:
            raise ValueError(
                f"delimiter {value!r} is only blanks: use delimiter: {WHITESPACE} for runs of "
                "spaces or tabs"
            )
        return value

    @model_validator(mode="after")
    def _quote_outside_delimiter(self) -> Dialect:
        if self.delimiter != WHITESPACE and self.quotechar in self.delimiter:
            raise ValueError(f"quotechar {self.quotechar!r} is part of the delimiter")
        return self

    @property
    def whitespace(self) -> bool:
        """Whether fields are separated by runs of blanks."""
        return self.delimiter == WHITESPACE

    @property
    def joiner(self) -> str:
        """What to put between fields when rebuilding a record's text (Parquet, Excel cells)."""
        return " " if self.whitespace else self.delimiter

    def split(self, text: str) -> list[str] | None:
        """Split one record's text into fields; None when its quoting is malformed."""
        if self.whitespace:
            text = text.strip(BLANKS)
            if self.quotechar not in text:
                return _pattern(WHITESPACE).split(text)
        elif self.quotechar not in text and "\n" not in text:
            return text.split(self.delimiter)
        if len(self.delimiter) == 1:
            return _split_csv(text, self.delimiter, self.quotechar)
        return split_quoted(text, _pattern(self.delimiter), self.quotechar)


@lru_cache(maxsize=16)
def _pattern(delimiter: str) -> re.Pattern[str]:
    """Return the regular expression of a delimiter (runs of blanks for ``whitespace``)."""
    return re.compile("[ \t]+" if delimiter == WHITESPACE else re.escape(delimiter))


def _split_csv(text: str, delimiter: str, quotechar: str) -> list[str] | None:
    """One record through the csv module (strict: junk after a closing quote is an error)."""
    try:
        rows = list(csv.reader([text], delimiter=delimiter, quotechar=quotechar, strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def split_quoted(text: str, delimiter: re.Pattern[str], quote: str) -> list[str] | None:
    """Split on a pattern outside quotes, as the csv module does for one character.

    A field that starts with the quote runs to the matching quote (a doubled quote inside is one
    quote) and must be followed by a delimiter or the end; anything else is malformed (None).
    A quote inside an unquoted field is kept as text.
    """
    fields: list[str] = []
    i, end = 0, len(text)
    while True:
        if i < end and text[i] == quote:
            parts, j = [], i + 1
            while True:
                k = text.find(quote, j)
                if k < 0:
                    return None
                parts.append(text[j:k])
                if text.startswith(quote, k + 1):
                    parts.append(quote)
                    j = k + 2
                    continue
                i = k + 1
                break
            fields.append("".join(parts))
            if i == end:
                return fields
            match = delimiter.match(text, i)
            if match is None:
                return None
            i = match.end()
            if i == end:
                fields.append("")
                return fields
            continue
        match = delimiter.search(text, i)
        if match is None:
            fields.append(text[i:])
            return fields
        fields.append(text[i : match.start()])
        i = match.end()
        if i == end:
            fields.append("")
            return fields
