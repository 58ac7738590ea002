"""Local engine: score hash partitions of an export in a process pool.

Flow (``run_local``):

1. split the raw export into ``partitions`` part folders by streaming (bounded memory,
   :mod:`pipeline.engines.partitioning`);
2. pass 1 in a process pool: each partition is read with the source adapter, cleaned with the
   clean rules, turned into the snapshot at ``as_of`` by ``build_snapshot``, and scored
   (:func:`pipeline.scoring.score_snapshot`); its result is written to a scratch Parquet as it
   completes, so memory depends on partition size, not on input size;
3. the reason-code threshold of the top ``reasons_top_share`` of all customers is computed from
   the pass-1 probabilities (one float per customer);
4. pass 2 in the same pool: reason codes for the customers above it
   (:func:`pipeline.scoring.add_reasons`);
5. the partitions' results are concatenated into ``--out`` atomically (one part in memory at a
   time), and a manifest is written next to it.

The per-partition functions (:func:`pass_one`, :func:`pass_two`) work on in-memory frames, so
the Spark engine runs exactly the same code on its executors.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.config import Params
from pipeline.engines import partitioning
from pipeline.reasons import FeatureDictionary, parse_dictionary
from pipeline.scoring import (
    ScoringModel,
    ScoringRules,
    add_reasons,
    reasons_threshold,
    score_snapshot,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRef:
    """A model folder (``model.txt``, ``calibration.json``, ``features.json``) and its labels."""

    target: str
    path: str
    name: str
    version: str


@dataclass(frozen=True)
class ScoreJob:
    """Everything a worker needs to score one partition (picklable, no open handles)."""

    source_config: str
    features_config: str
    as_of: pd.Timestamp
    models: tuple[ModelRef, ...]
    params: Params
    rules: ScoringRules


@dataclass
class PartResult:
    """Pass-1 output of one partition."""

    partition: int
    scored: pd.DataFrame
    reason_inputs: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)


# --- per-partition work (shared with the Spark engine) ------------------------------------


@functools.lru_cache(maxsize=8)
def _predictor(path: str) -> Any:
    """Load a model once per process (workers score many partitions with it)."""
    from pipeline.modeling.artifacts import load_predictor

    return load_predictor(path)


@functools.lru_cache(maxsize=2)
def _dictionary(path: str) -> FeatureDictionary:
    return parse_dictionary(io.read_yaml(path), path)


def scoring_models(job: ScoreJob) -> dict[str, ScoringModel]:
    """Load the job's models (cached per process)."""
    return {
        ref.target: ScoringModel(ref.target, ref.name, ref.version, _predictor(ref.path))
        for ref in job.models
    }


def reason_columns(job: ScoreJob) -> list[str]:
    """Snapshot columns kept for pass 2: the churn model's features and the value feature."""
    names: list[str] = []
    for target, model in scoring_models(job).items():
        if target == "churn":
            names.extend(model.predictor.feature_names)
    if job.rules.value_feature not in names:
        names.append(job.rules.value_feature)
    return names


