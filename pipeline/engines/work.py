"""What scoring does to one partition, shared by the local and the Spark engine.

A :class:`ScoreJob` carries everything a worker needs (paths, as-of, params, model folders);
a partition goes through the stages' own functions, and nothing in it depends on another
partition:

- :func:`clean_pass`: ``pipeline.clean.clean_export`` on the partition's raw part files;
- :func:`snapshot_pass`: ``pipeline.features.snapshot.build_snapshot`` at ``as_of``;
- :func:`score_pass`: ``pipeline.scoring.score_customers`` (probabilities, business labels,
  reason codes).

:func:`score_partition` is the three in a row: the engines' map. Only ``--as-of latest`` needs
one small reduce first (:func:`latest_as_of` over the partitions' order-day counts).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import drift, io, names
from pipeline.config import MlflowParams, Params
from pipeline.errors import DataError, ModelError
from pipeline.reasons import FeatureDictionary
from pipeline.scoring import ScoringModel, ScoringRules, score_customers
from pipeline.targets import RULES, Target

logger = logging.getLogger(__name__)

#: The key of a partition's drift bin counts in its stats (summed after the map).
DRIFT_COUNTS = "drift_counts"


@dataclass(frozen=True)
class ModelRef:
    """A model folder (``model.txt``, ``calibration.json``, ``features.json``) and its labels."""

    target: str
    rule: str
    horizon_days: int
    path: str
    name: str
    version: str
    # features.active_within_days the model was trained on (a number or "any"); None: its
    # features.json states none (trained before the population was shipped).
    population: int | str | None = None

    def as_target(self) -> Target:
        """Return the target this model predicts, as its ``features.json`` defines it."""
        return Target(self.target, self.rule, self.horizon_days)


@dataclass(frozen=True)
class ScoreJob:
    """Everything a worker needs to score one partition (picklable, no open handles)."""

    source_config: str
    features_config: str
    as_of: pd.Timestamp | None  # None: the end of the observed data ("latest")
    clean_as_of: pd.Timestamp
    models: tuple[ModelRef, ...]
    params: Params
    rules: ScoringRules
    allow_outside_data: bool = False  # --allow-outside-data: an as-of outside the orders' span

    @property
    def targets(self) -> list[Target]:
        """The targets scored, in ``--model`` order."""
        return [ref.as_target() for ref in self.models]


def resolve_model(uri: str, scratch: Path, mlflow: MlflowParams) -> ModelRef:
    """Turn ``--model`` (a model folder or ``models:/name@alias``) into a local model folder.

    A registry model is loaded through :mod:`pipeline.tracking` and its three artefacts are
    written to ``scratch`` (LightGBM text + JSON, never a pickle), so that every worker, and
    every Spark executor, loads the same files with ``load_predictor``. The target comes from
    the model's ``features.json``.
    """
    from pipeline.modeling.artifacts import (
        BUY_MODEL_FILE,
        CALIBRATION_FILE,
        FEATURES_FILE,
        MODEL_FILE,
        load_predictor,
    )

    if not uri.startswith("models:/"):
        folder = Path(uri)
        io.refuse_pickle(folder)
        predictor = load_predictor(folder)
        text = folder / MODEL_FILE if folder.is_dir() else folder
        version = "sha256:" + io.file_sha256(text)[:12]
        return _ref(
            predictor.features,
            str(folder if folder.is_dir() else folder.parent),
            str(folder),
            version,
        )
    from pipeline import tracking

    # every part was checked by parse_model_uri (pipeline.names): a folder name, never a path
    name, alias, pinned = tracking.parse_model_uri(uri)
    slug = f"{name}@{alias}" if alias is not None else f"{name}-v{pinned}"
    resolved = tracking.resolve_model(
        uri,
        tracking.resolve_tracking_uri(mlflow),
        scratch / "download" / slug,
        mlflow.lock_timeout_s,
    )
    target = _target_name(resolved.predictor.features, uri)
    # One folder per target with a distinct name: Spark ships model folders by their base name.
    folder = scratch / f"registry-{target}"
    for file in (MODEL_FILE, CALIBRATION_FILE, FEATURES_FILE, BUY_MODEL_FILE):
        if file == BUY_MODEL_FILE and not (resolved.folder / file).exists():
            continue
        with io.open_binary(resolved.folder / file) as handle:
            io.write_bytes(folder / file, handle.read())
    logger.info("%s: %s (run %s)", uri, resolved.label, resolved.run_id)
    return _ref(resolved.predictor.features, str(folder), resolved.name, resolved.label)


def _target_name(features: dict[str, Any], origin: str) -> str:
    """Return the model's target name, checked before it becomes part of a path or a column."""
    return names.checked(
        features.get("target"), f"{origin}: features.json target", names.NAME, ModelError
    )


