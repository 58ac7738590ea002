"""MLflow tracking and registry: the only module that imports :mod:`mlflow`.

One training run = one MLflow run named ``train`` (tag ``target``) with the flattened params,
the model and baseline metrics, tags (git commit, data checksums from ``dvc.lock``, library
versions), the curve data and feature list as artefacts, and the model logged as a pyfunc
"from code" (:mod:`pipeline.modeling.pyfunc_entry`): its artefacts are ``model.txt``,
``calibration.json`` and ``features.json``, so loading it never unpickles anything.

Registry: every new version of ``loyalty-<target>`` gets the alias ``challenger``; it takes
``champion`` only when there is no champion, or when it beats the champion's test ROC AUC on
the same test cutoff (a champion evaluated on an older cutoff is re-scored on the new test
rows first). Each alias is moved by one registry call, after everything else was logged, so a
failure never leaves a half-moved alias.

Helpers that need no MLflow (store URI and reachability, flattening, checksums, model URIs) live
in :mod:`pipeline.tracking_support`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import sklearn
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

from pipeline.config import MlflowParams
from pipeline.errors import TrackingError
from pipeline.modeling.artifacts import (
    CALIBRATION_FILE,
    FEATURES_FILE,
    MODEL_FILE,
    Predictor,
    load_predictor,
    load_predictor_files,
)
from pipeline.modeling.metrics import ranking_metrics
from pipeline.tracking_support import (
    check_reachable,
    data_checksums,
    flatten,
    git_commit,
    input_example,
    numeric_metrics,
    parse_model_uri,
    registered_model_name,
    resolve_tracking_uri,
)

logger = logging.getLogger(__name__)

PYFUNC_ENTRY = Path(__file__).parent / "modeling" / "pyfunc_entry.py"
CHAMPION = "champion"
CHALLENGER = "challenger"


def run_tags(target: str, test_cutoff: str, dvc_lock: Mapping[str, Any] | None) -> dict[str, str]:
    """Tags of a training run: target, git commit, data checksums, library versions."""
    return {
        "target": target,
        "test_cutoff": test_cutoff,
        "git_commit": git_commit(),
        **data_checksums(dvc_lock),
        "version.python": sys.version.split()[0],
        "version.lightgbm": lgb.__version__,
        "version.pandas": pd.__version__,
        "version.numpy": np.__version__,
        "version.scikit-learn": sklearn.__version__,
        "version.mlflow": mlflow.__version__,
    }


def signature(features: Mapping[str, Any]) -> ModelSignature:
    """Input: one column per feature; output: probability.

    Numeric features are ``double``. Categorical ones are ``any``: MLflow has no category type
    and refuses to cast a pandas ``category`` column to ``string``, while snapshot frames carry
    categories; the predictor itself maps values to the stored levels.
    """
    inputs = Schema(
        [
            ColSpec(AnyType() if f["dtype"] == "category" else "double", f["name"])
            for f in features["features"]
        ]
    )
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", "probability")]))


class LoyaltyPyfunc(PythonModel):
    """Pyfunc wrapper: calibrated probabilities from a DataFrame of snapshot features."""

    def load_context(self, context: Any) -> None:
        """Rebuild the predictor from the logged LightGBM text and JSON files (no pickle)."""
        self._predictor = load_predictor_files(
            context.artifacts[MODEL_FILE],
            context.artifacts[CALIBRATION_FILE],
            context.artifacts[FEATURES_FILE],
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        """Return a frame with one ``probability`` column, in input row order."""
        return pd.DataFrame({"probability": self._predictor.predict_proba(model_input)})


def set_pyfunc_model() -> None:
    """Declare the pyfunc for MLflow's "models from code" (called by pyfunc_entry.py)."""
    mlflow.models.set_model(LoyaltyPyfunc())


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
        check_reachable(uri)
        return _log(result, params, mlflow_params, uri, model_dir, plots_dir, dvc_lock)
    except (TrackingError, MlflowException, OSError) as exc:
        message = (
            exc.message
            if isinstance(exc, TrackingError)
            else (f"MLflow failed at {uri}: {str(exc).splitlines()[0] if str(exc) else type(exc)}")
        )
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
    _configure_environment()
    started = time.perf_counter()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(mlflow_params.experiment)
    target = result.target
    name = registered_model_name(target)
    test_cutoff = result.metrics["test_cutoff"]
    test_auc = float(result.metrics["model"]["roc_auc"])
    with mlflow.start_run(run_name="train", tags=run_tags(target, test_cutoff, dvc_lock)) as run:
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
                f: str(Path(model_dir) / f) for f in (MODEL_FILE, CALIBRATION_FILE, FEATURES_FILE)
            },
            signature=signature(result.features),
            input_example=input_example(result.test_frame),
            pip_requirements=[
                f"mlflow=={mlflow.__version__}",
                f"lightgbm=={lgb.__version__}",
                f"pandas=={pd.__version__}",
                f"numpy=={np.__version__}",
                f"scikit-learn=={sklearn.__version__}",
            ],
        )
        version = mlflow.register_model(info.model_uri, name).version
        client = MlflowClient()
        client.set_model_version_tag(name, version, "test_cutoff", test_cutoff)
        client.set_model_version_tag(name, version, "test_roc_auc", repr(test_auc))
        aliases = _move_aliases(client, name, str(version), result, test_cutoff, test_auc)
        mlflow.log_metric("mlflow_overhead_seconds", time.perf_counter() - started)
        logger.info(
            "logged run %s; %s version %s aliases %s", run.info.run_id, name, version, aliases
        )
        return {
            "run_id": run.info.run_id,
            "model": name,
            "version": str(version),
            "aliases": aliases,
            "tracking_uri": uri,
        }


