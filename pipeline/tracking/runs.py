"""Training runs and reports in MLflow.

One training run = one MLflow run named ``train-<target>`` (tags ``stage``, ``target``) with
the flattened params, the model and baseline metrics, tags (git commit and dirtiness, the DVC
experiment and stage, data checksums from ``dvc.lock``, library versions), the curve data and
feature list as artefacts, and the model logged as a pyfunc "from code"
(:mod:`pipeline.tracking.pyfunc`), then registered with its aliases moved and the promotion
decision tagged (:mod:`pipeline.tracking.registry`). The report stage attaches its HTML site to
the latest training run of each target.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import sklearn
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.exc import SQLAlchemyError

from pipeline.config import MlflowParams
from pipeline.errors import TrackingError
from pipeline.modeling.artifacts import (
    BUY_MODEL_FILE,
    CALIBRATION_FILE,
    FEATURES_FILE,
    MODEL_FILE,
)
from pipeline.tracking.model_uri import registered_model_name
from pipeline.tracking.promotion import Standing
from pipeline.tracking.pyfunc import PYFUNC_ENTRY, requirements, signature
from pipeline.tracking.registry import move_aliases
from pipeline.tracking.run_data import (
    DvcContext,
    data_checksums,
    dvc_context,
    dvc_outputs,
    flatten,
    git_state,
    input_example,
    numeric_metrics,
    run_name,
)
from pipeline.tracking.store import (
    check_reachable,
    configure_environment,
    resolve_tracking_uri,
    tracking_failure,
)

logger = logging.getLogger(__name__)


def run_tags(
    target: str, test_cutoff: str, dvc_lock: Mapping[str, Any] | None, dvc: DvcContext
) -> dict[str, str]:
    """Tags of a training run: stage, target, git and DVC provenance, data checksums, versions."""
    return {
        "stage": "train",
        "target": target,
        "test_cutoff": test_cutoff,
        **git_state(dvc_outputs(dvc_lock)).tags(),
        **dvc.tags(),
        **data_checksums(dvc_lock),
        "version.python": sys.version.split()[0],
        "version.lightgbm": lgb.__version__,
        "version.pandas": pd.__version__,
        "version.numpy": np.__version__,
        "version.scikit-learn": sklearn.__version__,
        "version.mlflow": mlflow.__version__,
    }


def log_training(
    *,
    result: Any,
    params: Mapping[str, Any],
    mlflow_params: MlflowParams,
    model_dir: Path,
    plots_dir: Path | None,
    dvc_lock: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Log one training result and register it; return run id, version and aliases.

    Raises :class:`TrackingError` when the store cannot be used and ``mlflow.required`` is
    true; otherwise warns and returns None. Local outputs must already be on disk.
    """
    uri = resolve_tracking_uri(mlflow_params)
    try:
        check_reachable(uri, mlflow_params.lock_timeout_s, write=True)
        return _log(result, params, mlflow_params, uri, model_dir, plots_dir, dvc_lock)
    except (TrackingError, MlflowException, SQLAlchemyError, OSError) as exc:
        message = tracking_failure(exc, uri).message
        if mlflow_params.required:
            raise TrackingError(message) from exc
        logger.warning("%s; continuing without tracking (mlflow.required is false)", message)
        return None


def _log(
    result: Any,
    params: Mapping[str, Any],
    mlflow_params: MlflowParams,
    uri: str,
    model_dir: Path,
    plots_dir: Path | None,
    dvc_lock: Mapping[str, Any] | None,
) -> dict[str, Any]:
    configure_environment()
    started = time.perf_counter()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(mlflow_params.experiment)
    target = result.target
    name = registered_model_name(target)
    test_cutoff = result.metrics["test_cutoff"]
    metric = "roc_auc" if "roc_auc" in result.metrics["model"] else "normalized_gini"
    test_score = float(result.metrics["model"][metric])
    dvc = dvc_context(os.environ)
    tags = run_tags(target, test_cutoff, dvc_lock, dvc)
    with mlflow.start_run(run_name=run_name("train", target), tags=tags) as run:
        mlflow.log_params({k: str(v) for k, v in flatten(params).items()})
        mlflow.log_metrics(numeric_metrics(result.metrics))
        for index, trial in enumerate(result.trials):
            with mlflow.start_run(run_name=f"trial-{index}", nested=True):
                mlflow.log_params(trial["params"])
                mlflow.log_metrics({k: float(v) for k, v in trial.items() if k != "params"})
        if plots_dir is not None and Path(plots_dir).is_dir():
            mlflow.log_artifacts(str(plots_dir), artifact_path="plots")
        mlflow.log_dict(result.features, "features.json")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_ENTRY),
            artifacts={
                f: str(Path(model_dir) / f)
                for f in (MODEL_FILE, CALIBRATION_FILE, FEATURES_FILE, BUY_MODEL_FILE)
                if (Path(model_dir) / f).exists()
            },
            signature=signature(result.features),
            input_example=input_example(result.test_frame),
            pip_requirements=requirements(),
        )
        version = mlflow.register_model(info.model_uri, name).version
        client = MlflowClient()
        client.set_model_version_tag(name, version, "test_cutoff", test_cutoff)
        client.set_model_version_tag(name, version, f"test_{metric}", repr(test_score))
        for key, value in dvc.tags().items():
            client.set_model_version_tag(name, version, key, value)
        standing = Standing(metric, test_score, test_cutoff)
        aliases, decision = move_aliases(
            client, name, str(version), result, standing, mlflow_params, dvc.experiment
        )
        mlflow.set_tags(decision.tags())
        mlflow.log_metric("mlflow_overhead_seconds", time.perf_counter() - started)
        logger.info(
            "logged run %s; %s version %s aliases %s", run.info.run_id, name, version, aliases
        )
        return {
            "run_id": run.info.run_id,
            "model": name,
            "version": str(version),
            "aliases": aliases,
            "promotion": decision.outcome,
            "tracking_uri": uri,
        }


# --- report (owned by the explain/report stage) --------------------------------------------------


def log_report(site_dir: Path, targets: list[str], mlflow_params: MlflowParams) -> list[str] | None:
    """Attach the HTML report to the latest training run of each target (artifact ``report/``).

    A target without a training run (``train-<target>``) in the experiment gets the report in a
    run named ``report-<target>``. Returns the run ids used; unreachable store:
    :class:`TrackingError` when ``mlflow.required``, else a warning and None.
    """
    uri = resolve_tracking_uri(mlflow_params)
    try:
        check_reachable(uri, mlflow_params.lock_timeout_s, write=True)
        configure_environment()
        mlflow.set_tracking_uri(uri)
        experiment = mlflow.set_experiment(mlflow_params.experiment)
        client = MlflowClient()
        run_ids: list[str] = []
        for target in targets:
            runs = client.search_runs(
                [experiment.experiment_id],
                filter_string=f"attributes.run_name = '{run_name('train', target)}'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            if runs:
                run_id = runs[0].info.run_id
            else:
                run_id = client.create_run(
                    experiment.experiment_id,
                    run_name=run_name("report", target),
                    tags={"stage": "report", "target": target},
                ).info.run_id
                client.set_terminated(run_id)
            client.log_artifacts(run_id, str(site_dir), artifact_path="report")
            run_ids.append(run_id)
        logger.info("report logged to MLflow run(s) %s", run_ids)
        return run_ids
    except (TrackingError, MlflowException, SQLAlchemyError, OSError) as exc:
        message = tracking_failure(exc, uri).message
        if mlflow_params.required:
            raise TrackingError(message) from exc
        logger.warning("%s; report not logged (mlflow.required is false)", message)
        return None
