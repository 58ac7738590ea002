"""Where the tracking store is, whether it answers, and how MLflow's client is set up to use it.

MLflow-free at import (scoring workers and the CLI import it before deciding to track): the
store URI (``MLFLOW_TRACKING_URI`` over ``mlflow.tracking_uri``), a reachability check that
fails in seconds rather than in MLflow's retry loop, and the environment that bounds MLflow's
HTTP retries and keeps its telemetry off.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

from pipeline.config import MlflowParams
from pipeline.errors import TrackingError

REACHABILITY_TIMEOUT_S = 3.0
SQLITE_BUSY_TIMEOUT_S = 30.0


def resolve_tracking_uri(params: MlflowParams) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else ``mlflow.tracking_uri`` from params."""
    return os.environ.get("MLFLOW_TRACKING_URI") or params.tracking_uri


def check_reachable(uri: str, timeout: float = REACHABILITY_TIMEOUT_S) -> None:
    """Fail fast (seconds, not MLflow's retry loop) when the tracking store cannot be used.

    HTTP(S): ``GET <uri>/health`` must answer 200. SQLite: the file is put in WAL mode so that
    concurrent runs (the two ``train@`` stages) read while one writes; MLflow itself sets a
    busy timeout on each session.
    """
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as reply:
                if reply.status != 200:
                    raise TrackingError(f"tracking server unreachable: {uri}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TrackingError(f"tracking server unreachable: {uri}") from exc
    elif uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S) as con:
                con.execute("PRAGMA journal_mode=WAL")
            con.close()
        except sqlite3.Error as exc:
            raise TrackingError(f"tracking server unreachable: {uri} ({exc})") from exc


def configure_environment() -> None:
    """Bound MLflow's HTTP retries and keep its usage telemetry off (no calls to the internet)."""
    # A server that dies mid-run must not hang the stage in MLflow's long retry loop.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
