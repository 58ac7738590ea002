"""Local engine: score hash partitions of an export in a process pool.

Flow (:func:`run_local`):

1. split the raw export into ``partitions`` part folders by streaming (bounded memory,
   :mod:`pipeline.engines.partitioning`);
2. the map (process pool): each partition is read with the source adapter, cleaned with the
   clean rules, turned into the snapshot at ``as_of`` by ``build_snapshot`` and scored by
   ``pipeline.scoring.score_customers`` (:func:`pipeline.engines.work.score_partition`); its
   rows are written to scratch Parquet as it completes, so memory depends on partition size,
   not on input size;
3. the partitions' rows are concatenated into ``--out`` atomically (one part in memory at a
   time).

With ``--as-of latest`` the date is the end of the observed data over *all* partitions: the
map's clean step keeps its tables in scratch and reports orders per day, one small reduce
(:func:`pipeline.engines.work.latest_as_of`) decides the date, and the rest of the map runs.
The per-partition functions work on in-memory frames, so the Spark engine runs the same code on
its executors.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from pipeline import drift, io, logs
from pipeline.engines import partitioning
from pipeline.engines.work import (
    DRIFT_COUNTS,
    Laps,
    ScoreJob,
    check_rejects,
    clean_pass,
    drift_models,
    order_days,
    score_partition,
    scoring_models,
    settle_as_of,
)
from pipeline.scoring import rules_summary

logger = logging.getLogger(__name__)


# --- the process pool ---------------------------------------------------------------------


def _init_worker(log_queue: Any, log_level: int) -> None:
    # One LightGBM/OpenMP thread per process: the pool is the parallelism.
    os.environ["OMP_NUM_THREADS"] = "1"
    logs.log_to_queue(log_queue, log_level)


def _part(work: Path, kind: str, partition: int) -> Path:
    return work / kind / f"part-{partition:05d}.parquet"


def _clean_dir(work: Path, partition: int) -> Path:
    return work / "clean" / f"part-{partition:05d}"


def _score_tables(
    job: ScoreJob, partition: int, tables: dict[str, Any], work: Path
) -> dict[str, Any]:
    scores, stats = score_partition(job, tables)
    io.write_parquet(_part(work, "scores", partition), scores)
    return stats


def _map_files(job: ScoreJob, partition: int, inputs: list[Path], work: Path) -> dict:
    """Run the map on one partition's raw files (or, as-of unknown, its clean step only)."""
    tables, stats = clean_pass(job, inputs)
    stats["order_days"] = order_days(tables)  # the run's span: the as-of is settled on it
    if job.as_of is None:
        for name, frame in tables.items():
            io.write_parquet(_clean_dir(work, partition) / f"{name}.parquet", frame)
    else:
        stats.update(_score_tables(job, partition, tables, work))
    return {"partition": partition, **stats}


def _map_clean(job: ScoreJob, partition: int, work: Path) -> dict[str, Any]:
    """Run the rest of the map on one partition's clean tables (``--as-of latest``)."""
    folder = _clean_dir(work, partition)
    tables = {path.stem: io.read_parquet(path) for path in sorted(folder.glob("*.parquet"))}
    return _score_tables(job, partition, tables, work)


class _InlineExecutor(Executor):
    """Run submitted calls at once in this process (``--workers 1``: no start-up cost)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - handed to the caller via the future
            future.set_exception(exc)
        return future


@contextmanager
def _pool(workers: int) -> Iterator[Executor]:
    """Yield a process pool whose workers log through the parent (warnings counted once)."""
    if workers <= 1:
        yield _InlineExecutor()
        return
    context = get_context("spawn")  # no fork of a process that holds OpenMP threads
    level = logging.getLogger().getEffectiveLevel()
    with (
        logs.worker_queue(context) as queue,
        ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(queue, level)
        ) as pool,
    ):
        yield pool


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
    shown = progress and sys.stderr.isatty()  # never into a cron job's log file
    with tqdm(
        total=len(futures), desc=label, unit="part", file=sys.stderr, disable=not shown
    ) as bar:
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
    work: Path,
    progress: bool = True,
) -> dict[str, Any]:
    """Score an export end to end with a process pool; write ``out``; return the manifest.

    ``work`` is a scratch folder on the same file system as ``out`` (the caller removes it).
    """
    laps = Laps()
    lap = laps.lap
    raw_root = work / "raw"
    split = partitioning.split_export(
        job.source_config, inputs, raw_root, partitions, job.params.clean.max_record_bytes
    )
    lap("split_seconds")
    with _pool(workers) as pool:
        calls: list[tuple[Any, ...]] = [
            (job, p, split.part_inputs(raw_root, p), work) for p in range(partitions)
        ]
        stats = _run_all(pool, _map_files, calls, "score", progress)
        check_rejects(job, stats)
        latest = job.as_of is None
        job = settle_as_of(job, [s.pop("order_days") for s in stats])
        if latest:
            lap("clean_seconds")
            done = _run_all(
                pool, _map_clean, [(job, p, work) for p in range(partitions)], "score", progress
            )
            for item, more in zip(stats, done, strict=True):
                item.update(more)
        lap("map_seconds")
    parts = [_part(work, "scores", p) for p in range(partitions)]
    rows = io.concat_parquet_parts(out, parts, fmt)
    lap("write_seconds")
    return build_manifest(job, split.as_dict(), stats, rows, laps.timings)


def build_manifest(
    job: ScoreJob,
    split: dict[str, Any],
    stats: list[dict[str, Any]],
    rows: int,
    timings: dict[str, float],
) -> dict[str, Any]:
    """Summarise a run: rows in, customers scored, rejects, drift, timings (JSON-ready).

    Drift (:mod:`pipeline.drift`) is the reduce of the partitions' bin counts; past
    ``score.drift_warn_psi`` it logs one warning line for the run.
    """
    as_of = job.as_of.isoformat() if job.as_of is not None else None
    drifted = drift.drift_block(
        drift_models(job),
        [item.get(DRIFT_COUNTS, {}) for item in stats],
        as_of,
        job.params.score.drift_warn_psi,
    )
    warning = drift.warning_line(drifted)
    if warning is not None:
        logger.warning("%s", warning)
    rejected: dict[str, int] = {}
    for item in stats:
        for reason, count in item.get("rejected_by_reason", {}).items():
            rejected[reason] = rejected.get(reason, 0) + int(count)
    return {
        "as_of": as_of,
        "models": [ref.__dict__ for ref in job.models],
        # Who was scored: an order before as_of, the last within this many days ("any": all).
        "population": {"active_within_days": job.params.features.active_within_days},
        "engine": {"name": "local"},
        "input": split,
        "rows_in": int(sum(item.get("rows_read", 0) for item in stats)),
        "rows_accepted": int(sum(item.get("rows_accepted", 0) for item in stats)),
        "rows_rejected": int(sum(rejected.values())),
        "rejected_by_reason": dict(sorted(rejected.items())),
        "customers_scored": int(rows),
        "customers_with_reasons": int(sum(item.get("with_reasons", 0) for item in stats)),
        **rules_summary(scoring_models(job), job.rules),
        "drift": drifted,
        "partitions": [
            {k: v for k, v in item.items() if k not in ("rejected_by_reason", DRIFT_COUNTS)}
            for item in stats
        ],
        "timings": timings,
    }