def reason_inputs(snapshot: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Keep ``customer_id`` and ``columns``; categories as strings (the same in Parquet/Spark)."""
    out: dict[str, Any] = {"customer_id": snapshot["customer_id"].astype("string")}
    for name in columns:
        if name not in snapshot.columns:
            out[name] = pd.Series(np.nan, index=snapshot.index, dtype="float64")
            continue
        series = snapshot[name]
        if isinstance(series.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
            series
        ):
            out[name] = series.astype("string")
        else:
            out[name] = series.astype("float64")
    return pd.DataFrame(out).sort_values("customer_id", kind="stable").reset_index(drop=True)


def pass_one(job: ScoreJob, partition: int, inputs: list[Path]) -> PartResult:
    """Clean, snapshot and score the raw part files of one partition."""
    started = time.perf_counter()
    snapshot, stats = clean_and_snapshot(job, inputs)
    built = time.perf_counter()
    scored = score_snapshot(snapshot, job.as_of, scoring_models(job), job.rules)
    kept = reason_inputs(snapshot, reason_columns(job))
    stats.update(
        partition=partition,
        customers=len(scored),
        seconds_clean_snapshot=round(built - started, 3),
        seconds_predict=round(time.perf_counter() - built, 3),
    )
    return PartResult(partition, scored, kept, stats)


def pass_two(
    job: ScoreJob, scored: pd.DataFrame, kept: pd.DataFrame, threshold: float
) -> pd.DataFrame:
    """Add reason codes to one partition's pass-1 scores."""
    models = scoring_models(job)
    return add_reasons(
        scored, kept, models.get("churn"), _dictionary(job.features_config), threshold
    )


def clean_and_snapshot(job: ScoreJob, inputs: list[Path]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read raw files with the source adapter, clean them, and build the snapshot at ``as_of``.

    The very functions of the ``clean`` and ``features`` stages: no scoring-only variant.
    """
    raise NotImplementedError  # wired when pipeline.clean and build_snapshot land


# --- the process pool ---------------------------------------------------------------------


def _init_worker() -> None:
    # One LightGBM/OpenMP thread per process: the pool is the parallelism.
    os.environ["OMP_NUM_THREADS"] = "1"


def _pass_one_files(
    job: ScoreJob, partition: int, inputs: list[Path], work: Path
) -> dict[str, Any]:
    result = pass_one(job, partition, inputs)
    io.write_parquet(work / f"scored-{partition:05d}.parquet", result.scored)
    io.write_parquet(work / f"inputs-{partition:05d}.parquet", result.reason_inputs)
    return result.stats


def _pass_two_files(job: ScoreJob, partition: int, threshold: float, work: Path) -> Path:
    started = time.perf_counter()
    scored = io.read_parquet(work / f"scored-{partition:05d}.parquet")
    kept = io.read_parquet(work / f"inputs-{partition:05d}.parquet")
    out = work / f"final-{partition:05d}.parquet"
    io.write_parquet(out, pass_two(job, scored, kept, threshold))
    logger.debug("partition %d reasons in %.2fs", partition, time.perf_counter() - started)
    return out


def _run_all(
    pool: ProcessPoolExecutor,
    fn: Callable[..., Any],
    calls: Iterable[tuple[Any, ...]],
    label: str,
    progress: bool,
) -> list[Any]:
    """Submit ``fn(*args)`` for each call; collect results in submission order, with a bar."""
    from tqdm import tqdm

    futures: list[Future[Any]] = [pool.submit(fn, *args) for args in calls]
    with tqdm(total=len(futures), desc=label, unit="part", file=sys.stderr,
              disable=not progress) as bar:
        for _ in as_completed(futures):
            bar.update(1)
    return [future.result() for future in futures]


def run_local(
    job: ScoreJob,
    inputs: list[Path],
    out: Path,
    fmt: str,
    partitions: int,
    workers: int,
    progress: bool = True,
) -> dict[str, Any]:
    """Score an export end to end with a process pool; write ``out``; return the manifest."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    with io.scratch_dir(out) as work:
        raw_root = work / "raw"
        split = partitioning.split_export(job.source_config, inputs, raw_root, partitions)
        timings["split_seconds"] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()
        context = get_context("spawn")  # no fork of a process that holds OpenMP threads
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
            stats = _run_all(
                pool,
                _pass_one_files,
                [(job, p, split.part_inputs(raw_root, p), work) for p in range(partitions)],
                "score", progress,
            )
            timings["pass_one_seconds"] = round(time.perf_counter() - clock, 3)
            clock = time.perf_counter()
            churn = [
                io.read_parquet(work / f"scored-{p:05d}.parquet", ["churn_probability"])
                for p in range(partitions)
            ]
            threshold = reasons_threshold(
                pd.concat(churn)["churn_probability"].to_numpy(), job.rules.reasons_top_share
            )
            parts = _run_all(
                pool, _pass_two_files,
                [(job, p, threshold, work) for p in range(partitions)], "reasons", progress,
            )
            timings["pass_two_seconds"] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()
        rows = io.concat_parquet_parts(out, parts, fmt)
        timings["write_seconds"] = round(time.perf_counter() - clock, 3)
    return build_manifest(job, split.as_dict(), stats, rows, threshold, timings)


def build_manifest(
    job: ScoreJob,
    split: dict[str, Any],
    stats: list[dict[str, Any]],
    rows: int,
    threshold: float,
    timings: dict[str, float],
) -> dict[str, Any]:
    """Summarise a run: rows in, customers scored, rejects, timings (JSON-ready)."""
    rejected: dict[str, int] = {}
    for item in stats:
        for reason, count in item.get("rejected_by_reason", {}).items():
            rejected[reason] = rejected.get(reason, 0) + int(count)
    return {
        "as_of": job.as_of.isoformat(),
        "models": [ref.__dict__ for ref in job.models],
        "input": split,
        "rows_in": int(sum(item.get("rows_read", 0) for item in stats)),
        "rows_accepted": int(sum(item.get("rows_accepted", 0) for item in stats)),
        "rows_rejected": int(sum(rejected.values())),
        "rejected_by_reason": dict(sorted(rejected.items())),
        "customers_scored": int(rows),
        "reasons_threshold": threshold if np.isfinite(threshold) else None,
        "reasons_top_share": job.rules.reasons_top_share,
        "partitions": [
            {k: v for k, v in item.items() if k != "rejected_by_reason"} for item in stats
        ],
        "timings": timings,
    }
