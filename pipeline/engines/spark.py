"""Spark engine: the same per-partition passes as the local engine, run by PySpark.

pyspark is an optional extra (``pip install .[spark]``) and is imported only in this module,
only when ``--engine spark`` runs. The driver splits the export by streaming (the same
:mod:`pipeline.engines.partitioning` as the local engine) and writes the part files as a
Parquet table ``(partition, name, content)``; Spark reads it and runs, per partition,
``groupBy("partition").applyInPandas(...)`` (``cogroup`` where a pass needs two tables):

1. clean (+ snapshot when ``as_of`` is known): :func:`pipeline.engines.work.clean_pass`,
   :func:`~pipeline.engines.work.snapshot_pass`;
2. population RFM on the driver from three columns per customer (small);
3. score, cogrouped with each partition's RFM rows: :func:`~pipeline.engines.work.score_pass`;
4. reasons above the run-wide threshold: :func:`~pipeline.engines.work.reasons_pass`, written by
   Spark as Parquet (``partitionBy("partition")``) and gathered into ``--out`` in partition
   order, one partition in memory at a time.

Between passes a partition's tables travel as Parquet bytes in one binary cell, so the Spark
schemas are fixed whatever features the snapshot has. Model folders, the source config and the
feature dictionary are shipped to executors with ``SparkContext.addFile``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.engines import partitioning
from pipeline.engines.work import (
    Laps,
    ModelRef,
    ScoreJob,
    clean_pass,
    latest_as_of,
    order_days,
    reasons_pass,
    rfm_by_partition,
    score_pass,
    snapshot_pass,
)
from pipeline.errors import ConfigError
from pipeline.scoring import (
    FLOAT_COLUMNS,
    OUTPUT_COLUMNS,
    RFM_BASES,
    conform_output,
    reasons_threshold,
    with_spend_cap,
)

logger = logging.getLogger(__name__)

TABLES = ("orders", "returns", "feedback", "customers")
SPARK_TYPES = {"as_of": "timestamp", **{name: "double" for name in FLOAT_COLUMNS}}
CLEAN_SCHEMA = (
    "partition int, snapshot binary, orders binary, returns binary, feedback binary, "
    "customers binary, bases binary, stats string"
)
SCORE_SCHEMA = "partition int, scored binary, kept binary, churn array<double>"
OUTPUT_SCHEMA = "partition int, " + ", ".join(
    f"{name} {SPARK_TYPES.get(name, 'string')}" for name in OUTPUT_COLUMNS
)


def session(master: str, partitions: int) -> Any:
    """Start (or reuse) a SparkSession on ``master`` with Arrow and UTC."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError(
            "--engine spark needs pyspark: pip install 'loyalty-pipeline[spark]'"
        ) from exc
    # Local mode runs Python workers: use this interpreter (with pipeline installed).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        SparkSession.builder.master(master)
        .appName("loyalty-score")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )


def _ship(spark: Any, job: ScoreJob) -> ScoreJob:
    """Add model folders and configs to the Spark job; return the job with shipped names."""
    for ref in job.models:
        spark.sparkContext.addFile(str(Path(ref.path).resolve()), recursive=True)
    spark.sparkContext.addFile(str(Path(job.source_config).resolve()))
    spark.sparkContext.addFile(str(Path(job.features_config).resolve()))
    return replace(
        job,
        source_config=Path(job.source_config).name,
        features_config=Path(job.features_config).name,
        models=tuple(replace(ref, path=Path(ref.path).name) for ref in job.models),
    )


def _on_executor(job: ScoreJob) -> ScoreJob:
    """Point the shipped names at the executor's local copies (``SparkFiles``)."""
    from pyspark import SparkFiles

    return replace(
        job,
        source_config=SparkFiles.get(job.source_config),
        features_config=SparkFiles.get(job.features_config),
        models=tuple(replace(ref, path=SparkFiles.get(ref.path)) for ref in job.models),
    )


def _blob(frame: pd.DataFrame | None) -> bytes | None:
    return None if frame is None else io.to_parquet_bytes(frame)


