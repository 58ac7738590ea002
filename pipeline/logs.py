"""Logging for the CLI: one stderr handler, and a warning repeated in a run shown once.

A stage that runs the same step per partition or per file (scoring's map, a folder of
exports) would otherwise print the same warning once per partition. :class:`RepeatFilter`
lets the first one through and counts the rest; :func:`report_repeats`, called when the
command ends, says how many times each repeated warning was logged. Worker processes send
their records to the parent (:func:`worker_queue`, :func:`log_to_queue`), so a warning raised
in eight partitions is counted once, in one place.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
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


_FILTER: RepeatFilter | None = None


def configure(verbose: bool = False) -> None:
    """Log to stderr at INFO (DEBUG when verbose), repeats of a warning shown once.

    Like :func:`logging.basicConfig`, does nothing when the root logger already has handlers
    (an embedding application's, or pytest's).
    """
    global _FILTER
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    _FILTER = RepeatFilter()
    handler.addFilter(_FILTER)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


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
