"""How a delimited text export is written: encoding, fallback encoding, delimiter, quote.

Its own module because both readers use it: :mod:`pipeline.sources.reading` (the careful
record-by-record reader) and :mod:`pipeline.sources.csv_blocks` (the block-wise fast path).
"""

from __future__ import annotations

import codecs

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Dialect(BaseModel):
    """How a delimited text export is written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    encoding: str = "utf-8"
    encoding_fallback: str | None = "cp1252"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quotechar: str = Field(default='"', min_length=1, max_length=1)

    @field_validator("encoding", "encoding_fallback")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError as exc:
                raise ValueError(f"unknown encoding {value!r}") from exc
        return value