def _must(blob: Any) -> pd.DataFrame:
    frame = _frame(blob)
    if frame is None:
        raise ValueError("a partition's table is missing")
    return frame


def _frame(blob: Any) -> pd.DataFrame | None:
    return None if blob is None or (isinstance(blob, float) and np.isnan(blob)) else (
        io.from_parquet_bytes(bytes(blob)))


def _clean_fn(shipped: ScoreJob, entries: list[tuple[int, str, str]]) -> Any:
    def clean(group: pd.DataFrame) -> pd.DataFrame:
        job = _on_executor(shipped)
        partition = int(group["partition"].iloc[0])
        with tempfile.TemporaryDirectory(prefix="loyalty-part-") as tmp:
            root = Path(tmp)
            folder = partitioning.part_dir(root, partition)
            for name, content in zip(group["name"], group["content"], strict=True):
                io.write_bytes(folder / name, bytes(content))
            split = partitioning.ExportSplit(0, entries, [])
            tables, stats = clean_pass(job, split.part_inputs(root, partition))
        row: dict[str, Any] = {"partition": partition, "snapshot": None, "bases": None}
        row.update({name: None for name in TABLES})
        if job.as_of is None:
            stats["order_days"] = order_days(tables)
            row.update({name: _blob(tables.get(name)) for name in TABLES})
        else:
            row.update(_snapshot_row(job, tables))
        row["stats"] = json.dumps({"partition": partition, **stats})
        return pd.DataFrame([row])

    return clean


