"""Spark engine: the local engine's map (clean -> score per partition) run by PySpark.

pyspark is an optional extra (``pip install .[spark]``) and is imported only in this module,
only when ``--engine spark`` runs. The executors read the export; the driver never holds it:
it lists the input files and reads their header lines (:mod:`pipeline.engines.export_plan`)
and plans byte ranges of them (:mod:`pipeline.engines.records`). Executors need the same
paths (a shared file system, or one machine). Then, on the cluster:

1. **count** (one task per range; skipped when no file is cut): quotes and line breaks per range;
   the driver's prefix sums give each range its quote parity and line number at its start;
2. **read**: ``mapInPandas`` over the ranges; each task reads its range and cuts it into
   records keyed by partition (the local splitter's record rule and key), rows of
   ``(partition, file, line, lines, no_key, record bytes)``; one marker row per partition
   keeps empty partitions in the map, as the local engine scores header-only parts;
3. **the map**: Spark shuffles the records by partition, and ``groupBy("partition")
   .applyInPandas`` rebuilds each partition's part files and line sidecars in a temporary
   folder on the executor (the very bytes the local splitter writes) and runs
   :func:`pipeline.engines.work.clean_pass` and :func:`~pipeline.engines.work.score_partition`;
   the rows, plus one row of the partition's counts (column ``stats``), are written by Spark as
   Parquet ``partitionBy("partition")``;
4. the driver gathers the partitions into ``--out`` in partition order, one in memory at a
   time, through the same :func:`pipeline.scoring.conform_output` and
   :func:`pipeline.io.concat_parquet_parts` as the local engine.

``--as-of latest`` adds one small step before the map: each partition's clean step returns its
orders per day, and the driver reduces them with :func:`~pipeline.engines.work.latest_as_of`.
The map then **cleans again** rather than caching the clean tables: a partition's tables as one
Parquet cell would be a single Arrow value (capped at 2 GiB, held whole by the JVM and the
Python worker), while clean is a pure function of the partition's bytes, so cleaning twice costs
CPU only and gives the same tables. The shuffled records are persisted (memory and disk), so
the input is read and shuffled once.

Models (a zip of their artefacts, ``SparkContext.addArchive``), the source config and the
feature dictionary (``addFile``) are shipped to executors. An expected error raised on an
executor (bad input, no orders) comes back as the same one-line
:class:`~pipeline.errors.PipelineError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from io import BytesIO
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import errors, io, logs
from pipeline.engines import export_plan, records
from pipeline.engines.export_plan import ExportPlan
from pipeline.engines.work import (
    Laps,
    ModelRef,
    ScoreJob,
    check_rejects,
    clean_pass,
    order_days,
    score_partition,
    settle_as_of,
)
from pipeline.errors import ConfigError
from pipeline.scoring import BOOLEAN_COLUMNS, conform_output, float_columns, output_columns

logger = logging.getLogger(__name__)

#: Python loggers that print Spark's chatter at INFO/WARN.
QUIET_LOGGERS = ("py4j", "pyspark")
#: The driver JVM's logging (log4j2), set before it starts: errors only. The gateway's own
#: level stops Spark's shell default ("Setting default log level to WARN"); a failed task is
#: reported once, by the driver's exception, not also by the loggers that see it fail.
LOG4J2_ERRORS = """\
rootLogger.level = error
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
logger.executor.name = org.apache.spark.executor.Executor
logger.executor.level = off
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = off
logger.writer.name = org.apache.spark.sql.execution.datasources.FileFormatWriter
logger.writer.level = off
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = off
"""


# --- the session --------------------------------------------------------------------------


@contextlib.contextmanager
def session(master: str, partitions: int, scratch: Path | None = None) -> Iterator[Any]:
    """Yield a SparkSession on ``master`` (Arrow, UTC); stop it afterwards if started here.

    When this process starts the JVM, its start-up logging is errors only (a log4j2 file in
    ``scratch``), unless Spark's conf folder has a ``log4j2.properties`` of its own.
    """
    with logs.without_pyspark_pandas_notice():  # pandas 3: why, in pipeline/logs.py
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise ConfigError(
                "--engine spark needs pyspark: pip install 'loyalty-pipeline[spark]'"
            ) from exc
        active = SparkSession.getActiveSession()
        if active is not None and active.sparkContext.master == master:
            active.conf.set("spark.sql.shuffle.partitions", str(partitions))
            yield active
            return
        if active is not None:  # another master: this run's --spark-master wins
            active.stop()
        with _quiet_jvm_start(scratch):
            spark = _start(SparkSession.builder, master, partitions)
        try:
            yield spark
        finally:
            spark.stop()


@contextlib.contextmanager
def _quiet_jvm_start(scratch: Path | None) -> Iterator[None]:
    conf = os.environ.get("SPARK_CONF_DIR") or str(Path(os.environ.get("SPARK_HOME", ".")) / "conf")
    if (
        scratch is None
        or "LOG4J_CONFIGURATION_FILE" in os.environ
        or (Path(conf) / "log4j2.properties").exists()
    ):
        yield
        return
    os.environ["LOG4J_CONFIGURATION_FILE"] = str(
        io.write_text(scratch / "log4j2.properties", LOG4J2_ERRORS)
    )
    try:
        yield
    finally:
        del os.environ["LOG4J_CONFIGURATION_FILE"]  # read once, when the JVM starts


def _start(builder: Any, master: str, partitions: int) -> Any:
    # Python workers run this interpreter (with pipeline installed), on every executor too.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    spark = (
        builder.master(master)
        .appName("loyalty-score")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
        .config("spark.sql.execution.pandas.inferPandasDictAsMap", "false")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.sql.adaptive.enabled", "false")  # keep one task per hash partition
        .config("spark.executorEnv.OMP_NUM_THREADS", "1")  # Spark's cores are the parallelism
        .config("spark.executorEnv.PYTHONWARNINGS", logs.PYSPARK_PANDAS_NOTICE_FILTER)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")  # WARN is pandas/Arrow notices and native libs
    return spark


def _ship(spark: Any, job: ScoreJob, scratch: Path) -> ScoreJob:
    """Add model archives and configs to the Spark job; return the job with shipped names.

    A model folder goes as a zip of its three artefacts (``addArchive``: unpacked once per
    executor; Spark ships no folder to a cluster), named by its target (one model per target).
    """
    from pipeline.modeling.artifacts import CALIBRATION_FILE, FEATURES_FILE, MODEL_FILE

    models = []
    for ref in job.models:
        buffer = BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in (MODEL_FILE, CALIBRATION_FILE, FEATURES_FILE):
                with io.open_binary(Path(ref.path) / name) as handle:
                    archive.writestr(name, handle.read())
        shipped = io.write_bytes(scratch / "ship" / f"model-{ref.target}.zip", buffer.getvalue())
        spark.sparkContext.addArchive(str(shipped.resolve()))
        models.append(replace(ref, path=shipped.name))
    spark.sparkContext.addFile(str(Path(job.source_config).resolve()))
    spark.sparkContext.addFile(str(Path(job.features_config).resolve()))
    return replace(
        job,
        source_config=Path(job.source_config).name,
        features_config=Path(job.features_config).name,
        models=tuple(models),
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


@contextlib.contextmanager
def _executor_errors() -> Iterator[None]:
    """Turn a PipelineError raised on an executor back into itself (one line, its exit code)."""
    try:
        yield
    except errors.PipelineError:
        raise
    except Exception as exc:  # noqa: BLE001 - Spark wraps executor errors in its own types
        found = re.search(r"pipeline\.errors\.(\w+): (.+)", str(exc))
        kind = getattr(errors, found.group(1), None) if found else None
        if found and isinstance(kind, type) and issubclass(kind, errors.PipelineError):
            raise kind(found.group(2).strip()) from exc
        raise


# --- what runs on the executors -----------------------------------------------------------


def _count_fn(plan: ExportPlan) -> Any:
    return lambda item: export_plan.count(plan, item)


def _read_fn(plan: ExportPlan, ranges: list[records.ByteRange], partitions: int) -> Any:
    def read(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for index in batch["id"].tolist():
                yield from export_plan.read_keyed(plan, ranges[int(index)], partitions)

    return read


def _local_dir() -> str | None:
    """Return the executor's scratch folder (Spark's local dirs), else None (the system's)."""
    dirs = os.environ.get("SPARK_LOCAL_DIRS", "")
    return dirs.split(",")[0] or None


def _clean_group(
    job: ScoreJob, plan: ExportPlan, group: pd.DataFrame
) -> tuple[int, dict[str, pd.DataFrame], dict[str, Any]]:
    """Rebuild one partition's part folder from its records and clean it as the local engine."""
    partition = int(group["partition"].iloc[0])
    with tempfile.TemporaryDirectory(prefix="loyalty-part-", dir=_local_dir()) as tmp:
        inputs, counts = export_plan.rebuild_partition(plan, tmp, partition, group)
        tables, stats = clean_pass(job, inputs)
    return partition, tables, {"partition": partition, **stats, "input": counts}


def _days_fn(shipped: ScoreJob, plan: ExportPlan) -> Any:
    def days(group: pd.DataFrame) -> pd.DataFrame:
        partition, tables, _ = _clean_group(_on_executor(shipped), plan, group)
        counts = json.dumps(order_days(tables))
        return _for_arrow(pd.DataFrame({"partition": [partition], "order_days": [counts]}))

    return days


def _map_fn(shipped: ScoreJob, plan: ExportPlan) -> Any:
    def score(group: pd.DataFrame) -> pd.DataFrame:
        job = _on_executor(shipped)
        partition, tables, stats = _clean_group(job, plan, group)
        scores, more = score_partition(job, tables)
        stats.update(more, order_days=order_days(tables))
        columns = output_columns(job.targets, job.rules.top_reasons)
        blank = conform_output(
            pd.DataFrame({c: [None] for c in columns}), columns, float_columns(job.targets)
        )
        out = pd.concat([scores, blank], ignore_index=True)
        out.insert(0, "partition", pd.Series([partition] * len(out), dtype="int32"))
        out["stats"] = pd.array([None] * len(scores) + [json.dumps(stats)], dtype="string")
        return _for_arrow(out)

    return score


def _for_arrow(frame: pd.DataFrame) -> pd.DataFrame:
    """Hand pandas' Arrow-backed strings to Spark as Python objects.

    pyspark (4.x) builds its Arrow batches with ``pa.Array.from_pandas``, which fails on the
    chunked arrays behind pandas 3 string columns; object columns of ``str``/None convert.
    """
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.StringDtype):
            column = out[name]
            out[name] = pd.Series(
                column.astype(object).where(column.notna(), None), index=out.index, dtype=object
            )
    return out