def _move_aliases(
    client: MlflowClient,
    name: str,
    version: str,
    result: Any,
    test_cutoff: str,
    test_auc: float,
) -> list[str]:
    """Set ``challenger``; move ``champion`` only when the new version beats it."""
    client.set_registered_model_alias(name, CHALLENGER, version)
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    if champion is not None:
        champion_auc = _champion_auc(name, champion, result, test_cutoff)
        if champion_auc is None or test_auc <= champion_auc:
            logger.info(
                "%s v%s (AUC %.4f) does not beat champion v%s (AUC %s) on %s",
                name,
                version,
                test_auc,
                champion.version,
                champion_auc,
                test_cutoff,
            )
            return [CHALLENGER]
    client.set_registered_model_alias(name, CHAMPION, version)
    return [CHALLENGER, CHAMPION]


def _champion_auc(name: str, champion: Any, result: Any, test_cutoff: str) -> float | None:
    """Champion's AUC on this test cutoff: its tag when the cutoff matches, else re-scored."""
    tags = champion.tags or {}
    if tags.get("test_cutoff") == test_cutoff and "test_roc_auc" in tags:
        return float(tags["test_roc_auc"])
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
        prob = model.predict(result.test_frame)["probability"].to_numpy()
    except Exception as exc:  # noqa: BLE001 - any failure means "not comparable"
        logger.warning(
            "champion of %s cannot score the new test rows (%s); keeping it",
            name,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        return None
    return float(ranking_metrics(result.test_predictions["label"].to_numpy(), prob)["roc_auc"])


def _configure_environment() -> None:
    """Bound MLflow's HTTP retries and keep its usage telemetry off (no calls to the internet)."""
    # A server that dies mid-run must not hang the stage in MLflow's long retry loop.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def _use_store(mlflow_params: MlflowParams | None) -> str:
    _configure_environment()
    uri = resolve_tracking_uri(mlflow_params or MlflowParams())
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def load_registered(uri: str, mlflow_params: MlflowParams | None = None) -> Any:
    """Load a registered pyfunc (``models:/loyalty-churn@champion``) with a one-line error."""
    _use_store(mlflow_params)
    try:
        return mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        name, alias, _ = parse_model_uri(uri)
        if alias is not None:
            raise TrackingError(f"no version of {name} has alias {alias}") from exc
        raise TrackingError(f"cannot load {uri}: {str(exc).splitlines()[0]}") from exc


@dataclass(frozen=True)
class ResolvedModel:
    """A registry model version downloaded to ``folder`` (its three artefact files)."""

    predictor: Predictor
    name: str
    version: str
    alias: str | None
    run_id: str | None
    folder: Path

    @property
    def label(self) -> str:
        """``loyalty-churn v3 (champion)``, or ``loyalty-churn v3`` for a pinned version."""
        base = f"{self.name} v{self.version}"
        return f"{base} ({self.alias})" if self.alias else base


def resolve_model(uri: str, tracking_uri: str, dst: Path) -> ResolvedModel:
    """Download a registered version's artefacts into ``dst`` and build its predictor.

    ``uri`` is ``models:/name@alias`` or ``models:/name/version``; the store is ``tracking_uri``
    (no process-wide MLflow setting is changed). The predictor comes from
    :func:`pipeline.modeling.artifacts.load_predictor` (LightGBM text + JSON, never a pickle).
    A missing alias is the one-line :class:`TrackingError` "no version of NAME has alias ALIAS".
    """
    _configure_environment()
    check_reachable(tracking_uri)
    name, alias, version = parse_model_uri(uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        found = (
            client.get_model_version_by_alias(name, alias)
            if alias is not None
            else client.get_model_version(name, str(version))
        )
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{found.version}",
            dst_path=str(dst),
            tracking_uri=tracking_uri,
            registry_uri=tracking_uri,
        )
    except MlflowException as exc:
        if alias is not None:
            raise TrackingError(f"no version of {name} has alias {alias}") from exc
        raise TrackingError(f"cannot load {uri}: {str(exc).splitlines()[0]}") from exc
    folder = Path(local) / "artifacts"
    return ResolvedModel(
        predictor=load_predictor(folder),
        name=name,
        version=str(found.version),
        alias=alias,
        run_id=found.run_id,
        folder=folder,
    )


def load_registered_predictor(
    uri: str, dst: Path, mlflow_params: MlflowParams | None = None
) -> tuple[Predictor, str, str]:
    """Return (predictor, name, version) of a registered model (see :func:`resolve_model`)."""
    resolved = resolve_model(uri, resolve_tracking_uri(mlflow_params or MlflowParams()), dst)
    return resolved.predictor, resolved.name, resolved.version


# --- report (owned by the explain/report stage) --------------------------------------------------


def log_report(site_dir: Path, targets: list[str], mlflow_params: MlflowParams) -> list[str] | None:
    """Attach the HTML report to the latest training run of each target (artifact ``report/``).

    A target without a training run in the experiment gets the report in a run named
    ``report``. Returns the run ids used; unreachable store: :class:`TrackingError` when
    ``mlflow.required``, else a warning and None.
    """
    uri = resolve_tracking_uri(mlflow_params)
    try:
        check_reachable(uri)
        mlflow.set_tracking_uri(uri)
        experiment = mlflow.set_experiment(mlflow_params.experiment)
        client = MlflowClient()
        run_ids: list[str] = []
        for target in targets:
            runs = client.search_runs(
                [experiment.experiment_id],
                filter_string=f"tags.target = '{target}' and attributes.run_name = 'train'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            if runs:
                run_id = runs[0].info.run_id
            else:
                run_id = client.create_run(
                    experiment.experiment_id, run_name="report", tags={"target": target}
                ).info.run_id
                client.set_terminated(run_id)
            client.log_artifacts(run_id, str(site_dir), artifact_path="report")
            run_ids.append(run_id)
        logger.info("report logged to MLflow run(s) %s", run_ids)
        return run_ids
    except (TrackingError, MlflowException, OSError) as exc:
        message = (
            exc.message if isinstance(exc, TrackingError) else f"MLflow failed at {uri}: {exc}"
        )
        if mlflow_params.required:
            raise TrackingError(message) from exc
        logger.warning("%s; report not logged (mlflow.required is false)", message)
        return None