def _ref(features: dict[str, Any], path: str, name: str, version: str) -> ModelRef:
    target = _target_name(features, name)
    rule = str(features.get("rule", ""))
    if rule not in RULES:
        raise ModelError(
            f"{name}: features.json names label rule {rule!r}, expected one of "
            f"{sorted(RULES)} (a model trained before targets had rules: retrain)"
        )
    horizon = features.get("horizon_days")
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
        raise ModelError(
            f"corrupted model {name}: features.json horizon_days {horizon!r} is not a number "
            "of days"
        )
    population = (features.get("population") or {}).get("active_within_days")
    return ModelRef(target, rule, horizon, path, name, version, population)


def model_folders(uri: str, order: Sequence[str] = ()) -> list[str]:
    """Return ``uri`` itself or, for a folder of model folders (``models/``), its models.

    With ``order`` (the trained targets: ``train.targets``, then ``value_target``) the folder
    gives those targets' models in that order, so that a target added to ``train.targets`` is
    scored by the DVC stage without a change to its command; others in the folder are left out
    with a warning.
    Without it, every model in the folder, by name.
    """
    from pipeline.modeling.artifacts import MODEL_FILE

    folder = Path(uri)
    if uri.startswith("models:/") or not folder.is_dir() or (folder / MODEL_FILE).exists():
        return [uri]
    found = {p.name: str(p) for p in folder.iterdir() if (p / MODEL_FILE).is_file()}
    if not found:
        raise ModelError(f"{folder}: neither a model folder nor a folder of model folders")
    if not order:
        return [found[name] for name in sorted(found)]
    ignored = sorted(set(found) - set(order))
    if ignored:
        logger.warning("%s: not a trained target, not scored: %s", folder, ", ".join(ignored))
    missing = [name for name in order if name not in found]
    if missing:
        raise ModelError(f"{folder}: no model for trained target(s) {missing} (params train)")
    return [found[name] for name in order]


def resolve_models(
    uris: list[str], scratch: Path, mlflow: MlflowParams, order: Sequence[str] = ()
) -> tuple[ModelRef, ...]:
    """Resolve every ``--model`` (a folder of model folders gives each); one per target."""
    expanded = [folder for uri in uris for folder in model_folders(uri, order)]
    refs = tuple(resolve_model(uri, scratch, mlflow) for uri in expanded)
    targets = [ref.target for ref in refs]
    if len(set(targets)) != len(targets):
        raise ModelError(f"two models for the same target: {targets}")
    if not refs:
        raise ModelError("no --model given")
    return refs


