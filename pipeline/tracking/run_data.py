"""What a training run records, computed without MLflow.

Flattened params, numeric metrics, data checksums from ``dvc.lock``, the git commit and a
JSON-friendly input example. MLflow-free at import.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from typing import Any

import pandas as pd


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
