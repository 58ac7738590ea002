"""What a column's sampled values look like: numbers, timestamps (and their format), ids, text.

Numbers and timestamps are tried with the cleaning stage's own parsers
(:func:`pipeline.cleaning.parsing.parse_number` and
:func:`~pipeline.cleaning.parsing.parse_timestamp`), so "98% parse as %d/%m/%Y" means 98% of
those rows would pass cleaning under that format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.cleaning.parsing import blank, parse_number, parse_timestamp
from pipeline.sources.inspect.guess import Guess, confidence_of

DATES = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d/%m/%y",
    "%m/%d/%y",
    "%d.%m.%y",
    "%Y%m%d",
)
TIMES = (
    "",
    " %H:%M",
    " %H:%M:%S",
    " %H:%M:%S.%f",
    "T%H:%M",
    "T%H:%M:%S",
    "T%H:%M:%S.%f",
    " %I:%M %p",
    " %I:%M:%S %p",
)
ZONES = ("", "%z")
# Pairs that differ only in day/month order: told apart by a field above 12, or by time order.
SWAPPED = {"%d": "%m", "%m": "%d"}
PREFILTER = 200  # values that pick the candidate formats before all are checked
YEARS = (1970, 2100)  # a plausible timestamp (an 8-digit id is not a %Y%m%d date)
# The shape of a timestamp: date separator, time separator, AM/PM, UTC offset.
_SHAPE = re.compile(
    r"^\d{1,4}(?P<sep>[-/.]?)\d{1,2}(?P=sep)\d{1,4}"
    r"(?:(?P<tsep>[ T])\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?P<ampm> ?[AaPp][Mm])?)?"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?$"
)
_ID_SHAPE = re.compile(r"^[\w.\-/#]{1,40}$")


@dataclass(frozen=True)
class Profile:
    """What the sampled values of one column look like (shares are of non-blank values)."""

    name: str
    values: pd.Series  # the non-blank sampled values, stripped, in file order
    rows: int  # sampled rows, blanks included
    distinct: int
    numeric: float  # parse as numbers under the file's decimal mark
    integer: float
    negative: float
    fraction: float  # have a fractional part (prices, amounts)
    idlike: float  # one token of word characters (ids, codes)
    letters: float  # hold a letter
    blanks_inside: float  # hold a blank (free text)
    timestamp: Guess[str] | None
    numbers: pd.Series  # parsed numbers (NaN where not a number)

    @property
    def filled(self) -> int:
        """Non-blank sampled values."""
        return len(self.values)

    @property
    def repeats(self) -> float:
        """Sampled values per distinct value (1.0 = all distinct)."""
        return self.filled / self.distinct if self.distinct else 0.0


def sniff_decimal(columns: dict[str, pd.Series]) -> Guess[str]:
    """``,`` when values like ``12,50`` outnumber values like ``12.50`` (else ``.``)."""
    comma = point = grouped = 0
    where = ""
    for name, text in columns.items():
        stripped = text.dropna().str.strip()
        n_comma = int(stripped.str.fullmatch(r"[+-]?\d+,\d+").sum())
        point += int(stripped.str.fullmatch(r"[+-]?\d+\.\d+").sum())
        grouped += int(stripped.str.fullmatch(r"[+-]?\d{1,3}(?:[.,]\d{3})+[.,]\d+").sum())
        if n_comma > comma:
            where = name
        comma += n_comma
    note = ""
    if grouped:
        note = (
            f"; {grouped:,} values with thousands separators (1.234,50): cleaning does not "
            "read those (non_numeric_*)"
        )
    if comma > point:
        evidence = f"{comma:,} values like 12,50 (e.g. in {where!r}), {point:,} like 12.50"
        return Guess(",", confidence_of(comma / (comma + point)), evidence + note)
    if point:
        evidence = f"{point:,} values like 12.50, {comma:,} like 12,50"
        return Guess(".", confidence_of(point / (comma + point)), evidence + note)
    return Guess(".", "low", "no number with a fractional part in the sample; the usual mark")


def _plausible(stamps: pd.Series) -> pd.Series:
    years = stamps.dt.year
    return (years >= YEARS[0]) & (years <= YEARS[1])


def parse_share(values: pd.Series, fmt: str) -> tuple[int, pd.Series]:
    """How many values parse under ``fmt`` into a plausible year; the parsed stamps (UTC)."""
    stamps, _ = parse_timestamp(values, fmt, "UTC")
    ok = stamps.notna() & _plausible(stamps)
    return int(ok.sum()), stamps.where(ok)


def sniff_timestamp(values: pd.Series) -> Guess[str] | None:
    """Guess the strptime format most sampled values parse under (None: not a timestamp).

    Day-first and month-first formats are told apart by the data: a first number above 12 is
    a day; when every value fits both, by which reading keeps the rows in time order.
    """
    formats = candidate_formats(values.iloc[:PREFILTER])
    if not formats:
        return None
    head = values.iloc[:PREFILTER]
    shares = [(parse_share(head, fmt)[0], fmt) for fmt in formats]
    candidates = [fmt for count, fmt in shares if count >= 0.9 * len(head)]
    if not candidates:
        return None
    scored = [(parse_share(values, fmt)[0], -i, fmt) for i, fmt in enumerate(candidates)]
    count, _, best = max(scored)
    if count < 0.9 * len(values):
        return None
    total = len(values)
    evidence = f"{count:,} of {total:,} sampled values parse as {best}"
    confidence = confidence_of(count / total)
    swapped = _swap(best)
    if swapped is not None:
        rival = parse_share(values, swapped)[0]
        if rival < count:
            evidence += (
                f"; {count - rival:,} of them have a day above 12 where {swapped} wants a "
                "month, so not that order"
            )
        else:
            order_best, order_rival = _in_order(values, best), _in_order(values, swapped)
            # an export sorted by time reads in order one way only (a clear majority)
            if max(order_best, order_rival) >= 0.9 and abs(order_best - order_rival) >= 0.1:
                if order_rival > order_best:
                    best, swapped = swapped, best
                    order_best, order_rival = order_rival, order_best
                evidence = (
                    f"{count:,} of {total:,} sampled values parse as {best} and as {swapped} "
                    f"(no day above 12); {order_best:.0%} of consecutive rows are in time order "
                    f"read as {best}, {order_rival:.0%} as {swapped}"
                )
                confidence = "medium"
            else:
                evidence = (
                    f"{count:,} of {total:,} sampled values parse as {best} and as {swapped} "
                    "(no day above 12, no time order to tell): CHECK the day/month order"
                )
                confidence = "low"
    return Guess(best, confidence, evidence)


def candidate_formats(values: pd.Series) -> list[str]:
    """Return the formats of :data:`DATES` x :data:`TIMES` x :data:`ZONES` that fit the values.

    The shape (date separator, time separator, AM/PM, offset) of most values picks the
    candidates, so that only a few formats are tried on a column; [] when under 90% of the
    values look like timestamps at all.
    """
    if values.empty:
        return []
    shapes = values.str.extract(_SHAPE)
    matched = values.str.fullmatch(_SHAPE).fillna(False)
    if matched.mean() < 0.9:
        return []
    key = (
        shapes[matched]
        .fillna("")
        .assign(ampm=lambda f: f["ampm"] != "", zone=lambda f: f["zone"] != "")
        .value_counts()
        .index[0]
    )
    sep, tsep, ampm, zone = key
    out = []
    for date in DATES:
        if re.sub(r"%[a-zA-Z]", "", date)[:1] != sep:
            continue
        for time in TIMES:
            if (time[:1] if time else "") != tsep or ("%p" in time) != ampm:
                continue
            for offset in ZONES:
                if (offset != "") == zone:
                    out.append(date + time + offset)
    return out


def _swap(fmt: str) -> str | None:
    """Return the format with day and month swapped; None when it has no such pair."""
    if "%d" not in fmt or "%m" not in fmt or fmt.startswith("%Y"):
        return None
    return re.sub(r"%[dm]", lambda m: SWAPPED[m.group(0)], fmt)


def _in_order(values: pd.Series, fmt: str) -> float:
    """Share of consecutive parsed values that do not go back in time."""
    _, stamps = parse_share(values, fmt)
    stamps = stamps.dropna()
    if len(stamps) < 3:
        return 0.0
    steps = np.diff(stamps.dt.tz_convert(None).to_numpy().astype(np.int64))
    return float((steps >= 0).mean())


def profile_column(name: str, text: pd.Series, decimal: str) -> Profile:
    """Profile one sampled column under the file's decimal mark."""
    stripped = text.astype("string").str.strip()
    values = stripped[~blank(stripped)].reset_index(drop=True)
    n = max(len(values), 1)
    numbers, bad = parse_number(values, decimal)
    is_number = numbers.notna() & ~bad
    finite = numbers.where(is_number)
    return Profile(
        name=name,
        values=values,
        rows=len(text),
        distinct=int(values.nunique()),
        numeric=float(is_number.sum() / n),
        integer=float((is_number & (finite == finite.round())).sum() / n),
        negative=float((finite < 0).sum() / n),
        fraction=float((is_number & (finite != finite.round())).sum() / n),
        idlike=float(values.str.fullmatch(_ID_SHAPE).sum() / n),
        letters=float(values.str.contains(r"[^\W\d_]", regex=True).sum() / n),
        blanks_inside=float(values.str.contains(" ", regex=False).sum() / n),
        timestamp=sniff_timestamp(values),
        numbers=finite,
    )


def describe(profile: Profile) -> str:
    """Describe a column's values in a few words (for evidence text)."""
    n = profile.filled
    if profile.timestamp is not None:
        return f"timestamps ({profile.timestamp.value})"
    if profile.numeric >= 0.98:
        kind = "integers" if profile.fraction == 0 else "numbers"
        return f"{kind}, {profile.distinct:,} distinct in {n:,}"
    return f"text, {profile.distinct:,} distinct in {n:,}"
