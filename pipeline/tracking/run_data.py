"""What a run records, computed without MLflow.

Its name (``<stage>-<target>``), flattened params, numeric metrics, data checksums from
``dvc.lock``, where it comes from (git commit and whether the tree was dirty, the DVC experiment
and stage that ran it) and a JSON-friendly input example. MLflow-free at import.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


#: Set by ``dvc exp run`` for every stage command it runs, whether the experiment runs in the
#: workspace, ``--temp`` or a queue (``dvc/repo/experiments/queue/base.py``: a random name such
#: as ``motor-spit`` when ``-n`` is not given), never by ``dvc repro``; documented at
#: https://dvc.org/doc/user-guide/env.
DVC_EXPERIMENT_ENV = "DVC_EXP_NAME"
DVC_BASELINE_ENV = "DVC_EXP_BASELINE_REV"
#: Set by DVC for every stage it runs, ``dvc repro`` and ``dvc exp run`` alike (``train@churn``).
DVC_STAGE_ENV = "DVC_STAGE"
#: DVC rewrites its lock file during every run; it is not part of the code a run comes from.
DVC_LOCK_FILE = "dvc.lock"
_GIT_TIMEOUT_S = 5


def run_name(stage: str, target: str) -> str:
    """Name of the MLflow run of a stage for one target: ``train-churn``, ``report-value``."""
    return f"{stage}-{target}"


@dataclass(frozen=True)
class DvcContext:
    """The DVC command that runs this process, read from the variables DVC sets."""

    experiment: str | None  # the experiment's name under ``dvc exp run``, else None
    baseline_rev: str | None  # the commit the experiment starts from
    stage: str | None  # the stage being run (``train@churn``), under any DVC command

    def tags(self) -> dict[str, str]:
        """``dvc.experiment``, ``dvc.baseline_rev``, ``dvc.stage``: those that are known."""
        known = {
            "dvc.experiment": self.experiment,
            "dvc.baseline_rev": self.baseline_rev,
            "dvc.stage": self.stage,
        }
        return {k: v for k, v in known.items() if v}


def dvc_context(environ: Mapping[str, str]) -> DvcContext:
    """Whether ``environ`` is that of a ``dvc exp run`` (its experiment name) and which stage.

    Either experiment variable marks an experiment (DVC sets both); one without a name is
    called after its baseline commit.
    """
    name = environ.get(DVC_EXPERIMENT_ENV) or None
    baseline = environ.get(DVC_BASELINE_ENV) or None
    if name is None and baseline is not None:
        name = f"unnamed ({baseline[:7]})"
    return DvcContext(experiment=name, baseline_rev=baseline, stage=environ.get(DVC_STAGE_ENV))


@dataclass(frozen=True)
class GitState:
    """The checked-out commit and whether tracked files differ from it (``unknown`` without git)."""

    commit: str
    dirty: str  # "true", "false" or "unknown"

    def tags(self) -> dict[str, str]:
        """``git.commit`` and ``git.dirty``."""
        return {"git.commit": self.commit, "git.dirty": self.dirty}


def git_state(ignored: Iterable[str] = ()) -> GitState:
    """Read the commit and dirtiness of the repository around the current folder, never failing.

    Dirty means a tracked file differs from the commit (untracked files do not count), except
    the ``ignored`` paths: the outputs DVC writes (:func:`dvc_outputs`) and its lock file, which
    a run rewrites itself. Git's optional index refresh is off, so that two stages running at
    once never contend for ``index.lock``. No git, not a repository, or a git that hangs:
    ``unknown``.
    """
    commit = _git("rev-parse", "HEAD")
    if commit is None or not commit.strip():
        return GitState("unknown", "unknown")
    excluded = [f":(exclude){path}" for path in sorted({DVC_LOCK_FILE, *ignored})]
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ":/", *excluded)
    dirty = "unknown" if status is None else str(bool(status.strip())).lower()
    return GitState(commit.strip(), dirty)


def _git(*args: str) -> str | None:
    """Stdout of a successful ``git`` command, else None."""
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def dvc_outputs(dvc_lock: Mapping[str, Any] | None) -> list[str]:
    """Paths of every stage's outputs recorded in ``dvc.lock`` (models, metrics, plots, data)."""
    stages = (dvc_lock or {}).get("stages") or {}
    return sorted(
        {
            str(out["path"])
            for stage in stages.values()
            if isinstance(stage, Mapping)
            for out in stage.get("outs") or []
            if isinstance(out, Mapping) and "path" in out
        }
    )


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