def scoring_params(params: Params, models: Sequence[ModelRef]) -> Params:
    """Return ``params`` with the population the models were trained on.

    A number or ``any`` in ``features.active_within_days`` is used as set (a warning when a
    model was trained on another); null (chosen from the data) takes the population shipped in
    the models' ``features.json``, which must agree: the scored customers are then the same kind
    as those the models were trained and tested on.
    """
    stated = {ref.population for ref in models if ref.population is not None}
    window = params.features.active_within_days
    if window is not None:
        if stated and stated != {window}:
            logger.warning(
                "features.active_within_days=%s, but the models were trained on %s: the scored "
                "population differs from the one they were tested on",
                window,
                ", ".join(sorted(str(v) for v in stated)),
            )
        return params
    missing = [ref.name for ref in models if ref.population is None]
    if missing:
        raise ModelError(
            f"{', '.join(missing)}: features.json states no population (a model trained before "
            "it was shipped): retrain, or set features.active_within_days"
        )
    if len(stated) != 1:
        raise ModelError(
            "the models were trained on different populations (features.active_within_days "
            f"{', '.join(sorted(str(v) for v in stated))}): train them on one features run, or "
            "set features.active_within_days"
        )
    (chosen,) = stated
    logger.info("score: population of the models: features.active_within_days = %s", chosen)
    features = params.features.model_copy(update={"active_within_days": chosen})
    return params.model_copy(update={"features": features})


#: Keys of a partition's stats that are wall-clock seconds (not facts of the inputs).
PARTITION_SECONDS = "seconds_"


def without_timings(manifest: dict[str, Any]) -> dict[str, Any]:
    """Return the manifest without its wall-clock seconds: a function of the inputs alone.

    Same inputs and models, same manifest bytes; so the DVC ``score`` stage's output (and
    ``dvc.lock``) does not change when nothing else did. ``loyalty score --timings`` keeps
    them (the benchmarks read them); the log always shows them.
    """
    out = {k: v for k, v in manifest.items() if k != "timings"}
    out["partitions"] = [
        {k: v for k, v in part.items() if not k.startswith(PARTITION_SECONDS)}
        for part in manifest.get("partitions", [])
    ]
    return out


class Laps:
    """Wall-clock timings of the steps of a run, in seconds."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, name: str) -> None:
        """Record the time since the previous lap under ``name``."""
        now = time.perf_counter()
        self.timings[name] = round(now - self._clock, 3)
        self._clock = now


# --- per-partition work (shared with the Spark engine) ------------------------------------


def file_identity(path: str | Path) -> tuple[str, int]:
    """Return what a per-process cache keys a file or folder on: absolute path, newest change.

    A relative path names another file after a ``chdir``, and a model retrained in place keeps
    its path: the path alone would serve a stale model.
    """
    resolved = Path(path).resolve()
    files = [resolved, *resolved.iterdir()] if resolved.is_dir() else [resolved]
    # a missing path gets 0: the loader then says what is missing, in one line
    return str(resolved), max((f.stat().st_mtime_ns for f in files if f.exists()), default=0)


def _predictor(path: str) -> Any:
    """Load a model once per process (workers score many partitions with it)."""
    return _load_predictor(*file_identity(path))


@functools.lru_cache(maxsize=8)
def _load_predictor(path: str, _changed_ns: int) -> Any:
    from pipeline.modeling.artifacts import load_predictor

    return load_predictor(path)


def _dictionary(path: str) -> FeatureDictionary:
    return _load_dictionary(*file_identity(path))


@functools.lru_cache(maxsize=2)
def _load_dictionary(path: str, changed_ns: int) -> FeatureDictionary:
    return FeatureDictionary(_load_catalog(path, changed_ns))


def _catalog(path: str) -> Any:
    return _load_catalog(*file_identity(path))


@functools.lru_cache(maxsize=2)
def _load_catalog(path: str, _changed_ns: int) -> Any:
    from pipeline.features.catalog import load_catalog

    return load_catalog(path)


def scoring_models(job: ScoreJob) -> list[ScoringModel]:
    """Load the job's models (cached per process), in ``--model`` order."""
    return [
        ScoringModel(ref.as_target(), ref.name, ref.version, _predictor(ref.path))
        for ref in job.models
    ]


