"""Local engine: score hash partitions of an export in a process pool.

Flow (:func:`run_local`):

1. split the raw export into ``partitions`` part folders by streaming (bounded memory,
   :mod:`pipeline.engines.partitioning`);
2. snapshot pass (process pool): each partition is read with the source adapter, cleaned with
   the clean rules (:func:`pipeline.clean.clean_export`) and turned into the snapshot at
   ``as_of`` by ``build_snapshot``; written to scratch Parquet as it completes, so memory
   depends on partition size, not on input size;
3. RFM quintile scores rank each customer among *all* customers, so they are recomputed once
   over the whole population from three columns per customer
   (:func:`pipeline.scoring.population_rfm`, i.e. the training code);
4. score pass: both models' probabilities, tiers, bands, value at risk per partition;
5. the reason-code threshold of the top ``reasons_top_share`` of all customers, from the
   probabilities (one float per customer);
6. reasons pass: reason codes for the customers above it;
7. the partitions' results are concatenated into ``--out`` atomically (one part in memory at a
   time).

The per-partition functions live in :mod:`pipeline.engines.work` and work on in-memory frames,
so the Spark engine runs exactly the same code on its executors.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.engines import partitioning
from pipeline.engines.work import (
    Laps,
    ScoreJob,
    clean_pass,
    latest_as_of,
    order_days,
    reasons_pass,
    rfm_by_partition,
    score_pass,
    snapshot_pass,
)
from pipeline.errors import InputError
from pipeline.scoring import RFM_BASES, reasons_threshold, with_spend_cap

logger = logging.getLogger(__name__)


# --- the process pool ---------------------------------------------------------------------


def _init_worker() -> None:
    # One LightGBM/OpenMP thread per process: the pool is the parallelism.
    os.environ["OMP_NUM_THREADS"] = "1"


def _part(work: Path, kind: str, partition: int) -> Path:
    return work / kind / f"part-{partition:05d}.parquet"


def _clean_files(job: ScoreJob, partition: int, inputs: list[Path], work: Path) -> dict:
    """Clean one partition; snapshot it now when ``as_of`` is known, else keep the clean tables."""
    tables, stats = clean_pass(job, inputs)
    if job.as_of is None:
        for name, frame in tables.items():
            io.write_parquet(work / "clean" / f"part-{partition:05d}" / f"{name}.parquet", frame)
        stats["order_days"] = order_days(tables)
    else:
        started = time.perf_counter()
        io.write_parquet(_part(work, "snapshot", partition), snapshot_pass(job, tables))
        stats["seconds_snapshot"] = round(time.perf_counter() - started, 3)
    return {"partition": partition, **stats}


def _snapshot_files(job: ScoreJob, partition: int, work: Path) -> float:
    started = time.perf_counter()
    folder = work / "clean" / f"part-{partition:05d}"
    tables = {path.stem: io.read_parquet(path) for path in sorted(folder.glob("*.parquet"))}
    io.write_parquet(_part(work, "snapshot", partition), snapshot_pass(job, tables))
    return round(time.perf_counter() - started, 3)


def _score_files(job: ScoreJob, partition: int, work: Path) -> float:
    started = time.perf_counter()
    snapshot = io.read_parquet(_part(work, "snapshot", partition))
    rfm_path = _part(work, "rfm", partition)
    rfm = io.read_parquet(rfm_path) if rfm_path.exists() else None
    scored, kept = score_pass(job, snapshot, rfm)
    io.write_parquet(_part(work, "scored", partition), scored)
    io.write_parquet(_part(work, "kept", partition), kept)
    return round(time.perf_counter() - started, 3)


def _reason_files(job: ScoreJob, partition: int, threshold: float, work: Path) -> Path:
    scored = io.read_parquet(_part(work, "scored", partition))
    kept = io.read_parquet(_part(work, "kept", partition))
    out = _part(work, "final", partition)
    io.write_parquet(out, reasons_pass(job, scored, kept, threshold))
    return out


class _InlineExecutor(Executor):
    """Run submitted calls at once in this process (``--workers 1``: no start-up cost)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - handed to the caller via the future
            future.set_exception(exc)
        return future


