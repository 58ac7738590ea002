"""The model registry: aliases of new versions, promotion, and registered models loaded back.

Every new version of ``loyalty-<target>`` gets the alias ``challenger``; whether it also takes
``champion`` is the rule of :mod:`pipeline.tracking.promotion` (by more than
``mlflow.promotion_margin`` on the same test cutoff, never under ``dvc exp run``; a champion
evaluated on an older cutoff is re-scored on the new test rows first). :func:`promote` moves
``champion`` by hand (``loyalty promote``). Each alias is moved by one registry call, after
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

from pipeline import names
from pipeline.config import MlflowParams
from pipeline.errors import TrackingError
from pipeline.modeling.artifacts import Predictor, load_predictor
from pipeline.modeling.metrics import ranking_metrics
from pipeline.modeling.value_metrics import normalized_gini
from pipeline.tracking.model_uri import CHALLENGER, CHAMPION, parse_model_uri, registered_model_name
from pipeline.tracking.promotion import (
    BY_HAND,
    BY_PIPELINE,
    Decision,
    Standing,
    decide,
    promoted_tags,
)
from pipeline.tracking.store import (
    check_reachable,
    configure_environment,
    is_locked,
    resolve_tracking_uri,
    tracking_failure,
)

logger = logging.getLogger(__name__)

#: MLflow's error codes for a registered model, version or alias that does not exist (the SQL
#: store answers a missing alias with INVALID_PARAMETER_VALUE, a server passes its code on).
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def move_aliases(
    client: MlflowClient,
    name: str,
    version: str,
    result: Any,
    score: Standing,
    settings: MlflowParams,
    experiment: str | None,
) -> tuple[list[str], Decision]:
    """Set ``challenger``; move ``champion`` when :func:`promotion.decide` says so.

    ``score`` is the new version's (metric, score, test cutoff); the champion's score on that
    cutoff is added here. The decision is one INFO line and ``promotion.*`` tags on the version.
    """
    client.set_registered_model_alias(name, CHALLENGER, version)
    champion = _champion(client, name)
    if champion is not None:
        score = Standing(
            score.metric,
            score.score,
            score.test_cutoff,
            str(champion.version),
            _champion_score(name, champion, result, score.test_cutoff, score.metric),
        )
    decision = decide(score, settings.promotion_margin, experiment, settings.auto_promote)
    _tag_version(client, name, version, decision.tags())
    logger.info("%s v%s: %s", name, version, decision.reason)
    if not decision.promote:
        return [CHALLENGER], decision
    _take_champion(client, name, version, BY_PIPELINE, decision.reason, score.champion_version)
    return [CHALLENGER, CHAMPION], decision


def _champion(client: MlflowClient, name: str) -> Any | None:
    """Return the version that holds ``champion``, or None."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in _MISSING and not is_locked(exc):
            return None
        raise  # a store failing is not "no champion": that would promote anything


def _take_champion(
    client: MlflowClient, name: str, version: str, by: str, reason: str, previous: str | None
) -> None:
    """Tag who promoted ``version`` and why, then give it ``champion`` (the last call)."""
    _tag_version(client, name, version, promoted_tags(by, reason, previous))
    client.set_registered_model_alias(name, CHAMPION, version)


def _tag_version(client: MlflowClient, name: str, version: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def _champion_score(
    name: str, champion: Any, result: Any, test_cutoff: str, metric: str = "roc_auc"
) -> float | None:
    """Champion's score on this test cutoff: its tag when the cutoff matches, else re-scored."""
    tags = champion.tags or {}
    if tags.get("test_cutoff") == test_cutoff and f"test_{metric}" in tags:
        return float(tags[f"test_{metric}"])
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}/{champion.version}")
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


@dataclass(frozen=True)
class Promotion:
    """What ``loyalty promote`` did: ``name`` version ``version`` is champion, was ``previous``."""

    name: str
    version: str
    previous: str | None

    @property
    def changed(self) -> bool:
        """False when the version already was the champion (nothing was written)."""
        return self.previous != self.version


def promote(
    target: str,
    version: str | None,
    alias: str | None,
    reason: str | None,
    mlflow_params: MlflowParams,
) -> Promotion:
    """Give ``champion`` to a version of ``loyalty-<target>``, chosen by number or by alias.

    Tags it ``promoted_by: manual`` with the user, the time, ``reason`` and the champion it
    replaces. An unknown model, version or alias, or a store that cannot be written (locked,
    unreachable) is one :class:`TrackingError` line.
    """
    name = registered_model_name(names.checked(target, "--target"))
    uri = resolve_tracking_uri(mlflow_params)
    configure_environment()
    check_reachable(uri, mlflow_params.lock_timeout_s, write=True)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        chosen = _chosen_version(client, name, version, alias or CHALLENGER)
        current = _champion(client, name)
        previous = None if current is None else str(current.version)
        if previous != chosen:
            why = reason or "no reason given"
            _take_champion(client, name, chosen, BY_HAND, why, previous)
    except (MlflowException, SQLAlchemyError) as exc:
        raise tracking_failure(exc, uri) from exc
    return Promotion(name, chosen, previous)


def _chosen_version(client: MlflowClient, name: str, version: str | None, alias: str) -> str:
    """Return the number of the version asked for, checked to exist (else one line)."""
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code in _MISSING and not is_locked(exc):
            raise TrackingError(f"no registered model {name}: train its target first") from exc
        raise
    try:
        if version is not None:
            return str(client.get_model_version(name, version).version)
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code not in _MISSING or is_locked(exc):
            raise
        if version is not None:
            raise TrackingError(f"{name} has no version {version}") from exc
        raise TrackingError(f"no version of {name} has alias {alias}") from exc


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
