"""Where the tracking store is, whether it answers, and how MLflow's client is set up to use it.

MLflow-free at import (scoring workers and the CLI import it before deciding to track): the
store URI (``MLFLOW_TRACKING_URI`` over ``mlflow.tracking_uri``; a relative SQLite path is the
DVC project's when DVC runs the command), a reachability check that
fails in seconds rather than in MLflow's retry loop (and waits a bounded time,
``mlflow.lock_timeout_s``, for a SQLite store another writer holds locked), the one place that
turns a failure of the store into its one-line :class:`TrackingError`, and the environment that
bounds MLflow's HTTP retries and keeps its telemetry off.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

from pipeline.config import MlflowParams
from pipeline.errors import TrackingError

REACHABILITY_TIMEOUT_S = 3.0
#: What SQLite says (through sqlite3, SQLAlchemy and MlflowException alike) when it gave up
#: waiting for another connection's lock.
_LOCKED = ("database is locked", "database table is locked", "database schema is locked")
#: The DVC project's root, set by DVC for every stage it runs; under ``dvc exp run --temp`` or a
#: queued experiment the stage runs in a copy under ``.dvc/tmp/exps/`` and this still names the
#: project (``dvc/repo/experiments/queue/base.py``).
DVC_ROOT_ENV = "DVC_ROOT"
_SQLITE = "sqlite:///"


def resolve_tracking_uri(params: MlflowParams) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else ``mlflow.tracking_uri`` from params.

    A relative SQLite path (``sqlite:///mlflow.db``) is taken from the DVC project's root when
    DVC runs the command: a ``--temp`` or queued experiment would otherwise log its runs and
    versions into a store in its temporary copy, deleted with it.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI") or params.tracking_uri
    return project_store(uri, os.environ.get(DVC_ROOT_ENV))


def project_store(uri: str, dvc_root: str | None) -> str:
    """``uri`` with a relative SQLite path put under ``dvc_root``; any other URI as it is."""
    if not dvc_root or not uri.startswith(_SQLITE):
        return uri
    path = uri.removeprefix(_SQLITE)
    if path.startswith("/") or path.startswith(":memory:") or not path:
        return uri  # sqlite:////abs/path.db is absolute already
    return _SQLITE + str(Path(dvc_root) / path)


def check_reachable(
    uri: str,
    lock_timeout_s: float | None = None,
    *,
    write: bool = False,
    timeout: float = REACHABILITY_TIMEOUT_S,
) -> None:
    """Fail fast (seconds, not MLflow's retry loop) when the tracking store cannot be used.

    HTTP(S): ``GET <uri>/health`` must answer 200. SQLite: the file is put in WAL mode so that
    concurrent runs (the two ``train@`` stages) read while one writes, then read (or, with
    ``write``, the write lock is taken and released at once), waiting at most
    ``lock_timeout_s`` (default ``mlflow.lock_timeout_s``) for another writer's lock: a store
    still locked then is the one line "tracking store URI is locked by another writer".
    """
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as reply:
                if reply.status != 200:
                    raise TrackingError(f"tracking server unreachable: {uri}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TrackingError(f"tracking server unreachable: {uri}") from exc
    elif uri.startswith("sqlite:///"):
        wait = MlflowParams().lock_timeout_s if lock_timeout_s is None else lock_timeout_s
        path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(path, timeout=wait, isolation_level=None)
            try:
                con.execute("PRAGMA journal_mode=WAL")
                if write:  # WAL lets readers past a writer; only a writer waits for the lock
                    con.execute("BEGIN IMMEDIATE")
                    con.execute("ROLLBACK")
                else:
                    con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                con.close()
        except sqlite3.Error as exc:
            if is_locked(exc):
                raise TrackingError(
                    f"tracking store {uri} is locked by another writer "
                    f"(waited {wait:g} s; mlflow.lock_timeout_s)"
                ) from exc
            raise TrackingError(f"tracking server unreachable: {uri} ({exc})") from exc
        except OSError as exc:
            raise TrackingError(f"tracking server unreachable: {uri} ({exc})") from exc


def is_locked(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from, is SQLite giving up on a lock."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(text in str(current) for text in _LOCKED):
            return True
        current = current.__cause__ or current.__context__
    return False


def tracking_failure(exc: BaseException, uri: str) -> TrackingError:
    """Return the one-line error of a failed MLflow call on the store at ``uri``.

    The one mapping of store failures: a :class:`TrackingError` as raised; SQLite's lock
    (``sqlite3`` / SQLAlchemy ``OperationalError`` "database is locked", or MLflow's
    ``MlflowException`` wrapping it) "tracking store URI is locked by another writer"; anything
    else MLflow's first line, never its traceback or SQL text.
    """
    if isinstance(exc, TrackingError):
        return exc
    if is_locked(exc):
        # a lock taken after check_reachable passed: MLflow waited its own busy timeout (20 s
        # a statement, set by mlflow.store.db.utils, not by us)
        return TrackingError(
            f"tracking store {uri} is locked by another writer (MLflow gave up waiting for it)"
        )
    text = str(exc).strip()
    return TrackingError(f"MLflow failed at {uri}: {text.splitlines()[0] if text else type(exc)}")


def configure_environment() -> None:
    """Bound MLflow's HTTP retries and keep its usage telemetry off (no calls to the internet)."""
    # A server that dies mid-run must not hang the stage in MLflow's long retry loop.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # MLflow logs a failed SQLite statement with its traceback and SQL before raising it; the
    # caller reports it in one line (tracking_failure), so the traceback is left out.
    store_logger = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _NoTraceback) for f in store_logger.filters):
        store_logger.addFilter(_NoTraceback())


class _NoTraceback(logging.Filter):
    """Drop MLflow's logged traceback of a store error (the error itself is raised)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass every record but those that carry a traceback."""
        return not record.exc_info