def _snapshot_row(job: ScoreJob, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    snapshot = snapshot_pass(job, tables)
    gathered = (*RFM_BASES, job.rules.value_feature)  # RFM and spend cap need every customer
    present = ["customer_id", *dict.fromkeys(c for c in gathered if c in snapshot.columns)]
    return {"snapshot": _blob(snapshot), "bases": _blob(snapshot.loc[:, present])}


def _snapshot_fn(shipped: ScoreJob) -> Any:
    def snapshot(group: pd.DataFrame) -> pd.DataFrame:
        job = _on_executor(shipped)
        row: dict[str, Any] = {str(k): v for k, v in group.iloc[0].to_dict().items()}
        frames = {name: _frame(row[name]) for name in TABLES}
        tables = {name: frame for name, frame in frames.items() if frame is not None}
        row.update({name: None for name in TABLES})
        row.update(_snapshot_row(job, tables))
        return pd.DataFrame([row])

    return snapshot


def _score_fn(shipped: ScoreJob) -> Any:
    def score(snapshots: pd.DataFrame, rfm_rows: pd.DataFrame) -> pd.DataFrame:
        job = _on_executor(shipped)
        if snapshots.empty:
            return pd.DataFrame(columns=["partition", "scored", "kept", "churn"])
        partition = int(snapshots["partition"].iloc[0])
        rfm = _frame(rfm_rows["rfm"].iloc[0]) if len(rfm_rows) else None
        scored, kept = score_pass(job, _must(snapshots["snapshot"].iloc[0]), rfm)
        churn = scored["churn_probability"].to_numpy(dtype="float64", na_value=np.nan)
        return pd.DataFrame([{"partition": partition, "scored": _blob(scored),
                              "kept": _blob(kept), "churn": churn.tolist()}])

    return score


def _reasons_fn(shipped: ScoreJob, threshold: float) -> Any:
    def reasons(group: pd.DataFrame) -> pd.DataFrame:
        job = _on_executor(shipped)
        row = group.iloc[0]
        final = reasons_pass(job, _must(row["scored"]), _must(row["kept"]), threshold)
        return final.assign(partition=int(row["partition"]))[["partition", *OUTPUT_COLUMNS]]

    return reasons


def _parts_table(work: Path, raw_root: Path, partitions: int) -> Path:
    """Write the raw part files as a Parquet table ``(partition, name, content)``."""
    path = work / "spark_parts"
    for p in range(partitions):
        folder = partitioning.part_dir(raw_root, p)
        files = sorted(f for f in folder.rglob("*") if f.is_file())
        frame = pd.DataFrame({
            "partition": pd.array([p] * len(files), dtype="int32"),
            "name": [f.relative_to(folder).as_posix() for f in files],
            "content": [f.read_bytes() for f in files],
        })
        io.write_parquet(path / f"part-{p:05d}.parquet", frame)
    return path


def _iter_column(frame: Any, column: str) -> Iterator[tuple[int, Any]]:
    for row in frame.select("partition", column).toLocalIterator():
        yield int(row["partition"]), row[column]


def run_spark(
    job: ScoreJob,
    inputs: list[Path],
    out: Path,
    fmt: str,
    partitions: int,
    master: str,
    work: Path,
) -> dict[str, Any]:
    """Score an export with PySpark on ``master``; write ``out``; return the run manifest."""
    from pipeline.engines.local import build_manifest

    laps = Laps()
    lap = laps.lap
    raw_root = work / "raw"
    split = partitioning.split_export(job.source_config, inputs, raw_root, partitions)
    parts_path = _parts_table(work, raw_root, partitions)
    lap("split_seconds")
    spark = session(master, partitions)
    shipped = _ship(spark, job)
    parts = spark.read.parquet(str(parts_path)).repartition(partitions, "partition")
    cleaned = parts.groupBy("partition").applyInPandas(
        _clean_fn(shipped, split.entries), CLEAN_SCHEMA).persist()
    stats = sorted((json.loads(r["stats"]) for r in cleaned.select("stats").collect()),
                   key=lambda item: item["partition"])
    lap("clean_seconds")
    if job.as_of is None:
        job = replace(job, as_of=latest_as_of(job, [s.pop("order_days") for s in stats]))
        shipped = replace(shipped, as_of=job.as_of)
        snapshots = cleaned.groupBy("partition").applyInPandas(
            _snapshot_fn(shipped), CLEAN_SCHEMA).persist()
        lap("snapshot_seconds")
    else:
        snapshots = cleaned
    bases = [(p, _frame(blob)) for p, blob in _iter_column(snapshots, "bases")]
    value = job.rules.value_feature
    spend = [frame[value] for _, frame in bases if frame is not None and value in frame.columns]
    rules = with_spend_cap(job.rules, pd.concat(spend).to_numpy() if spend else np.zeros(0))
    job, shipped = replace(job, rules=rules), replace(shipped, rules=rules)
    rfm_rows = pd.DataFrame(
        [{"partition": p, "rfm": _blob(rows)} for p, rows in rfm_by_partition(job, bases).items()],
        columns=["partition", "rfm"],
    )
    rfm_frame = spark.createDataFrame(rfm_rows, "partition int, rfm binary")
    lap("population_rfm_seconds")
    scored = (
        snapshots.select("partition", "snapshot").groupBy("partition")
        .cogroup(rfm_frame.groupBy("partition"))
        .applyInPandas(_score_fn(shipped), SCORE_SCHEMA).persist()
    )
    churn = np.concatenate(
        [np.asarray(r["churn"], dtype="float64") for r in scored.select("churn").collect()]
        or [np.zeros(0)]
    )
    threshold = reasons_threshold(churn, job.rules.reasons_top_share)
    lap("score_seconds")
    spark_out = work / "spark_scores"
    (scored.groupBy("partition").applyInPandas(_reasons_fn(shipped, threshold), OUTPUT_SCHEMA)
     .write.mode("overwrite").partitionBy("partition").parquet(str(spark_out)))
    lap("reasons_seconds")
    final = []
    for p in range(partitions):
        folder = spark_out / f"partition={p}"
        frame = (io.read_parquet(folder) if folder.exists()
                 else pd.DataFrame({name: [] for name in OUTPUT_COLUMNS}))
        frame = conform_output(frame.sort_values("customer_id", kind="stable"))
        final.append(io.write_parquet(work / "final" / f"part-{p:05d}.parquet", frame))
    rows = io.concat_parquet_parts(out, final, fmt)
    lap("write_seconds")
    for frame in (cleaned, snapshots, scored):
        frame.unpersist()
    manifest = build_manifest(job, split.as_dict(), stats, rows, threshold, laps.timings)
    manifest["engine"] = {"name": "spark", "master": master}
    return manifest


__all__ = ["ModelRef", "run_spark", "session"]
