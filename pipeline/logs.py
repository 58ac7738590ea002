"""Logging for the CLI: one stderr handler, and a warning repeated in a run shown once.

A stage that runs the same step per partition or per file (scoring's map, a folder of
exports) would otherwise print the same warning once per partition. :class:`RepeatFilter`
lets the first one through and counts the rest; :func:`report_repeats`, called when the
command ends, says how many times each repeated warning was logged. Worker processes send
their records to the parent (:func:`worker_queue`, :func:`log_to_queue`), so a warning raised
in eight partitions is counted once, in one place.

``--log-format json`` (or ``LOYALTY_LOG_FORMAT=json``) writes every record, and the error line
a failed run ends with, as one JSON object a line (:class:`JsonFormatter`), for a log collector.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
Key = tuple[int, str, str]


class RepeatFilter(logging.Filter):
    """Pass a warning (or worse) the first time its text is logged; count the repeats."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[Key] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Return whether the record is shown: INFO and below always, warnings once."""
        if record.levelno < logging.WARNING:
            return True
        key = (record.levelno, record.name, record.getMessage())
        self.counts[key] += 1
        return self.counts[key] == 1

    def repeats(self) -> list[tuple[Key, int]]:
        """Return the warnings logged more than once, with their counts, in first-seen order."""
        return [(key, count) for key, count in self.counts.items() if count > 1]


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one line of JSON (a traceback, if any, under ``exception``)."""
        entry = _entry(record.created, record.levelname, record.name, record.getMessage())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _entry(created: float, level: str, logger: str, message: str) -> dict[str, object]:
    when = dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds")
    return {
        "time": when.replace("+00:00", "Z"),
        "level": level,
        "logger": logger,
        "message": message,
    }


# pyspark (4.3, the latest) supports pandas >= 2.2 and warns, a FutureWarning on every use of its
# pandas layer, once pandas is 3: "PySpark does not yet fully support pandas >= 3.0.0". This
# project requires pandas 3, so pinning pandas < 3 in the spark extra is no choice, and the Spark
# engine's output is checked equal, row for row, to the local engine's
# (tests/integration/test_spark_engine.py): the notice is noise, repeated by every Python worker
# of every run. This one notice is silenced, and only it: in the driver (engines/spark.py),
# in the executors' Python workers (their PYTHONWARNINGS) and around pandera's import, which
# loads pyspark.pandas whenever pyspark is installed (schemas.py).
PYSPARK_PANDAS_NOTICE = "PySpark does not yet fully support pandas"
#: The executors' filter, as ``PYTHONWARNINGS`` spells it (``action:message:category``).
PYSPARK_PANDAS_NOTICE_FILTER = f"ignore:{PYSPARK_PANDAS_NOTICE}:FutureWarning"


@contextmanager
def without_pyspark_pandas_notice() -> Iterator[None]:
    """Run the block with pyspark's pandas-3 FutureWarning silenced; every other warning shows."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PYSPARK_PANDAS_NOTICE, category=FutureWarning)
        yield


_FILTER: RepeatFilter | None = None
_FORMAT = "text"


def configure(verbose: bool = False, log_format: str = "text") -> None:
    """Log to stderr at INFO (DEBUG when verbose), repeats of a warning shown once.

    ``log_format`` is ``text`` (``time level logger: message``) or ``json``
    (:class:`JsonFormatter`); it also shapes :func:`error_line`. Like
    :func:`logging.basicConfig`, adds no handler when the root logger already has one (an
    embedding application's, or pytest's).
    """
    global _FILTER, _FORMAT
    _FORMAT = log_format
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(FORMAT))
    _FILTER = RepeatFilter()
    handler.addFilter(_FILTER)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def writes_json() -> bool:
    """Return whether this run logs JSON lines (``--log-format json``)."""
    return _FORMAT == "json"


def error_line(message: str, exit_code: int) -> str:
    """Return the line a failed run ends with: ``error: message``, or a JSON ERROR object.

    The JSON object carries the exit code too, so a log collector need not read the status.
    """
    if not writes_json():
        return f"error: {message}"
    entry = _entry(dt.datetime.now(dt.UTC).timestamp(), "ERROR", "pipeline", message)
    return json.dumps({**entry, "exit_code": exit_code})


def report_repeats() -> None:
    """Say once how many times each repeated warning was logged (then forget the counts)."""
    if _FILTER is None:
        return
    repeats = _FILTER.repeats()
    _FILTER.counts.clear()
    log = logging.getLogger("pipeline")
    for (level, _, message), count in repeats:
        log.log(level, "logged %d times in this run (shown once): %s", count, message)


@contextmanager
def worker_queue(context: Any) -> Iterator[Any]:
    """Yield a queue that worker processes log into; the parent's handlers print it."""
    queue = context.Queue()
    root = logging.getLogger()
    listener = logging.handlers.QueueListener(queue, *root.handlers, respect_handler_level=True)
    listener.start()
    try:
        yield queue
    finally:
        listener.stop()


def log_to_queue(queue: Any, level: int) -> None:
    """In a worker process: send every record to the parent's queue (pool initializer)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.handlers.QueueHandler(queue))
    root.setLevel(level)
