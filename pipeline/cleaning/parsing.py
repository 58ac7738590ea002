"""Vectorised, strict parsers of raw string columns: each returns values and a 'bad' mask."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
#: A numeric id written as a float (``17850.0``, ``17850.``): the digits before the point.
FLOAT_ID = r"^(\d+)\.0*$"
_FLOAT_ID = re.compile(FLOAT_ID)


def blank(text: pd.Series) -> pd.Series:
    """Mask of missing or whitespace-only cells."""
    return text.isna() | (text.str.strip() == "")


def fold_id(raw: str) -> str:
    """Fold the Unicode spellings of one id to one: ``"１７８５０"``, ``"١٧٨٥٠"`` -> ``"17850"``.

    NFKC (fullwidth letters and digits, ideographic space), then format characters (category
    Cf: zero-width space U+200B, BOM U+FEFF, direction marks U+200E/U+200F, soft hyphen)
    dropped, then every Unicode decimal digit (category Nd: Arabic-Indic, Devanagari, ...,
    which NFKC leaves alone) written as its ASCII digit. An ASCII id is returned unchanged.
    """
    if raw.isascii():
        return raw
    chars = []
    for char in unicodedata.normalize("NFKC", raw):
        if char.isascii():
            chars.append(char)
        elif char.isdecimal():
            chars.append(str(unicodedata.decimal(char)))
        elif unicodedata.category(char) != "Cf":
            chars.append(char)
    return "".join(chars)


def fold_ids(text: pd.Series) -> tuple[pd.Series, int]:
    """Vectorised :func:`fold_id`; return the folded ids and how many values it changed.

    Only non-ASCII values take the slow path, once per distinct value: an all-ASCII column
    costs one Arrow ``is_ascii`` pass.
    """
    text = text.astype("string")
    special = ~text.str.isascii().fillna(True).astype(bool)
    if not special.any():
        return text, 0
    others = text[special]
    folded = others.map({value: fold_id(value) for value in others.unique()}).astype("string")
    changed = int((folded != others).sum())
    return text.mask(special, folded), changed


def tidy_ids(text: pd.Series, nulls: tuple[str, ...]) -> pd.Series:
    """Strip, ``17850.0`` -> ``17850``, null spellings -> <NA> (on ids already folded)."""
    ids = text.astype("string").str.strip()
    ids = ids.str.replace(FLOAT_ID, r"\1", regex=True)
    return ids.mask(ids.str.lower().isin(nulls) | ids.isna(), pd.NA)


def normalise_ids(text: pd.Series, nulls: tuple[str, ...]) -> pd.Series:
    """Normalise customer ids once: Unicode folded (:func:`fold_id`), then :func:`tidy_ids`."""
    return tidy_ids(fold_ids(text)[0], nulls)


def normalise_id(raw: str) -> str:
    """Scalar :func:`normalise_ids` of one id, null spellings aside: ``" 17850.0"`` -> ``17850``.

    For streaming code that sees one raw id at a time (the scoring split); a unit test checks
    that both agree.
    """
    text = fold_id(raw).strip()
    match = _FLOAT_ID.match(text)
    return match.group(1) if match else text


def parse_number(text: pd.Series, decimal: str = ".") -> tuple[pd.Series, pd.Series]:
    """Parse plain numbers (no thousands separators, no units); return (float64, bad mask).

    Blank cells are NaN and not bad: callers decide whether a value is required.
    """
    stripped = text.astype("string").str.strip()
    empty = blank(stripped)
    if decimal == ",":
        has_dot = stripped.str.contains(".", regex=False).fillna(False)
        candidate = stripped.str.replace(",", ".", regex=False).mask(has_dot, "x")
    else:
        candidate = stripped
    valid = candidate.str.fullmatch(NUMBER).fillna(False)
    values = pd.to_numeric(candidate.where(valid & ~empty), errors="coerce").astype("float64")
    bad = (~valid & ~empty).astype(bool)
    return values, bad


def parse_timestamp(text: pd.Series, fmt: str, timezone: str) -> tuple[pd.Series, pd.Series]:
    """Parse with an explicit format, localise to ``timezone`` by the DST rule, convert to UTC.

    Returns (``datetime64[us, UTC]``, bad mask); blank cells are NaT and not bad. A format
    with ``%z`` reads each value's own UTC offset (an export that spans a DST change mixes
    ``+01:00`` and ``+02:00``); ``timezone`` then does not apply.
    """
    stripped = text.astype("string").str.strip()
    empty = blank(stripped)
    with_offset = "%z" in fmt
    parsed = pd.to_datetime(stripped.where(~empty), format=fmt, errors="coerce", utc=with_offset)
    bad = (parsed.isna() & ~empty).astype(bool)
    if parsed.dt.tz is None:
        parsed = parsed.dt.tz_localize(
            timezone, ambiguous=np.ones(len(parsed), dtype=bool), nonexistent="shift_forward"
        )
    return parsed.dt.tz_convert("UTC").dt.as_unit("us"), bad


def parse_bool(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse true/false spellings; return (pandas ``boolean``, bad mask); blank is <NA>."""
    lowered = text.astype("string").str.strip().str.lower()
    empty = blank(lowered)
    is_true = lowered.isin(TRUE_WORDS).fillna(False)
    is_false = lowered.isin(FALSE_WORDS).fillna(False)
    values = pd.Series(pd.NA, index=text.index, dtype="boolean")
    values = values.mask(is_true, True).mask(is_false, False)
    bad = (~is_true & ~is_false & ~empty).astype(bool)
    return values, bad
