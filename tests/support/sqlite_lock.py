"""Hold a SQLite database locked, as another writer would (``BEGIN EXCLUSIVE``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(db: Path, journal_mode: str = "wal") -> Iterator[None]:
    """Hold ``db`` with ``BEGIN EXCLUSIVE`` from another connection until the block ends.

    In WAL mode (the store's) readers still read and only writers wait; with
    ``journal_mode="delete"`` (a store another tool left in rollback-journal mode) readers wait
    too. SQLite serialises connections of one process as it does processes.
    """
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute(f"PRAGMA journal_mode={journal_mode}")
        con.execute("BEGIN EXCLUSIVE")
        if journal_mode != "wal":  # the exclusive lock of a rollback journal is taken on write
            con.execute("CREATE TABLE IF NOT EXISTS _held (x)")
            con.execute("INSERT INTO _held VALUES (1)")
        yield
    finally:
        con.rollback()
        con.close()