def _spark_schema(job: ScoreJob) -> str:
    floats = float_columns(job.targets)

    def kind(name: str) -> str:
        if name == "as_of":
            return "timestamp"
        if name in floats:
            return "double"
        return "boolean" if name in BOOLEAN_COLUMNS else "string"

    columns = output_columns(job.targets, job.rules.top_reasons)
    return ", ".join(["partition int", *(f"{c} {kind(c)}" for c in columns), "stats string"])


# --- the driver ---------------------------------------------------------------------------


def _placed_ranges(spark: Any, plan: ExportPlan, range_bytes: int) -> list[records.ByteRange]:
    """Plan the ranges; count quotes and newlines on the cluster when a file is cut."""
    ranges = plan.ranges(range_bytes)
    if len(ranges) == len(plan.files):  # every file is one range: nothing to count
        return ranges
    counts = spark.sparkContext.parallelize(ranges, len(ranges)).map(_count_fn(plan)).collect()
    return records.place_ranges(ranges, counts)


def _gather(
    job: ScoreJob, folder: Path, work: Path, partitions: int
) -> tuple[list[Path], list[dict[str, Any]]]:
    """Read Spark's output one partition at a time: scores to parts, counts to stats."""
    columns = output_columns(job.targets, job.rules.top_reasons)
    parts, stats = [], []
    for p in range(partitions):
        frame = io.read_parquet(folder / f"partition={p}")
        is_stats = frame["stats"].notna()
        stats.append(json.loads(frame.loc[is_stats, "stats"].iloc[0]))
        scores = frame.loc[~is_stats].sort_values("customer_id", kind="stable")
        scores = conform_output(scores.reset_index(drop=True), columns, float_columns(job.targets))
        parts.append(io.write_parquet(work / "final" / f"part-{p:05d}.parquet", scores))
    return parts, stats