def clean_pass(job: ScoreJob, inputs: list[Path]) -> tuple[dict[str, pd.DataFrame], dict]:
    """Read one partition's raw files and clean them with the ``clean`` stage's own function.

    Returns the clean tables and the partition's counts (rows read, accepted, rejected).
    """
    from pipeline.clean import clean_export
    from pipeline.sources.csv_mapping import load_source_config

    started = time.perf_counter()
    config = load_source_config(job.source_config)
    # A partition holds all rows without a customer id: the rate is judged on the whole run.
    cleaned = clean_export(
        config,
        inputs,
        job.clean_as_of,
        missing_customer_id_warn_rate=1.0,
        max_record_bytes=job.params.clean.max_record_bytes,
    )
    if "orders" not in cleaned.tables:
        raise DataError("clean produced no orders table")
    manifest = cleaned.manifest
    stats = {
        "rows_read": int(manifest["rows_read"]),
        "rows_accepted": int(manifest["accepted"]),
        "rejected_by_reason": dict(manifest["rejected_by_reason"]),
        "missing_customer_id_lines": int(
            manifest.get("transactions", {}).get("missing_customer_id_lines", 0)
        ),
        "seconds_clean": round(time.perf_counter() - started, 3),
    }
    return cleaned.tables, stats


def order_days(tables: dict[str, pd.DataFrame]) -> dict[int, int]:
    """Orders per UTC day of one partition (for the run-wide end of the observed data)."""
    from pipeline.features.prepare import DAY_US, timestamps_us

    days = timestamps_us(tables["orders"]["order_ts"]) // DAY_US
    unique, counts = np.unique(days, return_counts=True)
    return {int(d): int(c) for d, c in zip(unique, counts, strict=True)}


def _day_totals(per_partition: list[dict[int, int]]) -> dict[int, int]:
    total: dict[int, int] = {}
    for counts in per_partition:
        for day, n in counts.items():
            total[int(day)] = total.get(int(day), 0) + int(n)
    if not total:
        raise DataError("orders: no orders, so no customer snapshot can be built")
    return total


def latest_as_of(job: ScoreJob, per_partition: list[dict[int, int]]) -> pd.Timestamp:
    """Return the end of the observed data over all partitions (``--as-of latest``).

    ``features.data_end`` when set; else :func:`pipeline.features.panel.observed_end` on the
    run's orders, rebuilt at day resolution (all it looks at) from the partitions' day counts.
    """
    from pipeline.features.panel import observed_end
    from pipeline.features.prepare import DAY_US
    from pipeline.features.snapshot import cutoff_timestamp

    total = _day_totals(per_partition)
    if job.params.features.data_end is not None:
        return cutoff_timestamp(job.params.features.data_end)
    days = np.array(sorted(total), dtype=np.int64)
    stamps = np.repeat(days * DAY_US, [total[d] for d in days.tolist()])
    end, stray = observed_end(stamps)
    if stray:
        logger.warning(
            "%d stray order(s) after %s are outside the observed period", stray, end.date()
        )
    return end


def check_rejects(job: ScoreJob, stats: list[dict[str, Any]]) -> None:
    """Fail like ``clean`` when the run's reject share passes ``clean.max_reject_share``.

    On the run's totals: a partition's share would depend on who else is in it.
    """
    from pipeline.clean import check_reject_share

    by_reason: dict[str, int] = {}
    for item in stats:
        for reason, count in item.get("rejected_by_reason", {}).items():
            by_reason[reason] = by_reason.get(reason, 0) + int(count)
    rows = sum(int(item.get("rows_read", 0)) for item in stats)
    check_reject_share("score input", rows, by_reason, job.params.clean.max_reject_share)


