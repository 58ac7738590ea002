"""Dates people write: on the command line and in params, ISO 8601 and nothing else.

``01/10/2024`` is the 1st of October to one reader and the 10th of January to another, and
``pd.Timestamp`` picks one silently. So every date option and param goes through here: a date
(``2024-10-01``, midnight UTC) or a date and time with its zone (``2024-10-01T06:00:00Z``,
``2024-10-01 06:00+02:00``). A time without a zone is refused too: it would mean the clock of
whichever machine runs the job.
"""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd

_DATE = r"\d{4}-\d{2}-\d{2}"
_TIME = r"\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?"
_ZONE = r"(?:Z|[+-]\d{2}:?\d{2})"
ISO_DATE = re.compile(rf"{_DATE}")
ISO_DATETIME = re.compile(rf"{_DATE}[T ]{_TIME}{_ZONE}")

#: What a refused value is told to look like.
EXPECTED = "YYYY-MM-DD, or YYYY-MM-DDTHH:MM:SS with a zone, Z or +HH:MM"


class NotIsoDate(ValueError):
    """A value that is not an ISO 8601 date, or date and time with a zone."""

    def __init__(self, value: object) -> None:
        super().__init__(f"not an ISO 8601 date: {value!r} (write {EXPECTED})")


def iso_instant(value: object) -> pd.Timestamp:
    """Return ``value`` as a UTC timestamp; a date means its midnight UTC.

    Accepts the ISO strings above and the ``date`` / aware ``datetime`` objects YAML makes of
    them; anything else (a number, ``01/10/2024``, ``2024-13-45``, a naive time) is
    :class:`NotIsoDate`.
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise NotIsoDate(value.isoformat())
        stamp = pd.Timestamp(value)
    elif isinstance(value, dt.date):
        stamp = pd.Timestamp(value)
    elif isinstance(value, str) and (
        ISO_DATE.fullmatch(value.strip()) or ISO_DATETIME.fullmatch(value.strip())
    ):
        try:
            stamp = pd.Timestamp(dt.datetime.fromisoformat(value.strip()))
        except ValueError:
            raise NotIsoDate(value) from None  # the shape is right, the calendar is not
    else:
        raise NotIsoDate(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def iso_date(value: object) -> dt.date:
    """Return ``value`` as a calendar date: ``YYYY-MM-DD`` or a YAML date, nothing else."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and ISO_DATE.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise NotIsoDate(value) from None
    raise NotIsoDate(value)