def run_spark(
    job: ScoreJob,
    inputs: list[Path],
    out: Path,
    fmt: str,
    partitions: int,
    master: str,
    work: Path,
    range_bytes: int | None = None,
) -> dict[str, Any]:
    """Score an export with PySpark on ``master``; write ``out``; return the run manifest.

    ``range_bytes`` fixes the size of the byte ranges executors read (default: about two per
    core). ``work`` must be visible to the driver and, for Spark's output, to the executors.
    """
    from pyspark import StorageLevel

    from pipeline.engines.local import build_manifest

    laps = Laps()
    lap = laps.lap
    plan = export_plan.plan_export(job.source_config, inputs, job.params.clean.max_record_bytes)
    with session(master, partitions, work) as spark, _executor_errors():
        size = range_bytes or plan.range_bytes_for(spark.sparkContext.defaultParallelism)
        shipped = _ship(spark, job, work)
        lap("plan_seconds")
        ranges = _placed_ranges(spark, plan, size)
        lap("count_seconds")
        markers = spark.range(partitions).selectExpr(  # built in the JVM: no Python round trip
            "cast(id as int) as partition",
            "-1 as file",
            "0L as line",
            "0 as lines",
            "false as no_key",
            "X'' as record",
            "false as too_long",
        )
        keyed = (
            spark.range(len(ranges), numPartitions=len(ranges))
            .mapInPandas(_read_fn(plan, ranges, partitions), export_plan.RECORD_SCHEMA)
            .unionByName(markers)
            .repartition(partitions, "partition")
        )
        if job.as_of is None:
            keyed = keyed.persist(StorageLevel.MEMORY_AND_DISK)
            days = (
                keyed.groupBy("partition")
                .applyInPandas(_days_fn(shipped, plan), "partition int, order_days string")
                .collect()
            )
            per_partition = [
                {int(d): int(n) for d, n in json.loads(row["order_days"]).items()}
                for row in sorted(days, key=lambda row: row["partition"])
            ]
            job = settle_as_of(job, per_partition)
            shipped = replace(shipped, as_of=job.as_of)
            lap("clean_seconds")
        spark_out = work / "spark_scores"
        (
            keyed.groupBy("partition")
            .applyInPandas(_map_fn(shipped, plan), _spark_schema(job))
            .write.mode("overwrite")
            .partitionBy("partition")
            .parquet(str(spark_out))
        )
        keyed.unpersist()
        lap("map_seconds")
    parts, stats = _gather(job, spark_out, work, partitions)
    check_rejects(job, stats)
    # an explicit --as-of is checked against the orders' span before anything is written
    settle_as_of(job, [{int(d): int(n) for d, n in s.pop("order_days").items()} for s in stats])
    rows = io.concat_parquet_parts(out, parts, fmt)
    lap("write_seconds")
    manifest = build_manifest(
        job,
        plan.split_summary([s["input"] for s in stats]),
        [{k: v for k, v in s.items() if k != "input"} for s in stats],
        rows,
        laps.timings,
    )
    manifest["engine"] = {
        "name": "spark",
        "master": master,
        "ranges": len(ranges),
        "range_bytes": size,
    }
    return manifest


__all__ = ["ModelRef", "run_spark", "session"]
