"""What :mod:`pipeline.tracking` needs that does not talk to MLflow.

Kept apart so that ``tracking.py`` holds only MLflow calls (it stays the only module that
imports :mod:`mlflow`): where the store is and whether it answers, registry names and model
URIs, and what a run records (flattened params, numeric metrics, data checksums from
``dvc.lock``, the git commit, a JSON-friendly input example).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import MlflowParams
from pipeline.errors import TrackingError

REACHABILITY_TIMEOUT_S = 3.0
SQLITE_BUSY_TIMEOUT_S = 30.0


def registered_model_name(target: str) -> str:
    """Registry name of a target's model: ``loyalty-churn``, ``loyalty-repurchase``."""
    return f"loyalty-{target}"


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


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts to ``a.b.c`` keys (lists become their string form)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Return the numeric leaves of the metrics dict, flattened (``model.roc_auc``, ...)."""
    return {
        k: float(v)
        for k, v in flatten(metrics).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def data_checksums(dvc_lock: Mapping[str, Any] | None) -> dict[str, str]:
    """md5 of the feature panel (and other ``features`` outputs) recorded in ``dvc.lock``."""
    if not dvc_lock:
        return {}
    stage = (dvc_lock.get("stages") or {}).get("features") or {}
    return {
        f"data.{out['path']}.md5": str(out["md5"])
        for out in stage.get("outs", [])
        if isinstance(out, Mapping) and "path" in out and "md5" in out
    }


def git_commit() -> str:
    """Return the checked-out commit (``git rev-parse HEAD``), or ``unknown``."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """Split ``models:/name@alias`` or ``models:/name/version`` into its parts."""
    body = uri.removeprefix("models:/")
    if "@" in body:
        name, alias = body.split("@", 1)
        return name, alias, None
    name, _, version = body.partition("/")
    return name, None, version or None


def input_example(frame: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    """Return a few feature rows with categories as plain strings (JSON-serialisable)."""
    head = frame.head(rows)
    return pd.DataFrame(
        {
            c: head[c].astype(object).where(head[c].notna(), None)
            if isinstance(head[c].dtype, pd.CategoricalDtype)
            else head[c]
            for c in head.columns
        }
    )