def settle_as_of(job: ScoreJob, per_partition: list[dict[int, int]]) -> ScoreJob:
    """Return ``job`` with its snapshot date: the data's end for ``latest``, else checked.

    A ``--as-of`` on or before the first order day scores nobody; one more than
    ``score.as_of_slack_days`` after the end of the data pretends nobody bought in between.
    Both are a one-line :class:`DataError` unless the job allows scoring outside the data.
    """
    from pipeline.features.prepare import DAY_US
    from pipeline.features.snapshot import cutoff_timestamp

    end = latest_as_of(job, per_partition)
    if job.as_of is None:
        return replace(job, as_of=end)
    first = cutoff_timestamp(pd.Timestamp(min(_day_totals(per_partition)) * DAY_US, unit="us"))
    slack = pd.Timedelta(days=job.params.score.as_of_slack_days)
    outside = (
        "before the first order"
        if job.as_of <= first
        else "after the end of the data"
        if job.as_of > end + slack
        else None
    )
    if outside is not None and not job.allow_outside_data:
        raise DataError(
            f"--as-of {job.as_of.isoformat()} is {outside} (orders {first.date()} to "
            f"{(end - pd.Timedelta(days=1)).date()}, score.as_of_slack_days "
            f"{job.params.score.as_of_slack_days}); use --as-of latest, a date inside, or "
            "--allow-outside-data"
        )
    if outside is not None:
        logger.warning("--as-of %s is %s (allowed by --allow-outside-data)", job.as_of, outside)
    return job


def snapshot_pass(job: ScoreJob, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Build one partition's snapshot at ``job.as_of`` with the features stage's function."""
    from pipeline.features.snapshot import build_snapshot

    if job.as_of is None:
        raise ValueError("snapshot_pass needs job.as_of")
    return build_snapshot(
        tables["orders"],
        tables.get("returns"),
        tables.get("feedback"),
        tables.get("customers"),
        job.as_of,
        job.params.features,
        _catalog(job.features_config),
    )


def score_pass(job: ScoreJob, snapshot: pd.DataFrame) -> pd.DataFrame:
    """Score one partition's snapshot with the scoring stage's own function."""
    if job.as_of is None:
        raise ValueError("score_pass needs job.as_of")
    return score_customers(
        snapshot, job.as_of, scoring_models(job), job.rules, _dictionary(job.features_config)
    )


def drift_models(job: ScoreJob) -> list[drift.ModelDrift]:
    """Return what drift needs of each of the job's models: reference bins and test cutoff."""
    return [
        drift.ModelDrift.of(
            m.target.name, m.target.output_column, m.predictor.features, m.predictor.feature_names
        )
        for m in scoring_models(job)
    ]


def drift_pass(
    job: ScoreJob, snapshot: pd.DataFrame, scores: pd.DataFrame
) -> dict[str, dict[str, list[int]]]:
    """Bin counts of one partition's model inputs and scores, by target (:mod:`pipeline.drift`).

    The counts of the partitions add up to the run's; its PSI is taken after the map.
    """
    if not len(snapshot):
        return {}
    models = {m.target.name: m for m in scoring_models(job)}
    return {
        spec.target: drift.partition_counts(
            models[spec.target].predictor.prepare(snapshot), scores[spec.score_column], spec.bins
        )
        for spec in drift_models(job)
    }


def score_partition(
    job: ScoreJob, tables: dict[str, pd.DataFrame]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the map: one partition's clean tables -> its scores (and the seconds of each step).

    The stats carry the partition's drift bin counts (``drift_counts``) for the run's reduce.
    """
    started = time.perf_counter()
    snapshot = snapshot_pass(job, tables)
    built = time.perf_counter()
    scores = score_pass(job, snapshot)
    done = time.perf_counter()
    counts = drift_pass(job, snapshot, scores)
    return scores, {
        "seconds_snapshot": round(built - started, 3),
        "seconds_score": round(done - built, 3),
        "seconds_drift": round(time.perf_counter() - done, 3),
        "customers": int(len(scores)),
        "with_reasons": int(scores["reason_1"].notna().sum()) if "reason_1" in scores else 0,
        DRIFT_COUNTS: counts,
    }