def _pool(workers: int) -> Executor:
    if workers <= 1:
        return _InlineExecutor()
    context = get_context("spawn")  # no fork of a process that holds OpenMP threads
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)


def _run_all(
    pool: Executor,
    fn: Callable[..., Any],
    calls: Iterable[tuple[Any, ...]],
    label: str,
    progress: bool,
) -> list[Any]:
    """Submit ``fn(*args)`` for each call; return results in submission order, with a bar."""
    from tqdm import tqdm

    futures: list[Future[Any]] = [pool.submit(fn, *args) for args in calls]
    with tqdm(total=len(futures), desc=label, unit="part", file=sys.stderr,
              disable=not progress) as bar:
        for _ in as_completed(futures):
            bar.update(1)
    return [future.result() for future in futures]


def _population_rfm_files(job: ScoreJob, work: Path, partitions: int) -> None:
    """Compute population RFM once and write each partition's share of it."""
    bases = []
    for p in range(partitions):
        try:
            columns = ["customer_id", *RFM_BASES]
            bases.append((p, io.read_parquet(_part(work, "snapshot", p), columns)))
        except InputError:  # a snapshot without RFM base columns: nothing to recompute
            return
    for p, rows in rfm_by_partition(job, bases).items():
        io.write_parquet(_part(work, "rfm", p), rows)


def _all_spend(job: ScoreJob, work: Path, partitions: int) -> np.ndarray:
    """Every scored customer's expected spend (the value feature), for the global spend cap."""
    column = job.rules.value_feature
    pieces = []
    for p in range(partitions):
        try:
            pieces.append(io.read_parquet(_part(work, "snapshot", p), [column])[column])
        except InputError:  # no such feature in this snapshot: value at risk stays empty
            return np.zeros(0)
    return pd.concat(pieces).to_numpy(dtype="float64") if pieces else np.zeros(0)


def run_local(
    job: ScoreJob,
    inputs: list[Path],
    out: Path,
    fmt: str,
    partitions: int,
    workers: int,
    work: Path,
    progress: bool = True,
) -> dict[str, Any]:
    """Score an export end to end with a process pool; write ``out``; return the manifest.

    ``work`` is a scratch folder on the same file system as ``out`` (the caller removes it).
    """
    laps = Laps()
    lap = laps.lap
    raw_root = work / "raw"
    split = partitioning.split_export(job.source_config, inputs, raw_root, partitions)
    lap("split_seconds")
    with _pool(workers) as pool:
        calls: list[tuple[Any, ...]] = [
            (job, p, split.part_inputs(raw_root, p), work) for p in range(partitions)
        ]
        stats = _run_all(pool, _clean_files, calls, "clean", progress)
        lap("clean_seconds")
        if job.as_of is None:
            job = replace(job, as_of=latest_as_of(job, [s.pop("order_days") for s in stats]))
            calls = [(job, p, work) for p in range(partitions)]
            for item, seconds in zip(
                stats, _run_all(pool, _snapshot_files, calls, "snapshot", progress),
                strict=True,
            ):
                item["seconds_snapshot"] = seconds
            lap("snapshot_seconds")
        _population_rfm_files(job, work, partitions)
        job = replace(job, rules=with_spend_cap(job.rules, _all_spend(job, work, partitions)))
        lap("population_rfm_seconds")
        calls = [(job, p, work) for p in range(partitions)]
        for item, seconds in zip(
            stats, _run_all(pool, _score_files, calls, "score", progress), strict=True
        ):
            item["seconds_score"] = seconds
        lap("score_seconds")
        churn = pd.concat(
            [io.read_parquet(_part(work, "scored", p), ["churn_probability"])
             for p in range(partitions)]
        )["churn_probability"].to_numpy()
        threshold = reasons_threshold(churn, job.rules.reasons_top_share)
        calls = [(job, p, threshold, work) for p in range(partitions)]
        parts = _run_all(pool, _reason_files, calls, "reasons", progress)
        lap("reasons_seconds")
    rows = io.concat_parquet_parts(out, parts, fmt)
    lap("write_seconds")
    return build_manifest(job, split.as_dict(), stats, rows, threshold, laps.timings)


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
        "as_of": job.as_of.isoformat() if job.as_of is not None else None,
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
