"""The model registry: aliases of new versions, and registered models loaded back.

Every new version of ``loyalty-<target>`` gets the alias ``challenger``; it takes ``champion``
only when there is no champion, or when it beats the champion's test score (ROC AUC; for a
value model normalized Gini) on the same test cutoff (a champion evaluated on an older cutoff
is re-scored on the new test rows first). Each alias is moved by one registry call, after
everything else was logged, so a failure never leaves a half-moved alias.

Loading goes through the three artefact files and
:func:`pipeline.modeling.artifacts.load_predictor` (LightGBM text + JSON, never a pickle).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.exc import SQLAlchemyError

from pipeline.config import MlflowParams
from pipeline.errors import TrackingError
from pipeline.modeling.artifacts import Predictor, load_predictor
from pipeline.modeling.metrics import ranking_metrics
from pipeline.modeling.value_metrics import normalized_gini
from pipeline.tracking.model_uri import CHALLENGER, CHAMPION, parse_model_uri
from pipeline.tracking.store import (
    check_reachable,
    configure_environment,
    is_locked,
    resolve_tracking_uri,
    tracking_failure,
)

logger = logging.getLogger(__name__)


def move_aliases(
    client: MlflowClient,
    name: str,
    version: str,
    result: Any,
    test_cutoff: str,
    test_auc: float,
    metric: str = "roc_auc",
) -> list[str]:
    """Set ``challenger``; move ``champion`` only when the new version beats it on ``metric``."""
    client.set_registered_model_alias(name, CHALLENGER, version)
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    if champion is not None:
        champion_auc = _champion_auc(name, champion, result, test_cutoff, metric)
        if champion_auc is None or test_auc <= champion_auc:
            logger.info(
                "%s v%s (%s %.4f) does not beat champion v%s (%s) on %s",
                name,
                version,
                metric,
                test_auc,
                champion.version,
                champion_auc,
                test_cutoff,
            )
            return [CHALLENGER]
    client.set_registered_model_alias(name, CHAMPION, version)
    return [CHALLENGER, CHAMPION]


def _champion_auc(
    name: str, champion: Any, result: Any, test_cutoff: str, metric: str = "roc_auc"
) -> float | None:
    """Champion's score on this test cutoff: its tag when the cutoff matches, else re-scored."""
    tags = champion.tags or {}
    if tags.get("test_cutoff") == test_cutoff and f"test_{metric}" in tags:
        return float(tags[f"test_{metric}"])
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
        prob = model.predict(result.test_frame).iloc[:, 0].to_numpy()
    except Exception as exc:  # noqa: BLE001 - any failure means "not comparable"
        logger.warning(
            "champion of %s cannot score the new test rows (%s); keeping it",
            name,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        return None
    labels = result.test_predictions["label"].to_numpy()
    if metric == "normalized_gini":
        return float(normalized_gini(labels, prob))
    return float(ranking_metrics(labels, prob)["roc_auc"])


def _use_store(mlflow_params: MlflowParams | None) -> str:
    settings = mlflow_params or MlflowParams()
    configure_environment()
    uri = resolve_tracking_uri(settings)
    check_reachable(uri, settings.lock_timeout_s)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def load_registered(uri: str, mlflow_params: MlflowParams | None = None) -> Any:
    """Load a registered pyfunc (``models:/loyalty-churn@champion``) with a one-line error."""
    name, alias, _ = parse_model_uri(uri)
    store = _use_store(mlflow_params)
    try:
        return mlflow.pyfunc.load_model(uri)
    except (MlflowException, SQLAlchemyError) as exc:
        raise _load_failure(exc, uri, store, name, alias) from exc


def _load_failure(
    exc: Exception, uri: str, store: str, name: str, alias: str | None
) -> TrackingError:
    """One line for a registry read that failed: the store's lock, a missing alias, or MLflow's."""
    if is_locked(exc) or not isinstance(exc, MlflowException):
        return tracking_failure(exc, store)
    if alias is not None:
        return TrackingError(f"no version of {name} has alias {alias}")
    return TrackingError(f"cannot load {uri}: {str(exc).splitlines()[0]}")


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


def resolve_model(
    uri: str, tracking_uri: str, dst: Path, lock_timeout_s: float | None = None
) -> ResolvedModel:
    """Download a registered version's artefacts into ``dst`` and build its predictor.

    ``uri`` is ``models:/name@alias`` or ``models:/name/version``; the store is ``tracking_uri``
    (no process-wide MLflow setting is changed). The predictor comes from
    :func:`pipeline.modeling.artifacts.load_predictor` (LightGBM text + JSON, never a pickle).
    A missing alias is the one-line :class:`TrackingError` "no version of NAME has alias ALIAS";
    a store another writer holds locked past ``lock_timeout_s`` (default
    ``mlflow.lock_timeout_s``) is one line that says "locked".
    """
    name, alias, version = parse_model_uri(uri)
    configure_environment()
    check_reachable(tracking_uri, lock_timeout_s)
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
    except (MlflowException, SQLAlchemyError) as exc:
        raise _load_failure(exc, uri, tracking_uri, name, alias) from exc
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
    settings = mlflow_params or MlflowParams()
    resolved = resolve_model(uri, resolve_tracking_uri(settings), dst, settings.lock_timeout_s)
    return resolved.predictor, resolved.name, resolved.version
